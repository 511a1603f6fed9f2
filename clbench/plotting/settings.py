"""Runs grouped into *settings*: the seeds of one configuration, averaged in every figure.

By default two runs belong to one setting when their identifying config (everything but seed,
output, threads and device) is equal; ``group_by`` keys (flat config keys such as
``strategy.name`` or ``output.tags.variant``) group by those keys only, pooling the rest. A
setting's label names what tells it apart from the others (``er``, ``train.lr=0.1``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clbench.errors import ConfigError
from clbench.results.labels import distinguishes_results, label_key_order
from clbench.results.labels import setting_labels as labels_of
from clbench.results.reader import RunFolder, flat_config, identifying_config, varying_keys


@dataclass
class Setting:
    label: str
    runs: list[RunFolder]

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def caption(self) -> str:
        """The label with its number of seeds, for legends and panel titles."""
        return f"{self.label} ({self.seeds} seed{'s' if self.seeds != 1 else ''})"


def group_settings(runs: Sequence[RunFolder], group_by: Sequence[str] = ()) -> list[Setting]:
    """Settings in order of first appearance of their runs (``runs`` is sorted by path)."""
    if group_by:
        check_group_keys(runs, group_by)
        keys = [_group_key(run, group_by) for run in runs]
    else:
        # runs that differ only where results cannot (checkpoint settings) share a setting
        keys = [
            tuple(
                sorted(
                    (k, v)
                    for k, v in identifying_config(run.config).items()
                    if distinguishes_results(k)
                )
            )
            for run in runs
        ]
    groups: dict[tuple[Any, ...], list[RunFolder]] = {}
    for key, run in zip(keys, runs, strict=True):
        groups.setdefault(key, []).append(run)
    members = list(groups.values())
    labels = setting_labels([m[0].config for m in members], group_by)
    return [Setting(label, runs) for label, runs in zip(labels, members, strict=True)]


def setting_labels(configs: Sequence[dict[str, Any]], group_by: Sequence[str] = ()) -> list[str]:
    """Labels naming what differs between settings (one config per setting), as in reports
    (`clbench.results.labels`); a single setting is named by its strategy, scenario and data."""
    flats = [flat_config(c) for c in configs]
    keys = list(group_by) or label_key_order(varying_keys(configs))
    labels = labels_of(flats, keys, show_all=bool(group_by))
    return [label or _describe(c) for label, c in zip(labels, configs, strict=True)]


def _describe(config: dict[str, Any]) -> str:
    parts = [config.get(section, {}).get("name") for section in ("strategy", "scenario", "data")]
    return " / ".join(str(p) for p in parts if p is not None) or "run"


def check_group_keys(runs: Sequence[RunFolder], group_by: Sequence[str]) -> None:
    """Every ``group_by`` key must be a flat config key of at least one run."""
    known = sorted({k for run in runs for k in flat_config(run.config)})
    for key in group_by:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3) or known[:8]
            raise ConfigError(
                "--group-by", key, f"a flat config key of the runs, e.g. {', '.join(close)}"
            )


def _group_key(run: RunFolder, group_by: Sequence[str]) -> tuple[Any, ...]:
    flat = flat_config(run.config)
    return tuple(flat.get(k) for k in group_by)


RANK_METRIC = "final_acc"


def rank_settings(settings: Sequence[Setting], metric: str = RANK_METRIC) -> list[Setting]:
    """Best first by the seed mean of ``metric`` (higher is better); settings whose runs lack it
    (no summary, or null) keep their order after the others."""

    def mean(setting: Setting) -> float | None:
        values = []
        for run in setting.runs:
            if run.file("summary.json").is_file():
                value = run.summary["metrics"].get(metric)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values.append(float(value))
        return sum(values) / len(values) if values else None

    means = [mean(s) for s in settings]
    order = sorted(range(len(settings)), key=lambda i: (means[i] is None, -(means[i] or 0.0), i))
    return [settings[i] for i in order]


def keep_best(
    settings: Sequence[Setting], limit: int, kind: str
) -> tuple[list[Setting], str | None]:
    """``settings`` when at most ``limit``; else the ``limit`` best by `RANK_METRIC` (best first)
    and a note saying so and how to choose others: a figure of every setting would be too large
    to read."""
    if len(settings) <= limit:
        return list(settings), None
    note = (
        f"{kind}: {len(settings)} settings are too many for one readable figure; drawn: the "
        f"{limit} with the best {RANK_METRIC} (seed mean). To draw others, pass only their run "
        "folders (e.g. results/er-*) or pool settings with --group-by KEY"
    )
    return rank_settings(settings)[:limit], note


def shown_note(total: int, kept: int) -> str:
    """The figure-title remark for a figure that keeps the best ``kept`` of ``total`` settings."""
    return f" (best {kept} of {total} settings by {RANK_METRIC})" if kept < total else ""
