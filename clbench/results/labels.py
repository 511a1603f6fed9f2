"""Labels for settings (groups of runs): names first, then only the settings that tell apart
groups with the same names. Reports (table rows) and figures (legends, panel titles) share it.

``er / digits (buffer_size=200)`` next to ``er / digits (buffer_size=50)``, plain ``naive`` and
``er+view_batch (view_batch.views=4)`` (a strategy and its plugins are one learner):
a key that differs only because another strategy lacks it (naive has no buffer_size) is noise,
and a strategy run in one setting needs no settings at all. Nor is a setting the run hash leaves
out (`clbench.config.HASH_EXCLUDED`: output, checkpointing): it never changes results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clbench.config import HASH_EXCLUDED


def distinguishes_results(key: str) -> bool:
    """Whether a flat config key can tell two runs' results apart: False for the sections the run
    hash excludes (``checkpoint.every``, ``output.root``), whose values never change a number."""
    return key.split(".", 1)[0] not in HASH_EXCLUDED


def value_text(value: Any) -> str:
    """A key value as people write it in overrides: ``200``, ``0.05``, ``[32, 32]``, ``None``."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def label_key_order(keys: Sequence[str]) -> list[str]:
    """Names first (the strategy's first), then the strategy's settings, then the rest."""
    return sorted(
        keys,
        key=lambda k: (
            not k.endswith(".name"),
            k != "strategy.name",
            not k.startswith("strategy."),
            k,
        ),
    )


def _short(key: str) -> str:
    """``strategy.buffer_size`` -> ``buffer_size``: a method's own settings need no section
    (a plugin's keep the plugin's name: ``view_batch.views``)."""
    return key.removeprefix("strategy.").removeprefix("plugins.")


def _label(values: Mapping[str, Any], names: Sequence[str], shown: Sequence[str]) -> str:
    parts = {k: value_text(values[k]) for k in names if values.get(k) is not None}
    if "plugins.name" in parts and "strategy.name" in parts:  # er+view_batch: one learner
        parts["strategy.name"] += "+" + parts.pop("plugins.name")
    head = " / ".join(parts.values())
    settings = ", ".join(
        f"{_short(k)}={value_text(values[k])}" for k in shown if values.get(k) is not None
    )
    if head and settings:
        return f"{head} ({settings})"
    return head or settings


def setting_labels(
    settings: Sequence[Mapping[str, Any]], keys: Sequence[str], show_all: bool = False
) -> list[str]:
    """One label per setting (its values of ``keys``); ``show_all`` names every key (the user
    chose them), else only what differs within groups of equal names and can change results
    (`distinguishes_results`). An empty label means the keys say nothing (the caller names the
    setting otherwise)."""
    if not show_all:
        keys = [k for k in keys if distinguishes_results(k)]
    names = [k for k in keys if k.endswith(".name")]
    others = [k for k in keys if k not in names]
    same_names: dict[tuple[str, ...], list[int]] = {}
    for i, values in enumerate(settings):
        same_names.setdefault(tuple(value_text(values.get(k)) for k in names), []).append(i)
    labels = [""] * len(settings)
    for members in same_names.values():
        shown = others
        if not show_all:
            shown = [
                k for k in others if len({value_text(settings[i].get(k)) for i in members}) > 1
            ]
        for i in members:
            labels[i] = _label(settings[i], names, shown)
    if len(set(labels)) < len(labels):  # shortening lost a difference: say everything
        labels = [_label(values, names, others) for values in settings]
    return labels
