"""iCaRL's spec: parameters with their sources, summary, capabilities
(implementation: `icarl.py`)."""

from __future__ import annotations

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.strategy.spec import Capabilities, StrategySpec

_MAMMOTH = "aimagelab/mammoth@e75a491c69fd"


@STRATEGIES.spec("icarl", "clbench.strategies.icarl:ICaRL")
class ICaRLSpec(StrategySpec):
    summary = "iCaRL: herding exemplars, sigmoid BCE with distillation, nearest-mean prediction"
    # class-incremental only, as both references; loss terms, memory draws, replayed batches and
    # the model all go through the strategy API
    capabilities = Capabilities(settings=frozenset({"class"}), uses_buffer=True)

    class Config(StrategySpec.Config):
        buffer_size: int = Field(
            2000,
            ge=1,
            description="K, exemplars in total; 2000, the memory of Mammoth's best seq-cifar100 "
            f"config ({_MAMMOTH}:models/config/icarl.yaml L6) and of the paper's CIFAR-100 runs",
        )
        replay_batch_size: int | None = Field(
            None,
            ge=1,
            description="Exemplars appended to each new batch (default: ceil(memory / batches "
            "per epoch), so an epoch replays the memory once, as an epoch over iCaRL's training "
            "set of new data and exemplars does)",
        )
        flip_means: bool = Field(
            False,
            description="Average in the features of horizontally flipped exemplars for the "
            f"class means, as {_MAMMOTH}:models/icarl.py L209-218 and Avalanche do on "
            "CIFAR, which trains with flips (image inputs only)",
        )
