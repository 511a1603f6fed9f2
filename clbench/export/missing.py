"""The error for a tracker package that is not installed."""

from __future__ import annotations

from clbench.errors import ClbenchError


def missing_tracker(package: str, exc: ImportError) -> ClbenchError:
    return ClbenchError(
        f"export: the {package} package is not installed ({exc}); "
        "install it with: pip install 'clbench[loggers]'"
    )
