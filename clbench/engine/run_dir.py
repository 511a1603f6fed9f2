"""Run folders: every file written atomically, with a content digest, status visible while a run
is incomplete.

A run folder is finished when ``status.json`` says ``finished``; that is written last, after the
summary, so a crash never leaves a folder that looks complete. Every result file (config,
manifest, records, losses, summary, ...) is written through `RunDir.write_bytes` and friends,
which record its SHA-256 in ``digests.json`` (itself replaced atomically) just before the file:
`RunDir.verify` then tells a damaged or edited file from a good one. ``status.json`` changes all
the time and is not digested; checkpoints carry their own digest (`clbench.engine.checkpoint`).

This is the write side, with the engine that writes run folders; the read side
(`clbench.results.reader`) builds on its names and `verify_files`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


from clbench.errors import ConfigError, CorruptedResultError

STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.pt"
DIGESTS_FILE = "digests.json"
DIGESTS_FORMAT = 1
# what a finished run must hold, each with a matching digest
FINISHED_FILES = ("config.yaml", "summary.json", "records.parquet", "train_loss.parquet")
# every result file a run writes (all digested); `--force` removes them before starting over
RESULT_FILES = (
    "config.yaml",
    "manifest.json",
    "scenario.txt",
    "records.parquet",
    "train_loss.parquet",
    "eval_subsets.json",
    "accuracy.png",
    "summary.json",
)
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: umask can only be read by setting it
FINISHED = "finished"


# what tempfile.mkstemp(prefix=".<name>.") in `atomic_write` creates: ".<name>.<8 characters>"
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files `atomic_write` left when its process was killed mid-write.

    Call only while holding the folder's lock (`clbench.engine.lock.RunLock`): then no other
    writer can own one. Returns what was removed."""
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and _TEMP_NAME.fullmatch(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(_json_text(obj)))


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_digests(folder: Path) -> dict[str, dict[str, Any]] | None:
    """``digests.json``'s ``{name: {"sha256", "bytes"}}``; None when the folder has none
    (written before digests existed); `CorruptedResultError` when it is unreadable."""
    path = folder / DIGESTS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptedResultError(path, f"not valid JSON: {exc}") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != DIGESTS_FORMAT:
        raise CorruptedResultError(path, f"not a clbench digest list (format {DIGESTS_FORMAT})")
    for name, entry in files.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("bytes"), int)
            or "/" in name
        ):
            raise CorruptedResultError(path, f"bad entry for {name!r}")
    return files


def verify_files(folder: Path, names: Iterable[str] | None = None) -> list[CorruptedResultError]:
    """Check files against ``digests.json``: each of ``names`` (default: every listed file) must
    exist and match its digest. Returns the problems, each naming its file; a folder without
    ``digests.json`` (older clbench) has nothing to check against and yields none."""
    try:
        digests = read_digests(folder)
    except CorruptedResultError as exc:
        return [exc]
    if digests is None:
        return []
    problems = []
    for name in digests if names is None else names:
        path = folder / name
        entry = digests.get(name)
        if entry is None:
            if path.is_file():
                problems.append(CorruptedResultError(path, f"no digest in {DIGESTS_FILE}"))
            else:
                problems.append(CorruptedResultError(path, "missing"))
        elif not path.is_file():
            problems.append(CorruptedResultError(path, f"missing (listed in {DIGESTS_FILE})"))
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            problems.append(
                CorruptedResultError(
                    path, f"content does not match its digest in {DIGESTS_FILE} (damaged or edited)"
                )
            )
    return problems


