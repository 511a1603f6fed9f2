"""`clbench.load` and `clbench.load_records`: run folders as pandas frames for notebooks."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from clbench.results.reader import LoadedRuns

Paths = str | Path | Sequence[str | Path]


def expand_paths(paths: Paths) -> list[Path]:
    """Paths and shell-style globs (``results/*er*``) to existing paths; a pattern or path that
    matches nothing is an error naming it (a typo should not silently load zero runs)."""
    from clbench.errors import ConfigError

    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise ConfigError("paths", [], "at least one run folder, results folder or glob")
    found: list[Path] = []
    for item in items:
        text = str(item)
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        matches = [m for m in matches if Path(m).exists()]
        if not matches:
            raise ConfigError("paths", text, "an existing run folder, results folder or glob")
        found.extend(Path(m) for m in matches)
    return list(dict.fromkeys(found))


def _loaded(paths: Paths, include_partial: bool) -> LoadedRuns:
    from clbench.results.reader import load_runs

    return load_runs(expand_paths(paths), include_partial=include_partial)


def load(paths: Paths, *, include_partial: bool = False) -> pd.DataFrame:
    """One row per run under ``paths`` (folders, results roots or globs): ``run``, ``path``,
    ``status``, ``seed``, the config flattened to dotted columns (``strategy.name``, ...),
    ``tags.*``, then every summary metric and budget entry. Finished runs only, unless
    ``include_partial``; corrupted folders are skipped (`clbench report --strict` names them)."""
    from clbench.reporting.frame import build_frame

    runs = _loaded(paths, include_partial).finished  # partial ones too with include_partial
    if not runs:
        import pandas as pd

        return pd.DataFrame()
    return build_frame(runs).frame


def with_accuracy(records: pd.DataFrame) -> pd.DataFrame:
    """The records with ``acc = correct / n`` after ``correct`` (what a plot usually wants)."""
    records.insert(records.columns.get_loc("correct") + 1, "acc", records["correct"] / records["n"])
    return records


def load_records(paths: Paths, *, include_partial: bool = False) -> pd.DataFrame:
    """Every evaluation of every run, long format: ``run``, the config keys that differ between
    the runs (so ``hue="strategy.name"`` works in a plot), then the records' columns (``step``,
    ``phase``, ``current_task``, ``task``, ``kind``, ``n``, ``correct``, ``loss``; see
    ``docs/results.md``) with ``acc = correct / n``."""
    import pandas as pd

    from clbench.results.reader import identifying_config, varying_keys

    # a partial run without a records file yet has nothing to add
    runs = [
        r for r in _loaded(paths, include_partial).finished if r.file("records.parquet").exists()
    ]
    configs = [identifying_config(run.config) for run in runs]
    keys = varying_keys([run.config for run in runs])
    frames = []
    for run, config in zip(runs, configs, strict=True):
        records = with_accuracy(run.records())
        records.insert(0, "run", run.path.name)
        for position, key in enumerate(keys, start=1):
            records.insert(position, key, [config.get(key)] * len(records))
        frames.append(records)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
