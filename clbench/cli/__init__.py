"""The ``clbench`` command line: `main` dispatches to one module per command."""

from clbench.cli.app import main

__all__ = ["main"]
