"""The public Python API: `run`, `load`, `load_records`, `sweep`, `report` (one page:
``docs/python-api.md``). Each module imports its heavy dependencies only when called."""

from clbench.api.load import load, load_records
from clbench.api.report import Report, report
from clbench.api.run import Run, run
from clbench.api.sweep import Results, sweep

__all__ = ["Report", "Results", "Run", "load", "load_records", "report", "run", "sweep"]
