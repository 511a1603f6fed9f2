"""An exclusive lock per run folder, so two processes never write one folder at once.

The lock is ``fcntl.flock`` on ``<folder>/.lock``: the kernel releases it when the holder's
process ends, however it ends (SIGKILL included), so a crash never leaves a stale lock. The file
holds the holder's pid and host (for the refusal message and `clbench info`); it is never
deleted, because unlinking a lock file races with a process about to lock it.

    with RunLock(folder):          # raises RunLockedError (exit 2) when another process holds it
        ...                        # write the folder
    holder = lock_holder(folder)   # None when free, else {"pid": ..., "host": ...}
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from clbench.errors import ClbenchError

LOCK_FILE = ".lock"


class RunLockedError(ClbenchError):
    """The run folder is locked by another process (which is alive: the OS drops dead ones)."""

    def __init__(self, folder: Path, holder: dict[str, Any] | None) -> None:
        self.folder, self.holder = folder, holder
        who = (
            f"pid {holder.get('pid')} on host {holder.get('host')}"
            if holder
            else "another process (pid not yet recorded)"
        )
        super().__init__(
            f"{folder}: run folder is in use by {who}; wait for it to end or stop that process"
        )


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class RunLock:
    """Exclusive, non-blocking lock on a run folder (created if missing), held until `release`
    or the end of the process. Re-entrant use of one object is an error; two objects on one
    folder conflict even within one process (flock locks belong to open files)."""

    def __init__(
        self,
        folder: Path,
        attempts: int = 3,
        retry_s: float = 0.05,
        *,
        name: str = LOCK_FILE,
        stamp: dict[str, Any] | None = None,
    ) -> None:
        """``name``: the lock file in ``folder`` (a sweep locks its results root with its own);
        ``stamp``: more facts recorded for whoever finds it held (e.g. the sweep's name)."""
        self.folder, self.path = Path(folder), Path(folder) / name
        # a few quick retries ride out `lock_holder` probes, which lock for a moment
        self.attempts, self.retry_s = attempts, retry_s
        self.stamp = dict(stamp or {})
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        for attempt in range(self.attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == self.attempts - 1:
                    os.close(fd)
                    raise RunLockedError(self.folder, _read_holder(self.path)) from None
                time.sleep(self.retry_s)
        # record the holder in place (no rename: the lock belongs to this inode)
        stamp = {
            **self.stamp,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(stamp) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_holder(folder: Path) -> dict[str, Any] | None:
    """Who holds ``folder``'s lock: ``{"pid", "host", "since"}``, or None when nobody does.

    Probes with a shared lock for an instant (creates nothing; a folder without a lock file is
    free)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": None, "host": None}
    finally:
        os.close(fd)
    return None
