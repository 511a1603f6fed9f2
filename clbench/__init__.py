"""clbench: continual-learning benchmarks with per-update continual evaluation.

The Python API (``docs/python-api.md``)::

    import clbench

    run = clbench.run(train={"epochs": 2})  # the embedded default: Split-digits ER
    run.records  # every evaluation, a DataFrame
    clbench.load("results/")  # one row per run
    clbench.report("results/").to_frame()  # the leaderboard table

Importing ``clbench`` is cheap and has no side effects: the API functions are loaded on first use
(PEP 562), and torch only when a run starts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clbench.api import Report, Results, Run, load, load_records, report, run, sweep

__all__ = ["Report", "Results", "Run", "__version__", "load", "load_records", "report", "run"]
__all__ += ["sweep"]

_API = {name: "clbench.api" for name in __all__ if name != "__version__"}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("clbench")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'clbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
