"""Reading run folders back: status, resolved config, summary and records.

The write side (`clbench.engine.run_dir`) guarantees a folder is *finished* only when
``status.json`` says so, written last. The read side never trusts a file blindly: every file that
exists but cannot be parsed raises `CorruptedResultError` naming it, and `load_runs` sorts folders
into finished, partial (running, failed, interrupted, diverged) and corrupted ones so reports can
skip and count what they do not use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.config import normalized_eval, without_later_defaults
from clbench.engine.run_dir import FINISHED, FINISHED_FILES, STATUS_FILE, verify_files
from clbench.errors import ConfigError, CorruptedResultError

if TYPE_CHECKING:
    import pandas as pd

PARTIAL_STATUSES = ("running", "failed", "interrupted", "diverged")


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; unreadable or non-UTF-8 content names the file and byte."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptedResultError(path, f"unreadable: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptedResultError(
            path, f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})"
        ) from None


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise CorruptedResultError(path, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise CorruptedResultError(path, "not valid JSON: nested too deeply") from None


def _check_types(
    path: Path, info: dict[str, Any], expected: dict[str, type | tuple[type, ...]]
) -> None:
    """Known keys, when present, have the types the writers give them (a hand-edited or
    damaged file fails here, naming the file, not deep inside a report)."""
    for key, kinds in expected.items():
        value = info.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise CorruptedResultError(
                path, f"{key!r} is {type(value).__name__}, expected {_kind_names(kinds)}"
            )


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {"dict": "an object", "str": "a string", "list": "a list"}
    return " or ".join(names.get(k.__name__, "a number") for k in kinds)


def _is_metric(value: Any) -> bool:
    """A summary metric: a number, null, or a list/object (per task, per window, per gap)."""
    return value is None or isinstance(value, int | float | list | dict)


def _read_mapping_json(path: Path) -> dict[str, Any]:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise CorruptedResultError(path, f"expected a JSON object, got {type(value).__name__}")
    return value


@dataclass
class RunFolder:
    """One run folder as found on disk; files are read lazily and validated when read."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    @cached_property
    def status_info(self) -> dict[str, Any]:
        """``status.json`` (``{"status": "missing"}`` when there is none)."""
        path = self.file(STATUS_FILE)
        if not path.is_file():
            return {"status": "missing"}
        info = _read_mapping_json(path)
        if not isinstance(info.get("status"), str):
            raise CorruptedResultError(path, "no 'status' string")
        _check_types(path, info, {"time": (int, float), "pid": int, "host": str, "step": int})
        return info

    @property
    def status(self) -> str:
        return str(self.status_info["status"])

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved run config (``config.yaml``)."""
        path = self.file("config.yaml")
        if not path.is_file():
            raise CorruptedResultError(path, "missing")
        from clbench.config import parse_yaml  # safe: no Python tags, bounded aliases

        try:
            config = parse_yaml(_read_text(path), "config.yaml", str(path))
        except ConfigError as exc:
            raise CorruptedResultError(path, f"not valid YAML: {exc.allowed}") from None
        if not isinstance(config, dict):
            raise CorruptedResultError(path, "expected a mapping of config sections")
        # what every resolved config has (readers index these without checking)
        for section in ("data", "scenario", "model", "strategy"):
            if not isinstance(config.get(section), dict) or not isinstance(
                config[section].get("name"), str
            ):
                raise CorruptedResultError(path, f"{section!r} is not a section with a name")
        if isinstance(config.get("seed"), bool) or not isinstance(config.get("seed"), int):
            raise CorruptedResultError(path, "'seed' is not an integer")
        return config

    @cached_property
    def summary(self) -> dict[str, Any]:
        """``summary.json`` (metrics, budget, strategy report); present once a run finished."""
        path = self.file("summary.json")
        if not path.is_file():
            raise CorruptedResultError(path, "missing")
        summary = _read_mapping_json(path)
        if not isinstance(summary.get("metrics"), dict):
            raise CorruptedResultError(path, "no 'metrics' object")
        for name, value in summary["metrics"].items():
            if not _is_metric(value):
                raise CorruptedResultError(
                    path, f"metric {name!r} is not a number, null, a list or an object"
                )
        _check_types(
            path,
            summary,
            {"budget": dict, "tags": dict, "strategy_report": dict, "run_id": str, "seed": int},
        )
        return summary

    @cached_property
    def manifest(self) -> dict[str, Any]:
        path = self.file("manifest.json")
        if not path.is_file():
            raise CorruptedResultError(path, "missing")
        return _read_mapping_json(path)

    def records(self) -> pd.DataFrame:
        """The evaluation records (long format, see `clbench.engine.records`)."""
        return self._parquet("records.parquet")

    def train_loss(self) -> pd.DataFrame:
        return self._parquet("train_loss.parquet")

    def _parquet(self, name: str) -> pd.DataFrame:
        import pandas as pd  # only the records need it: a summary or status answers without

        path = self.file(name)
        if not path.is_file():
            raise CorruptedResultError(path, "missing")
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for truncated files
            raise CorruptedResultError(path, f"not a readable Parquet file: {exc}") from None

    def validate(self) -> None:
        """Read everything a finished run must have and check it against the digests the run
        recorded (`digests.json`); raise `CorruptedResultError` naming the first bad file."""
        problems = verify_files(self.path, FINISHED_FILES)
        if problems:
            raise problems[0]
        _ = self.status_info, self.config, self.summary
        self.records()


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders (folders with ``status.json`` or ``config.yaml``) at or under ``paths``."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError("results", str(path), "an existing run folder or results folder")
        if _is_run(path):
            found.add(path)
            continue
        for marker in (*path.rglob(STATUS_FILE), *path.rglob("config.yaml")):
            if _is_run(marker.parent):
                found.add(marker.parent)
    # a run folder holds no other run: a config.yaml inside one is a tracker's copy (e.g. W&B's
    # trackers/wandb/offline-run-*/files/config.yaml), not a run
    return sorted(p for p in found if not any(parent in found for parent in p.parents))


def _is_run(path: Path) -> bool:
    return path.is_dir() and ((path / STATUS_FILE).is_file() or (path / "config.yaml").is_file())


@dataclass
class LoadedRuns:
    """Run folders sorted by what a report can use."""

    finished: list[RunFolder] = field(default_factory=list)
    partial: list[RunFolder] = field(default_factory=list)
    corrupted: list[tuple[Path, str]] = field(default_factory=list)

    def describe_skipped(self) -> str | None:
        """One line saying what was left out and why, or None when nothing was."""
        parts = []
        if self.partial:
            counts: dict[str, int] = {}
            for run in self.partial:
                counts[run.status] = counts.get(run.status, 0) + 1
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            parts.append(f"{len(self.partial)} partial run(s) ({detail})")
        if self.corrupted:
            parts.append(
                f"{len(self.corrupted)} corrupted run(s): "
                + "; ".join(f"{reason}" for _, reason in self.corrupted)
            )
        return ("skipped " + " and ".join(parts)) if parts else None


def load_runs(paths: Sequence[str | Path], include_partial: bool = False) -> LoadedRuns:
    """Open every run folder under ``paths``; finished runs are fully validated.

    Partial runs (not finished) go to ``partial`` (or ``finished`` with ``include_partial``,
    config only); unreadable ones to ``corrupted`` with the reason naming the file.
    """
    loaded = LoadedRuns()
    for path in find_runs(paths):
        run = RunFolder(path)
        try:
            if run.finished:
                run.validate()
                loaded.finished.append(run)
            else:
                _ = run.config
                (loaded.finished if include_partial else loaded.partial).append(run)
        except CorruptedResultError as exc:
            loaded.corrupted.append((path, str(exc)))
    return loaded


# Settings that never distinguish two runs' *method or setting*: the seed varies within a group,
# output only says where results go, and threads/device only how fast they came.
NON_IDENTIFYING = ("seed", "output", "threads", "device")


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"strategy.name": "er", "train.lr": 0.05, ...}``; lists become tuples (hashable).

    Plugins give ``plugins.name`` (``view_batch+fpf``, in order) and ``plugins.<name>.<param>``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name == "eval" and isinstance(value, dict):
            value = normalized_eval(value)  # `every` runs: no adaptive-schedule keys
        if name == "train" and isinstance(value, dict):
            value = without_later_defaults("train", value)  # as runs before the recipe keys
        if name == "plugins":  # {view_batch: {...}} -> plugins.name "view_batch" + parameters
            if value:
                flat["plugins.name"] = "+".join(value)
                flat.update(flat_config(value, "plugins."))
            continue  # no plugins: no key, as in runs made before plugins existed
        if isinstance(value, dict) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = _hashable(value)
    return flat


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def identifying_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flat config without seed, output, threads and device: equal for seeds of one setting."""
    return {
        k: v for k, v in flat_config(config).items() if k.split(".", 1)[0] not in NON_IDENTIFYING
    }


def varying_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Identifying keys whose value differs between ``configs`` (what tells the groups apart)."""
    flats = [identifying_config(c) for c in configs]
    keys = sorted({k for f in flats for k in f})
    varying = [k for k in keys if len({f.get(k, None) for f in flats}) > 1]
    if "plugins.name" in varying and "strategy.name" not in varying:
        varying.append("strategy.name")  # "er" vs "er+view_batch": plugins modify a strategy
    return sorted(varying)
