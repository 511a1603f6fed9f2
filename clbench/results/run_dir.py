"""Run folders: every file written atomically, status visible while a run is incomplete.

A run folder is finished exactly when ``status.json`` says ``finished``; that is written last,
after the summary, so a crash never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

STATUS_FILE = "status.json"
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: umask can only be read by setting it
FINISHED = "finished"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(
        path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    )


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))


class RunDir:
    """One run's folder under the results root."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def status(self) -> dict[str, Any] | None:
        status_path = self.path / STATUS_FILE
        if not status_path.is_file():
            return None
        try:
            return json.loads(status_path.read_text())
        except json.JSONDecodeError:
            return {"status": "corrupted"}

    @property
    def finished(self) -> bool:
        status = self.status()
        return status is not None and status.get("status") == FINISHED

    def set_status(self, status: str, **extra: Any) -> None:
        write_json(self.path / STATUS_FILE, {"status": status, "time": time.time(), **extra})

    def file(self, name: str) -> Path:
        return self.path / name
