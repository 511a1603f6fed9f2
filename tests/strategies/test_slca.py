"""SLCA, seq_ft, linear_probe, class statistics and offline backbone pretraining."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.pretrain import pretrain
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError
from clbench.metrics import compute_metrics
from clbench.strategies.slca.class_stats import ClassGaussians


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny_overrides(tmp_path: Path, **extra: object) -> list[str]:
    """Split-digits (8x8), 3 tasks x 2 classes, tiny timm resnet18 at 16 px: a few seconds."""
    base: dict[str, object] = {
        "data.name": "digits",
        "scenario.name": "class_incremental",
        "scenario.class_order": "[0,1,2,3,4,5]",
        "scenario.n_experiences": 3,
        "model.name": "timm",
        "model.arch": "resnet18",
        "model.image_size": 16,
        "strategy.name": "slca",
        "strategy.ca_samples_per_class": 32,
        "strategy.ca_epochs": 2,
        "train.epochs": 1,
        "train.batch_size": 64,
        "train.lr": 0.01,
        "train.momentum": 0.9,
        "train.weight_decay": 0.0005,
        "eval.every": 1000,
        "eval.subset_size": 50,
        "output.root": str(tmp_path / "runs"),
        "output.plot": "false",
        "threads": 1,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def checkpoint(resnet18_backbone: Path) -> Path:
    return resnet18_backbone


def experiment(tmp_path: Path, checkpoint: Path, **extra: object) -> Experiment:
    cfg = build_config(None, tiny_overrides(tmp_path, **{"model.pretrained": checkpoint, **extra}))
    return Experiment(prepare(cfg))


# ------------------------------------------------------------------ class statistics
def test_pseudo_features_match_stored_gaussian() -> None:
    g = torch.Generator().manual_seed(0)
    d = 6
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    mean = torch.randn(d, generator=g, dtype=torch.float64) * 3
    feats = (
        mean + torch.randn(4000, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    )
    stats = ClassGaussians(d, ridge=1e-4)
    for chunk, lab in zip(
        feats.split(300), torch.zeros(4000, dtype=torch.long).split(300), strict=True
    ):
        stats.accumulate(chunk.float(), lab + 7)  # streaming, in chunks
    assert stats.finalize() == [7]
    # exact streaming statistics: torch.cov of all features (+ ridge), as in the official code
    ref_cov = torch.cov(feats.float().double().T) + 1e-4 * torch.eye(d, dtype=torch.float64)
    assert torch.allclose(stats.mean[7], feats.float().double().mean(0), atol=1e-6)
    assert torch.allclose(stats.cov[7], ref_cov, atol=1e-6)
    assert stats.cov[7].shape == (d, d) and stats.nbytes() == (d + d * d) * 8  # per class

    x, y = stats.sample([7], 20000, torch.Generator().manual_seed(1))
    assert x.dtype == torch.float32 and x.shape == (20000, d) and bool((y == 7).all())
    assert torch.allclose(x.double().mean(0), stats.mean[7], atol=0.05)
    assert torch.allclose(torch.cov(x.double().T), stats.cov[7], atol=0.05 * cov.abs().max())

    x, _ = stats.sample([7], 20000, torch.Generator().manual_seed(1), mean_scale={7: 0.9})
    assert torch.allclose(x.double().mean(0), 0.9 * stats.mean[7], atol=0.05)


def test_single_sample_class_and_errors() -> None:
    stats = ClassGaussians(3, ridge=1e-2)
    stats.accumulate(torch.ones(1, 3), torch.tensor([2]))
    stats.finalize()
    assert torch.allclose(stats.cov[2], 1e-2 * torch.eye(3, dtype=torch.float64))
    with pytest.raises(KeyError):
        stats.sample([5], 2)
    with pytest.raises(ValueError):
        stats.accumulate(torch.ones(2, 4), torch.tensor([0, 1]))


# ------------------------------------------------------------ checkpoint and checks
def test_checkpoint_loads_through_local_file_path(tmp_path: Path, checkpoint: Path) -> None:
    exp = experiment(tmp_path, checkpoint)
    saved = torch.load(checkpoint)
    state = exp.model.backbone.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in saved)


def test_missing_weights_and_unknown_name_fail_before_training(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    cfg = build_config(None, tiny_overrides(tmp_path, **{"model.pretrained": missing}))
    with pytest.raises(ConfigError, match=r"model\.pretrained.*does not exist"):
        prepare(cfg)
    cfg = build_config(
        None, tiny_overrides(tmp_path, **{"model.pretrained": missing, "model.arch": "resnt18"})
    )
    with pytest.raises(ConfigError, match=r"model\.arch.*did you mean"):
        prepare(cfg)
    # slca needs pretrained weights; the baselines do not
    with pytest.raises(ConfigError, match="slca needs pretrained weights"):
        prepare(build_config(None, tiny_overrides(tmp_path)))
    assert not (tmp_path / "runs").exists()  # nothing written
    # the CLI prints the message and exits 2
    assert main(["run", *tiny_overrides(tmp_path, **{"model.pretrained": missing})]) == 2


# ------------------------------------------------------------------ slow learner
def test_backbone_and_head_get_configured_learning_rates(tmp_path: Path, checkpoint: Path) -> None:
    exp = experiment(tmp_path, checkpoint, **{"strategy.backbone_lr_scale": 0.01})
    groups = {g["name"]: g for g in exp.strategy.optimizer.param_groups}
    assert groups["backbone"]["lr"] == pytest.approx(1e-4)
    assert groups["head"]["lr"] == pytest.approx(1e-2)
    assert groups["head"]["momentum"] == 0.9 and groups["head"]["weight_decay"] == 0.0005
    ids = {id(p) for p in groups["backbone"]["params"]}
    assert ids == {id(p) for p in exp.model.backbone.parameters()}
    assert {id(p) for p in groups["head"]["params"]} == {id(p) for p in exp.model.head.parameters()}

    seq = experiment(tmp_path, checkpoint, **{"strategy.name": "seq_ft"})
    lrs = {g["name"]: g["lr"] for g in seq.strategy.optimizer.param_groups}
    assert lrs == {"backbone": pytest.approx(1e-2), "head": pytest.approx(1e-2)}
    probe = experiment(tmp_path, checkpoint, **{"strategy.name": "linear_probe"})
    assert [g["name"] for g in probe.strategy.optimizer.param_groups] == ["head"]
    assert not any(p.requires_grad for p in probe.model.backbone.parameters())


def test_training_touches_only_current_task_rows(tmp_path: Path, checkpoint: Path) -> None:
    exp = experiment(tmp_path, checkpoint)
    s = exp.strategy
    s.before_phase(1)
    head_before = exp.model.head.weight.detach().clone()
    idx = torch.as_tensor(exp.prepared.plan.phases[1].parts[0].indices[:32])
    batch = exp.data.make_batch(idx, torch.full_like(idx, 1))
    s.observe(batch)
    changed = (exp.model.head.weight != head_before).any(dim=1)
    assert changed.tolist() == [False, False, True, True, False, False]


# ------------------------------------------------------------- classifier alignment
def test_alignment_changes_only_the_heads_and_is_restored(tmp_path: Path, checkpoint: Path) -> None:
    exp = experiment(tmp_path, checkpoint)
    s, model = exp.strategy, exp.model
    for k in range(2):  # train two tasks by hand, stopping before the second alignment
        s.before_phase(k)
        for index, task in s.phase_batches(
            s.training_parts(k), 64, exp.data_generator, False
        ).epoch():
            s.observe(exp.data.make_batch(index, task))
        if k == 0:
            s.after_phase(0)
            assert s.ca_losses == []  # no alignment after the first task
    assert s.stats.classes == [0, 1]
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    s.after_phase(1)
    assert s.stats.classes == [0, 1, 2, 3] and len(s.ca_losses) > 0
    assert all(torch.equal(backbone[k], v) for k, v in model.backbone.state_dict().items())
    w = model.head.weight.detach()
    assert not torch.equal(w[:4], head["weight"][:4])  # all seen rows aligned
    assert torch.equal(w[4:], head["weight"][4:])  # unseen rows untouched
    s.before_phase(2)  # official fc.recall(): pre-alignment heads for the next task
    assert torch.equal(model.head.weight, head["weight"])
    assert torch.equal(model.head.bias, head["bias"])


def test_alignment_reduces_pseudo_feature_loss(tmp_path: Path, checkpoint: Path) -> None:
    exp = experiment(
        tmp_path, checkpoint, **{"strategy.ca_epochs": 4, "strategy.ca_samples_per_class": 64}
    )
    exp.run()
    losses = exp.strategy.ca_losses
    # after task 2: 4 classes x 64 = 1 minibatch of 256; after task 3: 6 x 64 = 2 minibatches
    assert len(losses) == 4 * 1 + 4 * 2
    assert losses[3] < losses[0] and sum(losses[-2:]) < sum(losses[4:6])
    rep = exp.strategy.report()
    assert rep["classes_with_statistics"] == 6
    assert rep["statistics_bytes"] == 6 * (512 + 512 * 512) * 8  # bounded: per class, d x d


@pytest.mark.parametrize("mode", ["per_task_mean", "global"])
def test_logit_norm_modes(mode: str, tmp_path: Path, checkpoint: Path) -> None:
    exp = experiment(tmp_path, checkpoint, **{"strategy.logit_norm_mode": mode})
    s = exp.strategy
    s.learned_tasks = [0, 1]
    z = torch.tensor([[3.0, 4.0, 0.0, 1.0]])
    out = s._normalise(z, s._task_groups([0, 1, 2, 3]))
    # global: ||z|| = sqrt(26); official: mean of the per-task norms ||(3,4)|| = 5, ||(0,1)|| = 1
    norm = 26**0.5 if mode == "global" else (5.0 + 1.0) / 2
    assert torch.allclose(out, z / norm / 0.1, atol=1e-5)


# --------------------------------------------------------------------- end to end
def test_runs_end_to_end_and_pretrain_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bb.pth"
    pre = tiny_overrides(
        tmp_path,
        **{
            "strategy.name": "naive",
            "scenario.class_order": "[6,7,8,9]",
            "scenario.n_experiences": 1,
        },
    )
    pre = [o for o in pre if not o.startswith("strategy.ca")]
    assert main(["pretrain", *pre, "--out", str(out)]) == 0
    assert out.is_file()
    # not a terminal: progress as logging lines, the last at the final update
    assert re.search(r"pretrain bb\.pth: update (\d+) of \1", capsys.readouterr().err)
    for name in ("slca", "seq_ft", "linear_probe"):
        exp = experiment(tmp_path, out, **{"strategy.name": name})
        exp.run()
        m = compute_metrics(exp.log.frame(), exp.prepared.config.metrics)
        assert 0 <= m["final_acc"] <= 1 and m["min_acc"] is not None
    with pytest.raises(ConfigError, match=r"model\.name"):
        pretrain(build_config(None, ["model.name=mlp"]), tmp_path / "x.pth")
