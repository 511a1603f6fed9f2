"""Checkpoints: where a run stands, when to save, and atomic, safely loaded files.

A checkpoint holds two states of the run: ``current`` (model, strategy, records, RNGs at the
checkpoint) and, for a checkpoint taken inside a phase, ``phase_start`` (the same taken just
before that phase's ``before_phase``). Resuming inside a phase restores ``phase_start``, replays
``before_phase`` and the data order up to the saved position, then restores ``current``: so a
strategy's phase set-up (fresh optimizer, regularisation targets, heads) is rebuilt by its own
code rather than serialised, and a resumed run makes the same updates as an uninterrupted one.
A checkpoint taken inside a phase always holds ``phase_start`` (also one saved on a signal with
``checkpoint.every=0``, and one saved inside a phase that was itself resumed).

The file is one header line, ``CLBENCH-CHECKPOINT <format> sha256=<hex> bytes=<n>``, then the
``torch.save`` payload: loading checks the digest before unpickling (``weights_only``), and
`check_checkpoint` checks the structure, so a damaged or crafted file is refused by name.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from clbench.engine.run_dir import atomic_write
from clbench.errors import CorruptedResultError

FORMAT_VERSION = 2
_HEADER = re.compile(rb"CLBENCH-CHECKPOINT (\d+) sha256=([0-9a-f]{64}) bytes=(\d+)\n")
_MAX_HEADER = 128
# what each state half (`Experiment.state_dict`) must hold
STATE_KEYS = ("model", "strategy", "records", "rng", "timing", "train_losses")


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
    """Serialise in memory, then write header and payload atomically: a kill mid-write leaves the
    old file intact."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    payload = buffer.getbuffer()
    digest = hashlib.sha256(payload).hexdigest()
    header = f"CLBENCH-CHECKPOINT {FORMAT_VERSION} sha256={digest} bytes={len(payload)}\n"

    def write(p: Path) -> None:
        with p.open("wb") as f:
            f.write(header.encode())
            f.write(payload)

    atomic_write(path, write)


def load_checkpoint(path: Path) -> tuple[Position, dict[str, Any]]:
    """Check the digest, then load with ``weights_only=True`` (no arbitrary unpickling) and check
    the structure; every failure is a `CorruptedResultError` naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorruptedResultError(path, "missing") from None
    match = _HEADER.match(raw[:_MAX_HEADER])
    if match is None:
        reason = "no clbench checkpoint header"
        if raw[:2] == b"PK":  # a bare torch.save zip: format 1, which carried no digest
            reason = "written by an older clbench without a digest; use --force to start over"
        raise CorruptedResultError(path, reason)
    version, digest, size = int(match[1]), match[2].decode(), int(match[3])
    if version != FORMAT_VERSION:
        raise CorruptedResultError(path, f"checkpoint format {version}, expected {FORMAT_VERSION}")
    payload = memoryview(raw)[match.end() :]
    if len(payload) != size:
        raise CorruptedResultError(path, f"truncated: {len(payload)} of {size} payload bytes")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CorruptedResultError(path, "content does not match its digest (damaged)")
    try:
        checkpoint = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # a valid digest over a foreign payload: still unusable
        raise CorruptedResultError(path, f"not a loadable checkpoint: {exc}") from None
    try:
        position = check_checkpoint(checkpoint)
    except ValueError as exc:
        raise CorruptedResultError(path, str(exc)) from None
    return position, checkpoint


def check_checkpoint(checkpoint: Any) -> Position:
    """The checkpoint's position, after checking it has every part a resume reads (ValueError
    otherwise). Whether the position fits the run's plan is `Experiment.check_position`'s job."""
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT_VERSION:
        raise ValueError(f"not a clbench checkpoint (format {FORMAT_VERSION})")
    if not isinstance(checkpoint.get("config_hash"), str):
        raise ValueError("no config hash")
    raw = checkpoint.get("position")
    if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(Position)}:
        raise ValueError(f"bad position record: {raw!r}")
    for f in fields(Position):
        want = bool if f.name == "in_phase" else int
        value = raw[f.name]
        if type(value) is not want or (want is int and value < 0):
            raise ValueError(f"bad position record: {f.name}={value!r}")
    position = Position(**raw)
    halves = ("current", "phase_start") if position.in_phase else ("current",)
    for half in halves:
        state = checkpoint.get(half)
        if not isinstance(state, dict):
            raise ValueError(f"no {half!r} state (needed to resume at {position.describe()})")
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"{half!r} state lacks {', '.join(missing)}")
    return position


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
