"""A-GEM, ER-ACE and GDumb: each one's defining rule, checked against a hand computation, where
naive fine-tuning or plain ER would fail; and bit-identical runs after stops inside phases.

- A-GEM (Chaudhry et al., ICLR 2019, Eq. 11): a conflicting gradient is replaced by its
  projection, which no longer conflicts with the memory's; an agreeing one is kept.
- ER-ACE (Caccia et al., ICLR 2022): the new batch's cross-entropy gives no gradient to the logits
  of seen classes absent from the batch; the replayed batch's covers every class.
- GDumb (Prabhu et al., ECCV 2020): the memory is greedily class-balanced, and after a phase the
  model is the run's initial network trained on the memory alone with the official schedule.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from clbench.config import build_config
from clbench.data.stream import Batch
from clbench.engine.runner import Experiment, prepare
from clbench.strategies.gdumb import GreedyClassBalancedMemory, sgdr_lr
from tests.engine.helpers import run_with_stops
from tests.helpers import experiment, fast_overrides


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def gradient(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The flattened gradient of the mean cross-entropy of ``model`` on ``batch``."""
    params = [p for p in model.parameters() if p.requires_grad]
    return flat(torch.autograd.grad(F.cross_entropy(model(batch.x), batch.y), params))


def capture_outputs(model: torch.nn.Module) -> list[torch.Tensor]:
    """The model's outputs from now on, each keeping its gradient after backward."""
    outputs: list[torch.Tensor] = []

    def hook(module, args, output):
        output.retain_grad()
        outputs.append(output)

    model.register_forward_hook(hook)
    return outputs


def task_samples(exp: Experiment, task: int, n: int) -> Batch:
    index = exp.data.task_indices(task, "train")[:n]
    return exp.data.make_batch(index, torch.full_like(index, task))


# --------------------------------------------------------------------------------------- A-GEM


def agem_update(tmp_path, new_labels_from_memory: bool):
    """One A-GEM update on a batch whose inputs are the memory's (20 samples of task 0): with the
    memory's labels (g agrees with g_ref) or with other labels (they conflict). Returns the
    gradient the step applied, g and g_ref computed by hand beforehand, and the strategy."""
    # the reference draw takes the whole memory; plain SGD, so the step is -lr·(applied gradient)
    exp = experiment(tmp_path, run=False, **{"strategy.name": "agem", "strategy.sample_size": 64})
    strategy, model = exp.strategy, exp.model
    model.train()
    memory = task_samples(exp, 0, 20)
    strategy.buffer.extend(memory.index, memory.task, memory.y)
    # fit the memory first, so that other labels for its inputs point against its gradient
    fit = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(30):
        fit.zero_grad()
        F.cross_entropy(model(memory.x), memory.y).backward()
        fit.step()
    labels = memory.y if new_labels_from_memory else (memory.y + 4) % exp.prepared.plan.num_outputs
    new = Batch(memory.x, labels, memory.task, memory.index)
    g, g_ref = gradient(copy.deepcopy(model), new), gradient(copy.deepcopy(model), memory)
    before = flat(p.detach().clone() for p in model.parameters())
    strategy.observe(new)
    applied = (before - flat(p.detach() for p in model.parameters())) / exp.prepared.config.train.lr
    return applied, g, g_ref, strategy


def test_agem_projects_a_conflicting_gradient_as_eq11(tmp_path):
    """g̃ = g − (gᵀg_ref / g_refᵀg_ref)·g_ref, so g̃ᵀg_ref = 0: the step no longer raises the
    memory loss to first order. Naive fine-tuning would apply g itself."""
    applied, g, g_ref, strategy = agem_update(tmp_path, new_labels_from_memory=False)
    dot = torch.dot(g, g_ref)
    assert dot < 0, "the relabelled batch must conflict with the memory"
    expected = g - dot / torch.dot(g_ref, g_ref) * g_ref
    assert torch.allclose(applied, expected, atol=1e-4)
    assert (applied - g).abs().max() > 100 * 1e-4, "the projection must change the update"
    # non-negative dot product with the reference gradient (0 up to rounding)
    assert torch.dot(applied, g_ref) > -1e-3 * g_ref.norm() * applied.norm()
    assert strategy.report() == {"projected_updates": 1}


def test_agem_keeps_a_gradient_that_agrees_with_the_memory(tmp_path):
    applied, g, g_ref, strategy = agem_update(tmp_path, new_labels_from_memory=True)
    assert torch.dot(g, g_ref) > 0
    assert torch.allclose(applied, g, atol=1e-4)
    assert strategy.report() == {"projected_updates": 0}


def test_agem_memory_holds_a_random_sample_of_every_finished_phase(tmp_path):
    exp = experiment(tmp_path, **{"strategy.name": "agem", "strategy.patterns_per_phase": 10})
    memory = exp.strategy.memory()
    assert memory.task.tolist() == [t for t in range(4) for _ in range(10)]
    for t in range(4):
        of_task = memory.index[memory.task == t]
        assert len(set(of_task.tolist())) == 10
        assert set(of_task.tolist()) <= set(exp.data.task_indices(t, "train").tolist())
        # drawn at random, not the phase's first samples
        assert of_task.tolist() != exp.data.task_indices(t, "train")[:10].tolist()
    assert exp.strategy.report()["projected_updates"] > 0


