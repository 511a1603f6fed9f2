"""iCaRL (Rebuffi et al., CVPR 2017): herding (Alg. 4) picks the hand-computed exemplars, the
memory keeps ⌊K / classes seen⌋ per class with old classes cut to their first exemplars (Alg. 5),
the evaluator scores by nearest mean of exemplars (Alg. 1), the old classes' targets are the
previous phase's network outputs (Alg. 3), and a run stopped and resumed inside a phase is
bit-identical."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from clbench.config import build_config
from clbench.engine.runner import Experiment, prepare
from clbench.errors import IncompatibleError
from clbench.strategies.icarl import NO_MEAN_SCORE, herding_order
from tests.engine.helpers import run_with_stops
from tests.helpers import IMAGE_RUN, experiment, fast_overrides

ICARL = {"strategy.name": "icarl"}
SYNTHETIC_ONLY = ("data.num_classes", "data.dim", "data.train_per_class", "data.test_per_class")
SYNTHETIC_ONLY += ("data.noise", "model.hidden")


def image_experiment(tmp_path, **extra) -> Experiment:
    """Digits as images, two 2-class tasks, a small ResNet (BatchNorm), crop/flip."""
    settings = {**IMAGE_RUN, "train.augment": "crop_flip", **extra}
    overrides = fast_overrides(tmp_path, **settings)
    config = build_config(None, [o for o in overrides if not o.startswith(SYNTHETIC_ONLY)])
    return Experiment(prepare(config))


def test_herding_picks_the_hand_computed_exemplars():
    """Five unit vectors with mean μ = (0.12, 0.16). Squared costs |μ - mean of the picks|²:
    step 1: 0.80, 0.72, 1.28, 1.36, 0.64 -> f4; step 2 ((f4 + f) / 2): 0.52, 0.58, 0.16, 0.10
    -> f3, the sample *farthest* from μ, which cancels f4's offset; step 3: 0.222, 0.018, 0.116
    -> f1; step 4: 0.08, 0.05 -> f2; then f0. Sorting by distance to μ would give 4, 1, 0, 2, 3."""
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.6, 0.8]])
    assert herding_order(f, 5).tolist() == [4, 3, 1, 2, 0]
    assert herding_order(f, 2).tolist() == [4, 3]  # a prefix: smaller memories keep the first
    assert herding_order(f, 9).tolist() == [4, 3, 1, 2, 0]  # never more than the class has


def test_memory_holds_floor_k_over_classes_seen_chosen_by_herding(tmp_path):
    """K = 10 over 4 phases of 2 classes: 5, 2, 1, 1 per class. Each new class gets the herding
    order of its phase samples' features at the phase end; each old class keeps the first
    exemplars it had (Alg. 5)."""
    exp = experiment(tmp_path, run=False, **ICARL, **{"strategy.buffer_size": 10})
    strategy = exp.strategy
    after_phase = strategy.after_phase
    seen: list[dict[int, list[int]]] = []

    def spy(k: int) -> None:
        before = _by_class(strategy.memory())
        parts = exp.loop.plan.parts[k]
        index = torch.cat([torch.as_tensor(p.indices) for p in parts])
        task = torch.cat([torch.full((len(p.indices),), p.task) for p in parts])
        features, target = strategy._features(index, task)
        after_phase(k)
        after = _by_class(strategy.memory())
        per_class = 10 // len(after)
        assert {c: len(v) for c, v in after.items()} == dict.fromkeys(after, per_class)
        for cls, kept in after.items():
            if cls in before:
                assert kept == before[cls][:per_class]
            else:
                members = torch.nonzero(target == cls).squeeze(1)
                assert kept == index[members[herding_order(features[members], per_class)]].tolist()
        seen.append(after)

    strategy.after_phase = spy  # type: ignore[method-assign]
    exp.run()
    assert [len(next(iter(s.values()))) for s in seen] == [5, 2, 1, 1]
    assert [len(s) for s in seen] == [2, 4, 6, 8]


def _by_class(memory) -> dict[int, list[int]]:
    return {
        int(c): memory.index[memory.target == c].tolist() for c in memory.target.unique().tolist()
    }


def test_nme_scores_hand_made_features(tmp_path):
    """Exemplar features (10, 0) and (0, 1) for class 0, (0.8, -0.6) for class 1. Class 0's mean
    is that of the *normalised* features, re-normalised: (0.707, 0.707); the raw mean would be
    (0.995, 0.0995). A sample with feature (1, -0.1) is nearer class 1 (squared distances
    0.733 and 0.288) but would be given class 0 by the raw mean. Classes with no mean score -4."""
    exp = experiment(tmp_path, run=False, **ICARL)
    strategy, data = exp.strategy, exp.data
    candidates = data.task_indices(0, "train")
    labels = data.make_batch(candidates, torch.zeros_like(candidates)).y
    pos = torch.cat([torch.nonzero(labels == 0)[:2, 0], torch.nonzero(labels == 1)[:1, 0]])
    index = candidates[pos]
    memory = data.make_batch(index, torch.zeros_like(index))
    planted = [[10.0, 0.0], [0.0, 1.0], [0.8, -0.6]]
    table = {_key(row): torch.tensor(f) for row, f in zip(memory.x, planted, strict=True)}
    query = torch.full((1, memory.x.shape[1]), 100.0)
    table[_key(query[0])] = torch.tensor([1.0, -0.1])
    exp.model.features = lambda x: torch.stack([table[_key(row)] for row in x])  # type: ignore[method-assign]
    strategy.memory().add_class(index, torch.zeros_like(index), memory.y)
    strategy.revision += 1  # the memory changed

    scores = strategy.predict(query, torch.zeros(1, dtype=torch.long))

    assert scores.shape == (1, exp.prepared.plan.num_outputs)
    assert torch.allclose(scores[0, :2], torch.tensor([-0.7335, -0.2885]), atol=1e-4)
    assert (scores[0, 2:] == NO_MEAN_SCORE).all()
    assert int(scores.argmax()) == 1


def _key(row: torch.Tensor) -> tuple[float, ...]:
    return tuple(row.tolist())


def test_a_class_without_exemplars_is_represented_by_evenly_spaced_phase_samples(tmp_path):
    """Mid-phase, before its exemplars exist, a class's mean is that of m = ⌊K / classes⌋ of its
    phase samples, evenly spaced in dataset order."""
    exp = experiment(tmp_path, run=False, **ICARL, **{"strategy.buffer_size": 8})
    strategy, data = exp.strategy, exp.data
    exp.model.features = lambda x: x  # type: ignore[method-assign]  # features: the inputs
    index = data.task_indices(0, "train")
    batch = data.make_batch(index, torch.zeros_like(index))
    means, has_mean = strategy._class_means()
    assert has_mean.tolist() == [True, True] + [False] * 6
    for cls in (0, 1):
        members = torch.nonzero(batch.y == cls).squeeze(1)  # 60 each: m = 8 // 2 = 4
        picked = batch.x[members[torch.tensor([0, 15, 30, 45])]]
        expected = F.normalize(F.normalize(picked, dim=1).mean(0), dim=0)
        assert torch.allclose(means[cls], expected, atol=1e-6)


def test_old_classes_are_distilled_from_the_previous_phase_network(tmp_path):
    """At the third update of phase 1 the loss is BCE(logits, targets) over every output, the
    targets one-hot except on phase 0's classes, where they are the sigmoid outputs of the network
    as phase 0 ended (Alg. 3), on the whole batch: new samples and replayed exemplars."""
    exp = experiment(tmp_path, run=False, **ICARL, **{"strategy.buffer_size": 40})
    strategy = exp.strategy
    ends: list[torch.nn.Module] = []
    checked: list[tuple[torch.Tensor, torch.Tensor]] = []
    after_phase, observe, make_batch = strategy.after_phase, strategy.observe, strategy.make_batch
    replays = []

    def end_of_phase(k: int) -> None:
        ends.append(copy.deepcopy(exp.model))
        after_phase(k)

    def spy(batch):
        if exp.loop.phase != 1 or exp.loop.phase_step != 3:
            return observe(batch)
        before = copy.deepcopy(exp.model)
        replays.clear()
        loss = observe(batch)
        (replay,) = replays  # one memory draw
        assert (replay.y < 2).all() and (batch.y >= 2).all()
        x, y = torch.cat([batch.x, replay.x]), torch.cat([batch.y, replay.y])
        with torch.no_grad():
            logits = before(x)
            onehot = F.one_hot(y, logits.shape[1]).float()
            old = torch.zeros(logits.shape[1], dtype=torch.bool)
            old[:2] = True  # phase 0's classes
            previous = torch.where(old, torch.sigmoid(ends[0].eval()(x)), onehot)
            current = torch.where(old, torch.sigmoid(before.eval()(x)), onehot)
        checked.append((loss, F.binary_cross_entropy_with_logits(logits, previous)))
        checked.append((loss, F.binary_cross_entropy_with_logits(logits, current)))
        return loss

    def record(index, task):
        replays.append(make_batch(index, task))
        return replays[-1]

    strategy.after_phase = end_of_phase  # type: ignore[method-assign]
    strategy.observe = spy  # type: ignore[method-assign]
    strategy.make_batch = record  # type: ignore[method-assign]
    exp.run()

    (loss, expected), (_, from_current) = checked
    assert len(replays[0]) == 5  # 40 exemplars over 8 batches per epoch (120 samples / 16)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert not torch.allclose(loss, from_current, atol=1e-4), "not the current network's outputs"


def test_icarl_keeps_old_classes_and_is_evaluated_by_nearest_mean(tmp_path):
    """Unlike naive fine-tuning, the first task survives; and the records are the accuracies of
    the nearest-mean-of-exemplars rule recomputed here from the final network and memory, not
    those of the network's head (which differ)."""
    icarl = experiment(tmp_path / "icarl", **ICARL, **{"strategy.buffer_size": 40})
    naive = experiment(tmp_path / "naive", **{"strategy.name": "naive"})
    final = _final_full(icarl)
    assert final[0] > 0.5 > _final_full(naive)[0] + 0.3

    model, data, memory = icarl.model, icarl.data, icarl.strategy.memory()
    model.eval()
    with torch.no_grad():
        stored = data.make_batch(memory.index, memory.task)
        features = F.normalize(model.features(stored.x), dim=1)
        means = torch.stack([features[stored.y == c].mean(0) for c in range(8)])
        means = F.normalize(means, dim=1)
        nme, head = [], []
        for t in range(4):
            index = data.task_indices(t, "test")
            test = data.make_batch(index, torch.full_like(index, t), split="test")
            f = F.normalize(model.features(test.x), dim=1)
            nearest = torch.cdist(f, means).argmin(1)
            nme.append(int((nearest == test.y).sum()) / len(test))
            head.append(int((model(test.x).argmax(1) == test.y).sum()) / len(test))
    assert final == pytest.approx(nme, abs=1e-9)
    assert any(abs(a - b) > 0.05 for a, b in zip(nme, head, strict=True))


