"""The resumable runs the checkpoint tests (test_resume.py, test_resume_chaos.py) go through, and
a run stopped and resumed from its checkpoint file at given updates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clbench.config import RunConfig
from clbench.engine.checkpoint import Checkpointer, load_checkpoint
from clbench.engine.run_dir import CHECKPOINT_FILE
from clbench.engine.runner import Experiment, RunInterrupted, prepare
from clbench.registry import STRATEGIES
from tests.helpers import strategy_overrides

RESUMABLE_STRATEGIES = sorted(
    n for n in STRATEGIES.names() if not n.startswith("_") and STRATEGIES.get(n).resumable
)
# plugins carry state too (FPF's own memory and sensitivity snapshots, View-Batch's KL sums):
# each over a strategy whose memory it shares, and FPF over one without a memory (its own)
WITH_PLUGINS = ["er+fpf", "er+view_batch", "naive+fpf"]
RESUMABLE = RESUMABLE_STRATEGIES + WITH_PLUGINS
PLUGIN_PARAMS: dict[str, dict[str, Any]] = {
    # the KL term from the second epoch on: a resumed run must know the epoch it is in
    "view_batch": {"ssl_start_epoch": 1},
    "fpf": {"when": "every_phase"},  # FPF runs inside the resumed stretch too
}


def resume_overrides(tmp_path: Path, name: str, backbone: Path) -> list[str]:
    """Overrides of a small run of ``name`` (one of `RESUMABLE`: a strategy, or
    ``strategy+plugin``), evaluated every 3 updates."""
    strategy, *plugins = name.split("+")
    return strategy_overrides(
        tmp_path,
        strategy,
        backbone,
        plugins={p: PLUGIN_PARAMS[p] for p in plugins},
        pretrained={"train.batch_size": 64},
        **{"eval.every": 3},
    )


def run_with_stops(config: RunConfig, stops: set[int], folder: Path) -> Experiment:
    """Run ``config`` to the end, stopping (as on SIGTERM) after each update in ``stops`` and
    resuming from the checkpoint file in ``folder`` (checkpoints at phase ends and stops only);
    returns the experiment that finished."""
    path, left = folder / CHECKPOINT_FILE, set(stops)
    while True:
        exp = Experiment(prepare(config))
        if path.exists():
            exp.restore(*load_checkpoint(path))

        def should_stop(exp: Experiment = exp) -> str | None:
            return "SIGTERM" if exp.loop.step in left else None

        try:
            exp.run(None, Checkpointer(path, 0, True), should_stop)
        except RunInterrupted as stop:
            assert stop.position.step in left, f"stopped at {stop.position.step}, not in {left}"
            left.discard(stop.position.step)
            continue
        assert not left, f"never stopped at {sorted(left)}"
        return exp
