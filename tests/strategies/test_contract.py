"""The strategy API contract, over every registered strategy and plugin.

Each strategy × plugin pair is either refused before the run (naming the route the strategy does
not honour) or runs: a smoke run, a resume round trip from a checkpoint inside a later phase
(bit-identical records and parameters), and, for a plugin with a loss term, a check that the term
reaches the strategy's update (the run differs from one with the term switched off).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from clbench.config import build_config
from clbench.engine.checkpoint import Checkpointer, load_checkpoint
from clbench.engine.run_dir import CHECKPOINT_FILE
from clbench.engine.runner import Experiment, prepare
from clbench.errors import IncompatibleError
from clbench.registry import PLUGINS, STRATEGIES
from clbench.strategy import Plugin
from tests.helpers import strategy_overrides

STRATEGY_NAMES = [n for n in STRATEGIES.names() if not n.startswith("_")]
PLUGIN_NAMES = [n for n in PLUGINS.names() if not n.startswith("_")]
# settings that make each plugin act within a seconds-long run
PLUGIN_PARAMS: dict[str, dict[str, Any]] = {
    "view_batch": {"views": 2, "ssl_start_epoch": 0},
    "fpf": {"iterations": 3, "buffer_size": 40},
}


def overrides(tmp_path: Path, strategy: str, plugin: str | None, backbone: Path) -> list[str]:
    """A 2-task run of ``strategy`` (with ``plugin``), evaluated every 4 updates."""
    plugins = {} if plugin is None else {plugin: PLUGIN_PARAMS.get(plugin, {})}
    extra = {"scenario.n_experiences": 2, "eval.every": 4}
    return strategy_overrides(tmp_path, strategy, backbone, plugins=plugins, **extra)


def fingerprint(exp: Experiment) -> tuple[pd.DataFrame, list[torch.Tensor]]:
    params = [p.detach().clone() for net in exp.strategy.networks() for p in net.parameters()]
    return exp.log.frame(), params


def assert_same_run(a: Experiment, b: Experiment, what: str) -> None:
    (ra, pa), (rb, pb) = fingerprint(a), fingerprint(b)
    pd.testing.assert_frame_equal(ra, rb)
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True)), what


def smoke(exp: Experiment) -> None:
    exp.run()
    records = exp.log.frame()
    assert set(records.task) == set(range(exp.prepared.plan.num_tasks))
    assert all(math.isfinite(float(x)) for x in exp.train_losses)
    assert exp.loop.step == exp.loop.plan.total_updates == exp.timing.updates
    pd.io.json.ujson_dumps(exp.report())  # JSON-serialisable for summary.json


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_runs_and_declares_its_parts(tmp_path, strategy, resnet18_backbone):
    config = build_config(None, overrides(tmp_path, strategy, None, resnet18_backbone))
    exp = Experiment(prepare(config))
    smoke(exp)
    params, memories = exp.budget_parts()
    assert params and all(p.numel() for p in params)
    uses_buffer = STRATEGIES.get(strategy).capabilities.uses_buffer
    memory = exp.strategy.memory()
    assert (memory is not None) == uses_buffer, "memory() vs uses_buffer"
    assert memories == ([memory] if uses_buffer else [])


@pytest.mark.parametrize("plugin", PLUGIN_NAMES)
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_plugin_pair_runs_or_is_refused(
    tmp_path, strategy, plugin, resnet18_backbone
):
    config = build_config(None, overrides(tmp_path, strategy, plugin, resnet18_backbone))
    learner, extension = STRATEGIES.get(strategy), PLUGINS.get(plugin)
    missing = (
        extension(extension.Config.model_validate(config.plugins[plugin])).needs(
            learner(learner.Config.model_validate({}))
        )
        - learner.capabilities.routes
    )
    if missing:
        with pytest.raises(IncompatibleError, match=sorted(missing)[0]):
            prepare(config)
        return
    reference = Experiment(prepare(config))
    built = reference.plugins.plugins[0]
    loss_plugin = type(built).loss_term is not Plugin.loss_term
    terms = spy_on_loss_terms(built) if loss_plugin else []
    path = tmp_path / CHECKPOINT_FILE
    saved: list[Any] = []

    class Keep(Checkpointer):
        def save(self, checkpoint: dict[str, Any]) -> None:
            super().save(checkpoint)
            saved.append(load_checkpoint(self.path))

    resumable = learner.resumable
    reference.run(checkpointer=Keep(path, 3, True) if resumable else None)
    records = reference.log.frame()
    assert set(records.task) == set(range(reference.prepared.plan.num_tasks))
    assert all(math.isfinite(float(x)) for x in reference.train_losses)
    if resumable:
        inside = [c for c in saved if c[0].in_phase and c[0].phase > 0]
        assert inside, "the stream must offer a checkpoint inside a later phase"
        resumed = Experiment(prepare(config))
        resumed.restore(*inside[0])
        resumed.run()
        assert_same_run(resumed, reference, f"{strategy}+{plugin}: resume differs")
    if loss_plugin:
        # the term was added, and switching it off trains other parameters
        assert any(t is not None and t.requires_grad for t in terms), "the term was never added"
        off = Experiment(prepare(config))
        off.plugins.plugins[0].loss_term = lambda logits, batch: None  # type: ignore[method-assign]
        off.run()
        _, with_term = fingerprint(reference)
        _, without = fingerprint(off)
        changed = any(not torch.equal(a, b) for a, b in zip(with_term, without, strict=True))
        assert changed, "the loss term did not change the update"


def spy_on_loss_terms(plugin: Plugin) -> list[torch.Tensor | None]:
    """Record every term ``plugin.loss_term`` returns (passing it on unchanged)."""
    terms: list[torch.Tensor | None] = []
    original = plugin.loss_term

    def spy(logits: torch.Tensor, batch: Any) -> torch.Tensor | None:
        term = original(logits, batch)
        terms.append(term)
        return term

    plugin.loss_term = spy  # type: ignore[method-assign]
    return terms