def _final_full(exp: Experiment) -> list[float]:
    records = exp.log.frame()
    full = records[(records.kind == "full") & (records.step == records.step.max())]
    full = full.sort_values("task")
    return (full.correct / full.n).tolist()


def test_scenarios_icarl_cannot_run_are_refused(tmp_path):
    with pytest.raises(IncompatibleError, match="at least 8"):
        prepare(
            build_config(None, fast_overrides(tmp_path, **ICARL, **{"strategy.buffer_size": 7}))
        )
    recurring = {"scenario.name": "recurrence", "scenario.n_phases": 6, **ICARL}
    overrides = fast_overrides(tmp_path, **recurring)
    overrides = [o for o in overrides if not o.startswith("scenario.n_experiences")]
    with pytest.raises(IncompatibleError, match="one phase only"):
        prepare(build_config(None, overrides))


def test_icarl_stopped_and_resumed_inside_phases_is_bit_identical(tmp_path):
    """Exemplars, the previous network, the class means and every generator travel in the
    checkpoint: stopped twice inside the second phase (BatchNorm, crop/flip, flipped means), the
    run ends as an uninterrupted one."""
    settings = {**ICARL, "strategy.buffer_size": 20, "strategy.flip_means": "true"}
    reference = image_experiment(tmp_path / "reference", **settings)
    reference.run()
    ends = reference.timing.phase_end_steps
    folder = tmp_path / "stops"
    folder.mkdir()
    exp = run_with_stops(reference.prepared.config, {ends[0] + 2, ends[1] - 3}, folder)
    assert torch.equal(torch.stack(exp.train_losses), torch.stack(reference.train_losses))
    pd.testing.assert_frame_equal(exp.log.frame(), reference.log.frame())
    for a, b in zip(exp.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.equal(a, b)
    memory, ref_memory = exp.strategy.memory(), reference.strategy.memory()
    assert len(ref_memory) == 20 and torch.equal(memory.index, ref_memory.index)
    assert torch.equal(exp.strategy.means, reference.strategy.means)


def test_class_means_follow_the_network_after_each_update(tmp_path):
    """Computed once per update (an evaluation's batches share them) and again after the next
    update or memory change, so they never describe an older network."""
    exp = experiment(tmp_path, run=False, **ICARL)
    strategy = exp.strategy
    first = strategy._class_means()[0].clone()
    with torch.no_grad():
        for p in exp.model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(strategy._class_means()[0], first)  # same update: the cached means
    exp.loop.step += 1
    moved = strategy._class_means()[0].clone()
    assert (moved - first).abs().max() > 0.1
    strategy.revision += 1  # a memory change: recomputed (the same network: the same means)
    assert torch.equal(strategy._class_means()[0], moved) and strategy.means_key == (1, 1)
