"""The ``clbench`` command line: `main` dispatches to one module per command."""

from clbench.cli.app import console_main, main

__all__ = ["console_main", "main"]
