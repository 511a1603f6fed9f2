"""Checkpoints: where a run stands, when to save, and atomic, safely loaded files.

A checkpoint holds two states of the run: ``current`` (model, strategy, records, RNGs at the
checkpoint) and, for a checkpoint taken inside a phase, ``phase_start`` (the same taken just
before that phase's ``before_phase``). Resuming inside a phase restores ``phase_start``, replays
``before_phase`` and the data order up to the saved position, then restores ``current``: so a
strategy's phase set-up (fresh optimizer, regularisation targets, heads) is rebuilt by its own
code rather than serialised, and a resumed run makes the same updates as an uninterrupted one.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from clbench.errors import CorruptedResultError
from clbench.results.run_dir import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Position:
    """Where the training loop stands: ``batch`` updates done in ``epoch`` of ``phase``.

    ``in_phase`` is False at a phase boundary (phase ``phase`` not started yet).
    """

    phase: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    phase_step: int = 0
    seen_upto: int = 0
    in_phase: bool = False

    def describe(self) -> str:
        if not self.in_phase:
            return f"update {self.step}, before phase {self.phase}"
        return f"update {self.step} (phase {self.phase}, epoch {self.epoch}, batch {self.batch})"


def cloned(state: Any) -> Any:
    """A deep copy of a state dict whose tensors no longer share storage with live parameters."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return type(state)((k, cloned(v)) for k, v in state.items())
    if isinstance(state, list | tuple):
        return type(state)(cloned(v) for v in state)
    return state


def make_checkpoint(
    run_hash: str,
    position: Position,
    current: dict[str, Any],
    phase_start: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "config_hash": run_hash,
        "position": asdict(position),
        "current": current,
        "phase_start": phase_start,
    }


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Serialise in memory, then write atomically: a kill mid-write leaves the old file intact."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write(path, lambda p: p.write_bytes(buffer.getbuffer()))


def load_checkpoint(path: Path) -> tuple[Position, dict[str, Any]]:
    """Load with ``weights_only=True`` (no arbitrary unpickling); errors name the file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CorruptedResultError(path, "missing") from None
    except Exception as exc:  # truncated zip, foreign pickle, ...: all mean "unusable"
        raise CorruptedResultError(path, f"not a loadable checkpoint: {exc}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT_VERSION:
        raise CorruptedResultError(path, f"not a clbench checkpoint (format {FORMAT_VERSION})")
    try:
        position = Position(**checkpoint["position"])
    except (KeyError, TypeError) as exc:
        raise CorruptedResultError(path, f"bad position record: {exc}") from None
    return position, checkpoint


class Checkpointer:
    """Decides when to checkpoint (every N updates, phase ends) and writes ``checkpoint.pt``."""

    def __init__(self, path: Path, every: int, at_phase_end: bool) -> None:
        self.path, self.every, self.at_phase_end = path, every, at_phase_end
        self.saved_at: Position | None = None

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, checkpoint: dict[str, Any]) -> None:
        save_checkpoint(self.path, checkpoint)
        self.saved_at = Position(**checkpoint["position"])
