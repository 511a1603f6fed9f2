"""Any timm model as a backbone, with local pretrained weights for offline use.

timm is imported inside functions only: importing this module (which every registry lookup
does) must not pay timm's import cost, so ``clbench --help`` stays fast.

Weights: ``pretrained`` is ``None`` (random init), ``"hub"`` (timm downloads them; needs network)
or the path of a local file (.pth/.pt/.bin/.safetensors, or an original .npz for ViTs with a
custom loader). A local file goes through timm's own loading path
(``timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path),
num_classes=0)``), so timm's checkpoint filters (e.g. ViT position-embedding resampling at another
image size) and input-channel adaptation apply. `save_backbone_checkpoint` writes a file this
route reloads exactly.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clbench.errors import ConfigError, IncompatibleError
from clbench.models.base import ContinualModel, ModelBuilder
from clbench.models.spec import image_shape
from clbench.models.specs.timm_model import HUB, WEIGHT_SUFFIXES, TimmModelSpec
from clbench.registry import MODELS


class TimmContinualModel(ContinualModel):
    """A timm backbone (``num_classes=0``) plus our linear head.

    Inputs are adapted batched on the device inside `features`: grey images are repeated to the
    backbone's channel count and images are resized to ``image_size`` with ``F.interpolate``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_outputs: int,
        image_size: tuple[int, int],
        repeat_channels: int | None = None,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__(backbone, feature_dim, num_outputs)
        self.image_size = image_size
        self.repeat_channels = repeat_channels
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> TimmContinualModel:
        """Set training mode; a frozen backbone stays in eval mode.

        Why: freezing must also freeze BatchNorm running statistics and disable dropout, so
        the features stay those of the pretrained network (e.g. for SLCA-style statistics).
        """
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat grey channels and resize to ``image_size`` (no-ops when already matching)."""
        if self.repeat_channels is not None and x.shape[1] == 1:
            x = x.expand(-1, self.repeat_channels, -1, -1)
        if tuple(x.shape[-2:]) != self.image_size:
            # Antialias only when shrinking: upsampling does not alias, and it is cheaper off.
            shrink = x.shape[-2] > self.image_size[0] or x.shape[-1] > self.image_size[1]
            x = F.interpolate(
                x, size=self.image_size, mode="bilinear", align_corners=False, antialias=shrink
            )
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (timm ``forward`` with ``num_classes=0``)."""
        return self.backbone(self.prepare(x))


