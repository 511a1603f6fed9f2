"""Errors raised by clbench before or during a run.

Every user-facing error names the offending field, the value it got and what is allowed, so the
CLI can print one clear line and exit with status 2 before any work starts.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Any

# Messages stay one readable line whatever the input (a 200,000-item list, an expanded YAML
# alias bomb): reprlib stops at these limits instead of building the full repr first.
MAX_MESSAGE_CHARS = 600
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 120, 120
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 6


def shorten(value: Any) -> str:
    """A bounded repr of ``value`` (never builds the whole repr of a huge value)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return clip(text)


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text) - limit + 30} more characters)"


class ClbenchError(Exception):
    """Base class of every error clbench raises on purpose."""


class ConfigError(ClbenchError, ValueError):
    """An invalid configuration value, detected before any work starts."""

    def __init__(self, field: str, value: Any, allowed: str | Iterable[str]) -> None:
        if not isinstance(allowed, str):
            allowed = "one of: " + ", ".join(sorted(str(a) for a in allowed))
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{clip(str(field), 200)}: got {shorten(value)}; allowed: {clip(allowed)}")


class SetupConfigError(ConfigError):
    """A configuration value refused while the strategy or a plugin is set up, once the model
    exists (e.g. an FPF module pattern that matches none of its modules): bad input, found
    before the first update."""


class MissingFileError(ConfigError):
    """A config names a file (e.g. pretrained weights) that does not exist."""


class DataNotFoundError(ClbenchError, FileNotFoundError):
    """Dataset files are missing and cannot be downloaded."""


class IncompatibleError(ClbenchError):
    """A strategy or model cannot run on the chosen scenario."""


class CorruptedResultError(ClbenchError):
    """A result file exists but cannot be read (truncated, not JSON/YAML/Parquet, wrong shape)."""

    def __init__(self, path: str | object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: corrupted or truncated result file ({clip(reason)})")


class RunInterrupted(Exception):
    """A stop was requested (signal); the run checkpointed at ``position`` when it could."""

    def __init__(self, reason: str, position: Any, checkpointed: bool) -> None:
        self.reason, self.position, self.checkpointed = reason, position, checkpointed
        self.run_dir: Any = None  # set by the job that owns the run folder
        super().__init__(f"{reason} at {position.describe()}")