class RunDir:
    """One run's folder under the results root. Writes go through the methods below, which
    record each file's digest; only the process holding the folder's lock
    (`clbench.engine.lock.RunLock`) may write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests: dict[str, dict[str, Any]] | None = None

    def status(self) -> dict[str, Any] | None:
        """``status.json``; None when absent, ``{"status": "corrupted"}`` when unreadable."""
        status_path = self.path / STATUS_FILE
        if not status_path.is_file():
            return None
        try:
            status = json.loads(status_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"status": "corrupted"}
        if not isinstance(status, dict) or not isinstance(status.get("status"), str):
            return {"status": "corrupted"}
        return status

    @property
    def finished(self) -> bool:
        status = self.status()
        return status is not None and status.get("status") == FINISHED

    def set_status(self, status: str, **extra: Any) -> None:
        write_json(self.path / STATUS_FILE, {"status": status, "time": time.time(), **extra})

    def file(self, name: str) -> Path:
        return self.path / name

    # ---------------------------------------------------------------- digested writes
    def write_bytes(self, name: str, data: bytes) -> None:
        # digest first: a crash in between leaves an old or absent file under a new digest (a
        # mismatch in an unfinished folder, which a rerun rewrites), never a summary.json that
        # marks a complete run finished without its digest
        self._record(name, hashlib.sha256(data).hexdigest(), len(data))
        atomic_write(self.file(name), lambda p: p.write_bytes(data))

    def write_json(self, name: str, obj: Any) -> None:
        self.write_bytes(name, _json_text(obj).encode())

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_parquet(self, name: str, frame: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        self.write_bytes(name, buffer.getvalue())

    def record_file(self, name: str) -> None:
        """Record the digest of a file written by other code (e.g. a plot)."""
        path = self.file(name)
        self._record(name, sha256_file(path), path.stat().st_size)

    def clear_results(self) -> None:
        """Remove every result file and the digest list (starting over with ``--force``)."""
        for name in (*RESULT_FILES, DIGESTS_FILE):
            self.file(name).unlink(missing_ok=True)
        self._digests = {}

    def _loaded_digests(self) -> dict[str, dict[str, Any]]:
        if self._digests is None:
            self._digests = dict(read_digests(self.path) or {})
        return self._digests

    def _record(self, name: str, sha256: str, size: int) -> None:
        self._loaded_digests()[name] = {"sha256": sha256, "bytes": size}
        self._save_digests()

    def _save_digests(self) -> None:
        write_json(
            self.file(DIGESTS_FILE), {"format": DIGESTS_FORMAT, "files": self._loaded_digests()}
        )


def read_summary(run: RunDir) -> dict[str, Any]:
    path = run.file("summary.json")
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptedResultError(path, f"unreadable: {exc}; {AGAIN}") from None
    if not isinstance(summary, dict):
        raise CorruptedResultError(path, f"not a JSON object; {AGAIN}")
    return summary


AGAIN = "use --force to run it again (this replaces its results)"


def check_existing_folder(run: RunDir, this_hash: str) -> dict[str, Any] | None:
    """Check an existing folder before writing to it; its summary when it is finished.

    Raises `ConfigError` for a folder of another config and `CorruptedResultError` (naming the
    file) for damage that could hide or lose results. A finished folder is one whose status
    says so or that holds a ``summary.json`` (written only after a complete run), so a damaged
    or missing ``status.json`` never gets finished results overwritten.
    """
    if not run.path.is_dir():
        return None
    config_path = run.file("config.yaml")
    if config_path.is_file():
        import yaml

        from clbench.config import config_hash, resolve_config

        for problem in verify_files(run.path, ["config.yaml"]):
            raise CorruptedResultError(problem.path, f"{problem.reason}; {AGAIN}")
        try:
            theirs = config_hash(resolve_config(yaml.safe_load(config_path.read_text())))
        except (yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:
            reason = f"not a usable config: {exc}; {AGAIN}"
            raise CorruptedResultError(config_path, reason) from None
        if theirs != this_hash:
            raise ConfigError(
                "output.name",
                run.path.name,
                f"a name not used by another config ({run.path} holds a run of config hash "
                f"{theirs}, this config is {this_hash}); choose another output.name, or use "
                "--force to replace that run",
            )
    status = run.status()
    present = [n for n in ("summary.json", "records.parquet") if run.file(n).is_file()]
    if status is not None and status["status"] == "corrupted" and present:
        raise CorruptedResultError(
            run.file(STATUS_FILE),
            f"unreadable, and the folder holds results ({', '.join(present)}); {AGAIN}",
        )
    finished = (status is not None and status["status"] == FINISHED) or "summary.json" in present
    if not finished:
        return None  # partial files are rewritten; the checkpoint is checked when loaded
    for name in FINISHED_FILES:
        if not run.file(name).is_file():
            raise CorruptedResultError(run.file(name), f"missing from a finished run; {AGAIN}")
    for problem in verify_files(run.path):
        raise CorruptedResultError(problem.path, f"{problem.reason}; {AGAIN}")
    return read_summary(run)


def finished_summary(run: RunDir, this_hash: str) -> dict[str, Any] | None:
    """The summary of the finished run in ``run``, or None if it holds none: what lets a run
    that is already done be answered before any data loads. Checked as `check_existing_folder`
    checks it, under the folder's lock, after a killed writer's temp files are removed."""
    if not (run.finished or run.file("summary.json").is_file()):
        return None
    from clbench.engine.lock import RunLock

    with RunLock(run.path):
        remove_stale_temp_files(run.path)
        return check_existing_folder(run, this_hash)
