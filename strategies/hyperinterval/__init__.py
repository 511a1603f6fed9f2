"""HyperInterval (Krukowski et al. 2024): the strategy (`strategy`), the interval hypernetwork and
schedules (`hnet`), the target networks (`targets`) and model selection (`selection`); its spec
(parameters, capabilities) is `specs/hyperinterval.py`."""

from clbench.strategies.hyperinterval.hnet import eps_at, kappa_at
from clbench.strategies.hyperinterval.strategy import HyperInterval

__all__ = ["HyperInterval", "eps_at", "kappa_at"]
