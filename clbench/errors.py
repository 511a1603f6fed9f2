"""Errors raised by clbench before or during a run.

Every user-facing error names the offending field, the value it got and what is allowed, so the
CLI can print one clear line and exit with status 2 before any work starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ClbenchError(Exception):
    """Base class of every error clbench raises on purpose."""


class ConfigError(ClbenchError, ValueError):
    """An invalid configuration value, detected before any work starts."""

    def __init__(self, field: str, value: Any, allowed: str | Iterable[str]) -> None:
        if not isinstance(allowed, str):
            allowed = "one of: " + ", ".join(sorted(str(a) for a in allowed))
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: got {value!r}; allowed: {allowed}")


class DataNotFoundError(ClbenchError, FileNotFoundError):
    """Dataset files are missing and cannot be downloaded."""


class IncompatibleError(ClbenchError):
    """A strategy or model cannot run on the chosen scenario."""


class CorruptedResultError(ClbenchError):
    """A result file exists but cannot be read (truncated, not JSON/YAML/Parquet, wrong shape)."""

    def __init__(self, path: str | object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: corrupted or truncated result file ({reason})")
