"""DER / DER++ (Buzzega et al., NeurIPS 2020): the loss is Eq. 6/7 against the logits stored at
insertion time, the reductions β = 0 -> DER and α = 0 -> naive are exact, and a run stopped and
resumed inside a phase is bit-identical (the stored logits travel in the checkpoint)."""

from __future__ import annotations

import copy

import pandas as pd
import torch
import torch.nn.functional as F

from clbench.config import build_config
from clbench.engine.runner import Experiment, prepare
from tests.engine.helpers import run_with_stops
from tests.helpers import IMAGE_RUN, experiment, fast_overrides

# digits as 8x8 images, two 2-class tasks, a small ResNet (BatchNorm) and crop/flip: the paper
# configs' ingredients, small enough for seconds-long runs
IMAGES = {**IMAGE_RUN, "train.augment": "crop_flip"}
SYNTHETIC_ONLY = ("data.num_classes", "data.dim", "data.train_per_class", "data.test_per_class")
SYNTHETIC_ONLY += ("data.noise", "model.hidden")


def image_experiment(tmp_path, **extra) -> Experiment:
    overrides = fast_overrides(tmp_path, **IMAGES, **extra)
    config = build_config(None, [o for o in overrides if not o.startswith(SYNTHETIC_ONLY)])
    return Experiment(prepare(config))


def fingerprint(exp: Experiment) -> tuple[pd.DataFrame, list[torch.Tensor]]:
    return exp.log.frame(), [p.detach().clone() for p in exp.model.parameters()]


def assert_same_run(a: Experiment, b: Experiment) -> None:
    (ra, pa), (rb, pb) = fingerprint(a), fingerprint(b)
    pd.testing.assert_frame_equal(ra, rb)
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))


def test_loss_is_eq7_against_the_stored_logits(tmp_path):
    """CE(new) + α·MSE(model(memory), stored logits) + β·CE(model(memory'), labels), by hand on
    planted logits: a term recomputed from the current model (or restricted to the seen
    outputs) would not give this number."""
    alpha, beta = 0.7, 0.3
    settings = {"strategy.alpha": alpha, "strategy.beta": beta, "strategy.buffer_size": 20}
    # each draw takes the whole memory (in some order: the means do not depend on it)
    exp = experiment(
        tmp_path,
        run=False,
        **{"strategy.name": "derpp", "strategy.replay_batch_size": 64} | settings,
    )
    strategy, model, data = exp.strategy, exp.model, exp.data
    model.train()
    index = data.task_indices(0, "train")[:20]
    task = torch.zeros_like(index)
    memory = data.make_batch(index, task)
    planted = 3 * torch.randn(20, exp.prepared.plan.num_outputs, generator=torch.Generator())
    strategy.buffer.add(index, task, memory.y, torch.Generator(), planted)
    new = data.make_batch(data.task_indices(1, "train")[:16], torch.ones(16, dtype=torch.long))
    draws = []
    sample = strategy.sample_memory
    strategy.sample_memory = lambda m, n: draws.append(n) or sample(m, n)  # type: ignore[method-assign]

    with torch.no_grad():
        ce = F.cross_entropy(model(new.x), new.y)
        out = model(memory.x)
        mse = F.mse_loss(out, planted)  # over all 8 outputs, as Mammoth's F.mse_loss
        replay_ce = F.cross_entropy(out, memory.y)
        recomputed = F.mse_loss(out, model(memory.x))  # what a no-op "distillation" would give
    loss = strategy.observe(new)

    assert draws == [64, 64], "two independent memory draws (Eq. 7)"
    assert torch.allclose(loss, ce + alpha * mse + beta * replay_ce, atol=1e-5)
    assert recomputed == 0 and mse > 1
    assert not torch.allclose(loss, ce + beta * replay_ce, atol=1e-2)


def test_stored_logits_are_those_of_the_trained_batch_at_insertion(tmp_path):
    """The memory keeps the logits of the augmented batch the update trained on, from the
    weights before its step (Mammoth's ``outputs.data``), and never recomputes them."""
    exp = image_experiment(tmp_path, **{"strategy.name": "der", "strategy.buffer_size": 5000})
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    observe = exp.strategy.observe

    def spy(batch):
        before = copy.deepcopy(exp.model)  # a copy: BatchNorm's running stats stay untouched
        with torch.no_grad():
            trained = before(batch.x)
            plain = before(exp.data.make_batch(batch.index, batch.task).x)
        seen.append((batch.index.clone(), trained, plain))
        return observe(batch)

    exp.strategy.observe = spy  # type: ignore[method-assign]
    exp.run()
    buffer = exp.strategy.memory()
    total = sum(len(index) for index, _, _ in seen)
    assert len(buffer) == total <= buffer.capacity  # never full: every batch kept in order
    stored = torch.cat([t for _, t, _ in seen])
    assert torch.equal(buffer.index, torch.cat([i for i, _, _ in seen]).cpu())
    assert torch.allclose(buffer.extra, stored, atol=1e-5)
    # the augmented inputs, not the plain ones, and not the final model's logits
    plain = torch.cat([p for _, _, p in seen])
    assert (buffer.extra - plain).abs().max() > 1e-2
    exp.model.train()
    with torch.no_grad():
        now = copy.deepcopy(exp.model)(exp.data.make_batch(buffer.index, buffer.task).x)
    assert (buffer.extra - now).abs().mean() > 0.1


def test_derpp_with_beta_0_is_der_and_der_with_alpha_0_is_naive(tmp_path):
    def run(name: str, **params) -> Experiment:
        settings = {f"strategy.{k}": v for k, v in params.items()}
        return experiment(tmp_path / name, **{"strategy.name": name} | settings)

    der = run("der", alpha=0.5)
    assert_same_run(run("derpp", alpha=0.5, beta=0), der)
    assert_same_run(
        experiment(tmp_path / "naive", **{"strategy.name": "naive"}), run("der", alpha=0)
    )
    # and each term changes the run
    _, der_params = fingerprint(der)
    _, derpp_params = fingerprint(run("derpp", alpha=0.5, beta=0.5))
    _, naive_params = fingerprint(run("der", alpha=0))
    assert not all(torch.equal(a, b) for a, b in zip(der_params, derpp_params, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(der_params, naive_params, strict=True))


def test_derpp_stopped_and_resumed_inside_phases_is_bit_identical(tmp_path):
    """Stored logits, reservoir counter, the strategy's and the augmentation's generators all
    travel in the checkpoint: stopped twice inside the second phase, the run ends as an
    uninterrupted one (BatchNorm, crop/flip of new and replayed samples)."""
    settings = {"strategy.name": "derpp", "strategy.buffer_size": 20}
    reference = image_experiment(tmp_path / "reference", **settings)
    reference.run()
    ends = reference.timing.phase_end_steps
    config = reference.prepared.config
    folder = tmp_path / "stops"
    folder.mkdir()
    exp = run_with_stops(config, {ends[0] + 2, ends[1] - 3}, folder)
    assert torch.equal(torch.stack(exp.train_losses), torch.stack(reference.train_losses))
    assert_same_run(exp, reference)
    buffer, ref_buffer = exp.strategy.memory(), reference.strategy.memory()
    assert ref_buffer.seen > ref_buffer.capacity  # the reservoir replaced slots
    assert torch.equal(buffer.extra, ref_buffer.extra) and torch.equal(
        buffer.index, ref_buffer.index
    )