# -------------------------------------------------------------------------------------- ER-ACE


def test_er_ace_new_batch_term_leaves_absent_seen_classes_untouched(tmp_path):
    """Outputs 0-3 seen, a new batch of one class c: its cross-entropy runs over c and the unseen
    outputs only (by hand), so the other seen outputs get exactly no gradient; plain CE (ER,
    naive) would push them down."""
    exp = experiment(tmp_path, run=False, **{"strategy.name": "er_ace"})
    strategy, model = exp.strategy, exp.model
    model.train()
    strategy.seen[:4] = True
    samples = task_samples(exp, 1, 60)
    c = int(samples.y[0])
    keep = samples.y == c
    new = Batch(samples.x[keep], samples.y[keep], samples.task[keep], samples.index[keep])
    outputs = capture_outputs(model)
    loss = strategy.observe(new)  # the memory is empty: only the new batch's term

    logits = outputs[0]
    seen_absent = [o for o in range(4) if o != c]
    unseen = list(range(4, exp.prepared.plan.num_outputs))
    assert c in range(4) and len(outputs) == 1
    assert torch.equal(logits.grad[:, seen_absent], torch.zeros_like(logits.grad[:, seen_absent]))
    assert (logits.grad[:, [c, *unseen]].abs() > 0).all()
    kept = [c, *unseen]
    by_hand = F.cross_entropy(logits.detach()[:, kept], torch.zeros_like(new.y))  # c is column 0
    assert torch.allclose(loss, by_hand, atol=1e-6)
    plain = F.cross_entropy(logits.detach(), new.y)
    assert not torch.allclose(loss, plain, atol=1e-3)


def test_er_ace_replay_term_covers_every_class(tmp_path):
    """With a memory, the loss adds the replayed batch's full cross-entropy (by hand), whose
    gradient does reach the seen classes the new batch lacks."""
    settings = {"strategy.name": "er_ace", "strategy.replay_batch_size": 64}
    exp = experiment(tmp_path, run=False, **settings)
    strategy, model = exp.strategy, exp.model
    model.train()
    memory = task_samples(exp, 0, 20)
    strategy.buffer.add(memory.index, memory.task, memory.y, torch.Generator())
    new = task_samples(exp, 1, 16)
    strategy.seen[memory.y] = True
    before = copy.deepcopy(model)
    with torch.no_grad():
        present = torch.unique(new.y)
        kept = torch.tensor([o for o in range(8) if o in present or not strategy.seen[o]])
        target = (new.y.unsqueeze(1) == kept).float().argmax(1)
        masked = F.cross_entropy(before(new.x)[:, kept], target)
        replayed = F.cross_entropy(before(memory.x), memory.y)  # mean: the draw's order is moot
    outputs = capture_outputs(model)
    loss = strategy.observe(new)

    assert torch.allclose(loss, masked + replayed, atol=1e-5)
    new_logits, replay_logits = outputs
    old = torch.unique(memory.y)
    assert torch.equal(new_logits.grad[:, old], torch.zeros_like(new_logits.grad[:, old]))
    assert (replay_logits.grad[:, old].abs().sum(0) > 0).all()


def test_er_ace_without_task_free_trains_the_first_phase_as_plain_ce(tmp_path):
    """Mammoth's default (task_free false): no mask and no replay before the second phase."""
    settings = {"strategy.name": "er_ace", "strategy.task_free": "false"}
    exp = experiment(tmp_path, run=False, **settings)
    exp.model.train()
    exp.strategy.seen[:4] = True
    new = task_samples(exp, 0, 16)
    with torch.no_grad():
        plain = F.cross_entropy(copy.deepcopy(exp.model)(new.x), new.y)
    assert torch.allclose(exp.strategy.observe(new), plain, atol=1e-6)


# -------------------------------------------------------------------------------------- GDumb


def offer_labels(memory: GreedyClassBalancedMemory, labels: list[int], start: int = 0) -> None:
    index = torch.arange(start, start + len(labels))
    memory.offer(index, torch.zeros_like(index), torch.tensor(labels), torch.Generator())


def test_gdumb_memory_is_greedy_and_class_balanced():
    """By hand, capacity 7: 10 samples of class 0 fill it (7); class 1 takes slots from class 0
    up to 7 // 2 = 3 (4, 3); class 2 evicts from the largest class, the lowest id on a tie, up
    to 7 // 3 = 2 (2, 3, 2). A sample already held is not stored twice."""
    memory = GreedyClassBalancedMemory(7)
    offer_labels(memory, [0] * 10)
    assert memory.class_counts() == {"0": 7}
    offer_labels(memory, [1] * 10, start=100)
    assert memory.class_counts() == {"0": 4, "1": 3}
    offer_labels(memory, [2] * 10, start=200)
    assert memory.class_counts() == {"0": 2, "1": 3, "2": 2}
    held = memory.index.clone()
    offer_labels(memory, [2, 2], start=int(held[memory.target == 2][0]))  # one held, one new
    assert torch.equal(memory.index, held)
    assert set(memory.index[memory.target == 1].tolist()) <= set(range(100, 110))


