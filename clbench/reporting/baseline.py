"""``--baseline``: the row that ablation deltas are measured against.

The baseline is named by a row label exactly as the table prints it (``"er (buffer_size=200)"``)
or by ``KEY=VALUE[,KEY=VALUE...]`` over run keys (``strategy.name=naive``), which must pick one
row per table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from clbench.errors import ConfigError
from clbench.reporting.frame import RunFrame
from clbench.results.labels import value_text


@dataclass(frozen=True)
class BaselineSpec:
    text: str

    def conditions(self, runs: RunFrame) -> list[tuple[str, str]]:
        """``KEY=VALUE`` pairs of the spec; every KEY must be a run key."""
        pairs = []
        for part in self.text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in runs.key_columns:
                return []
            pairs.append((key, value.strip()))
        return pairs

    def matches(self, label: str, run_rows: Sequence[int], runs: RunFrame) -> bool:
        if label == self.text:
            return True
        conditions = self.conditions(runs)
        return bool(conditions) and all(
            _same(runs.key_value(i, key), value) for key, value in conditions for i in run_rows
        )

    def error(self, labels: Sequence[str], reason: str) -> ConfigError:
        shown = ", ".join(repr(label) for label in dict.fromkeys(labels))
        return ConfigError(
            "--baseline",
            self.text,
            f"a row label ({shown}) or KEY=VALUE[,KEY=VALUE] over run keys picking one row per "
            f"table; {reason}",
        )


def _same(value: Any, text: str) -> bool:
    """Does a run's key value equal ``text`` as typed on the command line (``1e-3`` = 0.001)?"""
    if value_text(value) == text:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return math.isclose(float(value), float(text), rel_tol=1e-9)
        except ValueError:
            return False
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return (tuple(parsed) if isinstance(parsed, list) else parsed) == value
