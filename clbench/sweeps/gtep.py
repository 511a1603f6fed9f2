"""GTEP (Cha & Cho, TMLR 2025): pick hyperparameters on a tuning scenario, report on another.

Phase 1 runs every grid point of every entry on the tuning scenario over the tuning seeds; per
entry, the point with the best mean of ``select.metric`` (``mode`` max or min) is chosen, ties
going to the first point in expansion order. Phase 2 runs only the chosen point of each entry on
the evaluation scenario over the evaluation seeds (arXiv 2403.09066; official code
csm9493/GTEP@4cb3895).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clbench.errors import ConfigError
from clbench.reporting.columns import HIGHER_IS_BETTER, LOWER_IS_BETTER, direction
from clbench.results.reader import RunFolder
from clbench.sweeps.suite import GtepSelect, PlannedRun, point_label

SELECTION_FILE = "gtep_selection.json"


def check_metric(select: GtepSelect) -> None:
    """The metric must be one the report ranks (one direction table for both)."""
    if direction(select.metric) is None:
        allowed = ", ".join(
            [*sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER), "wf_<window>", "wp_<window>"]
        )
        raise ConfigError("suite.protocol.select.metric", select.metric, f"one of: {allowed}")


def select_points(tuning: list[PlannedRun], root: Path, select: GtepSelect) -> dict[str, Any]:
    """Tuning means per entry and grid point, and the chosen point of each entry.

    A point's mean is over its finished tuning runs; runs that failed, diverged or have no value
    for the metric are left out and counted in ``missing``.
    """
    entries: dict[str, dict[str, Any]] = {}
    for run in tuning:
        entry = entries.setdefault(run.entry, {"points": {}})
        label = point_label(run.point)
        point = entry["points"].setdefault(
            label, {"point": run.point, "values": [], "run_ids": [], "missing": 0}
        )
        value = _metric(root / run.run_id, select.metric)
        point["run_ids"].append(run.run_id)
        if value is None:
            point["missing"] += 1
        else:
            point["values"].append(value)
    sign = 1 if select.mode == "max" else -1
    for entry in entries.values():
        points = list(entry["points"].values())
        for point in points:
            values = point["values"]
            point["mean"] = sum(values) / len(values) if values else None
        scored = [p for p in points if p["mean"] is not None]
        best = max(scored, key=lambda p: sign * p["mean"], default=None)  # first max wins
        entry["points"] = points
        entry["chosen"] = None if best is None else best["point"]
        entry["chosen_mean"] = None if best is None else best["mean"]
    return {"metric": select.metric, "mode": select.mode, "entries": entries}


def _metric(path: Path, metric: str) -> float | None:
    run = RunFolder(path)
    if not path.is_dir() or run.status != "finished":
        return None
    value = run.summary["metrics"].get(metric)
    return float(value) if isinstance(value, int | float) else None


def chosen_runs(selection: dict[str, Any], evaluation: list[PlannedRun]) -> list[PlannedRun]:
    """The evaluation-phase runs of each entry's chosen point."""
    chosen = {name: e["chosen"] for name, e in selection["entries"].items()}
    return [r for r in evaluation if chosen.get(r.entry) is not None and r.point == chosen[r.entry]]


def format_selection(selection: dict[str, Any]) -> str:
    """Readable table: every tuning mean, the chosen point starred."""
    lines = [f"GTEP selection ({selection['mode']} mean {selection['metric']} over tuning seeds):"]
    for name, entry in selection["entries"].items():
        lines.append(f"  {name}:")
        for point in entry["points"]:
            mark = "*" if point["point"] == entry["chosen"] else " "
            mean = "n/a" if point["mean"] is None else f"{point['mean']:.4f}"
            n = len(point["values"])
            missing = f", {point['missing']} missing" if point["missing"] else ""
            lines.append(f"   {mark} {point_label(point['point'])}: {mean} (n={n}{missing})")
        if entry["chosen"] is None:
            lines.append("    no tuning run finished: this entry is not evaluated")
    return "\n".join(lines)
