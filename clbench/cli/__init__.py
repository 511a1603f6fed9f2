"""The ``clbench`` command line: `main` dispatches to one module per command."""

from clbench.cli.main import main

__all__ = ["main"]