@MODELS.register("timm")
class TimmModel(TimmModelSpec, ModelBuilder):
    """Any timm architecture by name, random init or pretrained from a local file."""

    config: TimmModelSpec.Config

    # ----------------------------------------------------------------------------- validation
    def weights_path(self) -> Path | None:
        """The local weights file, or None for random init / hub weights."""
        return self.weights_file(self.config)

    def check(self) -> None:
        """Validate the model name (and tag) and the weights source without building anything."""
        import timm

        name = self.config.arch
        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                self.field("arch"),
                name,
                f"a timm architecture name (see `timm.list_models()`){hint}",
            )
        try:
            timm.models.get_pretrained_cfg(name)
        except RuntimeError:  # registered architecture, unknown pretrained tag
            arch = name.split(".", 1)[0]
            tags = timm.list_pretrained(f"{arch}.*")
            raise ConfigError(
                self.field("arch"), name, "a known tag: " + (", ".join(tags) or f"{arch} (no tags)")
            ) from None

        value = self.config.pretrained
        if value == HUB:
            if not timm.is_model_pretrained(name):
                raise ConfigError(
                    self.field("pretrained"),
                    value,
                    f"null or a local file: timm has no pretrained weights for {name!r}",
                )
            return
        self.check_files(self.config, self.field_prefix)

    # ------------------------------------------------------------------------------- building
    def check_input(self, input_shape: tuple[int, ...]) -> None:
        image_shape(input_shape, f"timm:{self.config.arch}")

    def build(self, input_shape: tuple[int, ...], num_outputs: int) -> TimmContinualModel:
        """Create the timm backbone (loading weights if asked) and add a linear head."""
        import timm

        self.check()
        cfg = self.config
        c, h, w = image_shape(input_shape, f"timm:{cfg.arch}")
        pcfg = timm.models.get_pretrained_cfg(cfg.arch)
        cfg_size = tuple(pcfg.input_size[-2:]) if pcfg and pcfg.input_size else None
        expected_chans = pcfg.input_size[0] if pcfg and pcfg.input_size else 3

        if cfg.image_size is not None:
            size = (cfg.image_size, cfg.image_size)
        elif cfg.pretrained is not None and cfg_size is not None:
            size = cfg_size  # pretrained weights were trained at this size
        else:
            size = (h, w)  # random init: upsampling would only add compute

        kwargs: dict[str, Any] = {"num_classes": 0}
        repeat = None
        if c == 1 and expected_chans != 1:
            repeat = expected_chans  # grey -> RGB keeps pretrained stem weights meaningful
        elif c != expected_chans:
            kwargs["in_chans"] = c  # timm adapts pretrained stem weights to c channels
        if pcfg is not None and pcfg.fixed_input_size and size != cfg_size:
            kwargs["img_size"] = size  # e.g. ViT: position embeddings sized for this input

        path = self.weights_path()
        if path is not None:
            kwargs["pretrained"] = True
            kwargs["pretrained_cfg_overlay"] = {
                "file": str(path),
                # .npz = original (e.g. Google ViT) weights, read by the model's own loader.
                "custom_load": path.suffix.lower() == ".npz",
                "source": None,  # a cfg sourced from 'hf-hub' would otherwise ignore the file
            }
        elif cfg.pretrained == HUB:
            kwargs["pretrained"] = True

        with _capture_missing_keys() as missing:
            try:
                backbone = timm.create_model(cfg.arch, **kwargs)
            except Exception as exc:
                if cfg.pretrained is not None:
                    hint = (
                        "; offline? download the weights once, then set pretrained to the "
                        "local file's path"
                        if cfg.pretrained == HUB
                        else ""
                    )
                    raise ConfigError(
                        self.field("pretrained"),
                        cfg.pretrained,
                        f"weights loadable into timm model {cfg.arch!r} "
                        f"(loading failed: {type(exc).__name__}: {exc}){hint}",
                    ) from exc
                raise IncompatibleError(
                    f"timm could not build {cfg.arch!r} for inputs {tuple(input_shape)} "
                    f"at image size {size}: {type(exc).__name__}: {exc}"
                ) from exc
        if missing and path is not None:
            # timm loads non-strictly when the classifier is dropped, so a file for another
            # architecture (or with prefixed keys) would silently leave layers random.
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise ConfigError(
                self.field("pretrained"),
                cfg.pretrained,
                f"weights for every backbone parameter of {cfg.arch!r}; "
                f"{len(missing)} missing from the file: {shown}",
            )

        feature_dim = getattr(backbone, "head_hidden_size", None) or backbone.num_features
        return TimmContinualModel(
            backbone, feature_dim, num_outputs, size, repeat, cfg.freeze_backbone
        )


_MISSING_RE = re.compile(r"Missing keys \((.*)\) discovered")


@contextmanager
def _capture_missing_keys() -> Iterator[list[str]]:
    """Collect the parameter names timm reports as missing while loading pretrained weights.

    timm reports them only through an INFO log record of ``timm.models._builder``; if a timm
    version words it differently, nothing is captured and loading behaves as in timm.
    """
    missing: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = _MISSING_RE.search(record.getMessage())
            if match:
                missing.extend(k.strip() for k in match.group(1).split(",") if k.strip())

    logger = logging.getLogger("timm.models._builder")
    handler, old_level = _Handler(logging.INFO), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield missing
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def save_backbone_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write the timm backbone's ``state_dict`` to ``path`` (.safetensors, else torch.save).

    ``model`` is a `ContinualModel` (its ``backbone`` is saved, not the head) or a bare timm
    model. The file reloads with ``{"arch": <same>, "pretrained": path}``; the write is atomic.
    """
    backbone = model.backbone if isinstance(model, ContinualModel) else model
    path = Path(path)
    if path.suffix.lower() not in WEIGHT_SUFFIXES or path.suffix.lower() == ".npz":
        raise ValueError(f"checkpoint path must end in .pth, .pt, .bin or .safetensors: {path}")
    # Own CPU copies: safetensors refuses tensors that share storage.
    state = {
        k: v.detach().to("cpu", copy=True).contiguous() for k, v in backbone.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(tmp))
    else:
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path
