"""Models: shapes, feature sizes, determinism, timm local weights and lazy timm import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from clbench.errors import ConfigError, IncompatibleError
from clbench.models.base import ContinualModel, ModelBuilder
from clbench.models.timm_model import TimmContinualModel, save_backbone_checkpoint
from clbench.registry import MODELS, validate_params
from tests.helpers import REPO

B = 4


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing here may touch the network; make an accidental hub access fail fast.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def builder(kind: str, /, **params: Any) -> ModelBuilder:
    cls = MODELS.get(kind)
    b = cls(validate_params(cls.Config, params, "model"))
    b.check()
    return b


def build(
    kind: str, shape: tuple[int, ...], num_outputs: int = 10, /, **params: Any
) -> ContinualModel:
    return builder(kind, **params).build(shape, num_outputs)


def backbone_state(model: ContinualModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ shapes
MODEL_CASES = [
    ("mlp", {}),
    ("slim_resnet18", {}),
    ("timm", {"arch": "resnet18"}),
    ("timm", {"arch": "vit_tiny_patch16_224", "image_size": 32}),
]
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def test_registered() -> None:
    assert {"mlp", "slim_resnet18", "timm"} <= set(MODELS.names())


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("name", "params"), MODEL_CASES, ids=lambda c: str(c))
def test_forward_shapes(name: str, params: dict[str, Any], shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build(name, shape, 7, **params)
    assert isinstance(model, ContinualModel)
    x = torch.randn(B, *shape)
    feats = model.features(x)
    assert feats.shape == (B, model.feature_dim)
    assert model.head.in_features == model.feature_dim
    assert model(x).shape == (B, 7)
    model.eval()
    with torch.inference_mode():
        assert model(x).shape == (B, 7)


def test_mlp_vector_inputs_and_options() -> None:
    model = build("mlp", (64,), 3)
    assert model.feature_dim == 400  # stability-gap MNIST MLP: 400-400 (official src/model.py)
    assert model(torch.randn(B, 64)).shape == (B, 3)
    model = build("mlp", (64,), 3, hidden_sizes=[32], batch_norm=True, dropout=0.5)
    kinds = [type(m).__name__ for m in model.backbone]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert model.features(torch.randn(B, 64)).shape == (B, 32)
    linear = build("mlp", (1, 8, 8), 10, hidden_sizes=[])
    assert linear.feature_dim == 64 and linear(torch.randn(B, 1, 8, 8)).shape == (B, 10)


def test_mlp_rejects_bad_params() -> None:
    with pytest.raises(ConfigError, match=r"model\.hidden_sizes"):
        builder("mlp", hidden_sizes=[0])
    with pytest.raises(ConfigError, match=r"model\.dropout"):
        builder("mlp", dropout=1.0)
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        builder("mlp", hidden=[10])


@pytest.mark.parametrize(
    ("shape", "params", "dim"),
    [
        ((3, 32, 32), {}, 160),  # CIFAR-10, nf = 20 (stability-gap official code)
        ((3, 84, 84), {}, 640),  # Mini-ImageNet
        ((3, 96, 96), {}, 1440),  # Mini-DomainNet
        ((1, 28, 28), {}, 160),
        ((1, 8, 8), {}, 160),  # map 1x1 < 4: adaptive pooling
        ((3, 32, 32), {"nf": 8}, 64),
        ((3, 84, 84), {"pooling": "global"}, 160),
    ],
)
def test_slim_resnet_feature_dim(shape: tuple[int, ...], params: dict[str, Any], dim: int) -> None:
    model = build("slim_resnet18", shape, **params)
    assert model.feature_dim == dim
    assert model.features(torch.randn(2, *shape)).shape == (2, dim)


def test_slim_resnet_structure() -> None:
    model = build("slim_resnet18", (3, 32, 32))
    n_params = sum(p.numel() for p in model.parameters())
    assert 1.0e6 < n_params < 1.2e6  # ≈1.1M params: GEM's slim ResNet-18 at nf = 20
    assert model.backbone.conv1.stride == (1, 1)
    assert [len(getattr(model.backbone, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]


@pytest.mark.parametrize(("name", "params"), MODEL_CASES[1:], ids=lambda c: str(c))
def test_image_models_reject_vectors(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(IncompatibleError, match="mlp"):
        build(name, (64,), **params)


@pytest.mark.parametrize(("name", "params"), MODEL_CASES, ids=lambda c: str(c))
def test_init_is_deterministic_under_seed(name: str, params: dict[str, Any]) -> None:
    states = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        states.append(
            {k: v.clone() for k, v in build(name, (3, 32, 32), **params).state_dict().items()}
        )
    assert same_state(states[0], states[1])
    assert not same_state(states[0], states[2])


# ------------------------------------------------------------------------------ timm
def test_timm_input_adaptation() -> None:
    model = build("timm", (1, 28, 28), arch="vit_tiny_patch16_224", image_size=32)
    assert isinstance(model, TimmContinualModel)
    assert model.prepare(torch.randn(B, 1, 28, 28)).shape == (B, 3, 32, 32)
    # Random init without image_size keeps the data's size (no pointless upsampling).
    model = build("timm", (1, 28, 28), arch="resnet18")
    assert model.image_size == (28, 28)
    assert model.prepare(torch.randn(B, 1, 28, 28)).shape == (B, 3, 28, 28)


def test_timm_freeze_backbone() -> None:
    model = build("timm", (3, 32, 32), arch="resnet18", freeze_backbone=True)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert model.training and model.head.training and not model.backbone.training
    before = model.backbone.bn1.running_mean.clone()
    model(torch.randn(B, 3, 32, 32)).sum().backward()
    assert torch.equal(before, model.backbone.bn1.running_mean)  # BN statistics frozen too


@pytest.mark.parametrize(
    ("name", "image_size", "suffix", "shape"),
    [
        ("resnet18", 32, ".safetensors", (1, 28, 28)),
        ("vit_tiny_patch16_224", 32, ".pth", (3, 32, 32)),
    ],
)
def test_timm_local_checkpoint_roundtrip(
    tmp_path: Path, name: str, image_size: int, suffix: str, shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    source = build("timm", shape, arch=name, image_size=image_size)
    saved = backbone_state(source)
    path = save_backbone_checkpoint(source, tmp_path / "ckpt" / f"backbone{suffix}")
    assert path.is_file() and not list(path.parent.glob(".*.tmp"))

    torch.manual_seed(1)
    loaded = build("timm", shape, 5, arch=name, image_size=image_size, pretrained=str(path))
    torch.manual_seed(1)
    fresh = build("timm", shape, 5, arch=name, image_size=image_size)
    assert same_state(backbone_state(loaded), saved)
    assert not same_state(backbone_state(fresh), saved)

    x = torch.randn(B, *shape)
    source.eval(), loaded.eval()
    with torch.inference_mode():
        assert torch.allclose(source.features(x), loaded.features(x))


def test_timm_pretrained_default_image_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_backbone_checkpoint(build("timm", (3, 32, 32)), tmp_path / "r18.pth")
    model = build("timm", (3, 32, 32), pretrained=str(path))
    assert model.image_size == (224, 224)  # resnet18's pretrained_cfg input size


def test_timm_missing_weights_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ConfigError) as info:
        builder("timm", arch="resnet18", pretrained=str(missing))
    assert info.value.field == "model.pretrained"
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)


def test_timm_rejects_wrong_suffix_and_directory(tmp_path: Path) -> None:
    bad = tmp_path / "weights.txt"
    bad.write_text("x")
    with pytest.raises(ConfigError, match=r"model\.pretrained"):
        builder("timm", pretrained=str(bad))
    with pytest.raises(ConfigError, match="is a directory"):
        builder("timm", pretrained=str(tmp_path))


def test_timm_rejects_incompatible_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = build("timm", (3, 32, 32), arch="resnet18")
    # Keys under a prefix timm does not strip: every parameter would stay random.
    prefixed = {f"encoder.{k}": v for k, v in source.backbone.state_dict().items()}
    torch.save(prefixed, tmp_path / "prefixed.pth")
    with pytest.raises(ConfigError, match="missing from the file") as info:
        build(
            "timm",
            (3, 32, 32),
            arch="resnet18",
            image_size=32,
            pretrained=str(tmp_path / "prefixed.pth"),
        )
    assert info.value.field == "model.pretrained"
    # Weights of another architecture: shape mismatch.
    vit = save_backbone_checkpoint(
        build("timm", (3, 32, 32), arch="vit_tiny_patch16_224", image_size=32), tmp_path / "vit.pth"
    )
    with pytest.raises(ConfigError, match=r"model\.pretrained"):
        build("timm", (3, 32, 32), arch="resnet18", image_size=32, pretrained=str(vit))


def test_timm_unknown_name() -> None:
    with pytest.raises(ConfigError) as info:
        builder("timm", arch="resnt18")
    assert info.value.field == "model.arch"
    assert "resnet18" in str(info.value)  # close-match suggestion
    with pytest.raises(ConfigError, match="a1_in1k") as info:
        builder("timm", arch="resnet18.no_such_tag")
    assert info.value.field == "model.arch"


def test_importing_timm_model_does_not_import_timm() -> None:
    code = (
        "import sys, clbench.models.timm_model\n"
        "from clbench.registry import MODELS\n"
        "MODELS.get('timm')\n"
        "assert 'timm' not in sys.modules, 'timm imported eagerly'\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