def test_gdumb_lr_schedule_is_the_official_warm_restarts():
    """sgdr_lr against torch's CosineAnnealingWarmRestarts driven as the official main.py does
    (epoch 0 at max/10, epoch 1 at max, then one scheduler step per epoch), and by hand."""
    hi, lo = 0.05, 0.0005
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=hi)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 1, 2, eta_min=lo)
    for epoch in range(40):
        if epoch == 0:
            opt.param_groups[0]["lr"] = hi * 0.1
        elif epoch == 1:
            opt.param_groups[0]["lr"] = hi
        else:
            scheduler.step()
        assert sgdr_lr(epoch, hi, lo) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
    mid = lo + (hi - lo) / 2
    assert [sgdr_lr(e, hi, lo) for e in range(5)] == pytest.approx([0.005, hi, hi, mid, hi])


def test_gdumb_model_after_a_phase_is_the_initial_one_trained_on_the_memory_only(tmp_path):
    """At the second phase end the model equals a fresh network of the same seed trained by hand
    on the memory alone (SGD with the run's momentum, the official schedule through torch's
    scheduler, the memory's permutation per epoch), not a continuation of the first phase's
    model; the memory ends class-balanced (40 slots, 8 classes: 5 each)."""
    settings = {
        "strategy.name": "gdumb",
        "strategy.buffer_size": 40,
        "strategy.epochs": 5,
        "scenario.n_experiences": 2,
    }
    config = build_config(None, fast_overrides(tmp_path, **settings))
    exp = Experiment(prepare(config))
    strategy = exp.strategy
    seen = {}
    retrain = strategy.retrain

    def spy() -> None:
        if exp.loop.phase == 1:
            seen["state"] = strategy.ctx.generator.get_state()
            seen["memory"] = (strategy.buffer.index.clone(), strategy.buffer.task.clone())
            seen["previous"] = [p.detach().clone() for p in exp.model.parameters()]
        retrain()

    strategy.retrain = spy  # type: ignore[method-assign]
    exp.run()
    assert strategy.buffer.class_counts() == {str(c): 5 for c in range(8)}

    fresh = Experiment(prepare(config))  # same seed: the initial network
    model, cfg = fresh.model, strategy.config
    generator = torch.Generator()
    generator.set_state(seen["state"])
    train = config.train  # the run's momentum and weight decay, as GDumb's optimizer
    opt = torch.optim.SGD(
        model.parameters(), cfg.max_lr, momentum=train.momentum, weight_decay=train.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 1, 2, eta_min=cfg.min_lr)
    index, task = seen["memory"]
    model.train()
    for epoch in range(cfg.epochs):
        if epoch == 0:
            opt.param_groups[0]["lr"] = cfg.max_lr * 0.1
        elif epoch == 1:
            opt.param_groups[0]["lr"] = cfg.max_lr
        else:
            scheduler.step()
        order = torch.randperm(len(index), generator=generator)
        for rows in order.split(train.batch_size):  # 16, 16, 8
            batch = fresh.data.make_batch(index[rows], task[rows])
            opt.zero_grad()
            F.cross_entropy(model(batch.x), batch.y).backward()
            opt.step()

    pairs = zip(exp.model.parameters(), model.parameters(), strict=True)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in pairs)
    initial = list(Experiment(prepare(config)).model.parameters())
    assert not all(torch.allclose(a, b) for a, b in zip(seen["previous"], initial, strict=True))


# ------------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("name", ["agem", "er_ace", "gdumb"])
def test_stopped_and_resumed_inside_phases_is_bit_identical(tmp_path, name):
    """Memory, A-GEM's projection count, ER-ACE's seen classes, GDumb's retrained model and the
    generators travel in the checkpoint: stopped twice inside later phases, the run ends as an
    uninterrupted one."""
    settings = {"strategy.name": name} | ({"strategy.epochs": 3} if name == "gdumb" else {})
    reference = experiment(tmp_path / "reference", **settings)
    ends = reference.timing.phase_end_steps
    folder = tmp_path / "stops"
    folder.mkdir()
    exp = run_with_stops(reference.prepared.config, {ends[0] + 2, ends[1] - 3}, folder)
    pd.testing.assert_frame_equal(exp.log.frame(), reference.log.frame())
    pairs = zip(exp.model.parameters(), reference.model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    memory, ref_memory = exp.strategy.memory(), reference.strategy.memory()
    assert torch.equal(memory.index, ref_memory.index) and len(ref_memory) > 0
    assert exp.strategy.report() == reference.strategy.report()
