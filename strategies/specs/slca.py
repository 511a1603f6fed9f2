"""Specs of SLCA, sequential fine-tuning and the linear probe (implementation:
`slca/strategy.py`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.strategy.spec import Capabilities, StrategySpec


@STRATEGIES.spec("slca", "clbench.strategies.slca.strategy:SLCA")
class SLCASpec(StrategySpec):
    summary = "SLCA: slow backbone lr + per-class Gaussian classifier alignment (pretrained model)"
    capabilities: ClassVar[Capabilities] = Capabilities(
        settings=frozenset({"class", "task"}), needs_pretrained=True
    )

    class Config(StrategySpec.Config):
        backbone_lr_scale: float = Field(
            0.01,
            ge=0,
            description="backbone lr = train.lr * this (official bcb_lrscale 1/100: backbone 1e-4, "
            "head 1e-2); 0 freezes the backbone (eval mode, no gradients)",
        )
        current_task_logits: bool = Field(
            True,
            description="CE over the current task's logits only (official: per-task heads, "
            "separated softmax); false: over all outputs",
        )
        freeze_old_heads: bool = Field(
            True,
            description="while training a task, the other tasks' head rows get no update and no "
            "weight decay (official requires_grad=False on old heads)",
        )
        ca_epochs: int = Field(
            5,
            ge=0,
            description="classifier-alignment epochs after each task from the second "
            "(official 5); 0 disables alignment (slow learner only)",
        )
        ca_samples_per_class: int = Field(
            256, ge=1, description="pseudo-features per seen class per CA epoch (official 256)"
        )
        ca_batch_size: int = Field(
            256, ge=1, description="CA minibatch size, classes mixed (official 256)"
        )
        ca_lr: float | None = Field(
            None,
            gt=0,
            description="CA lr, cosine-annealed over ca_epochs (default: train.lr; official "
            "lr0 = 0.01); momentum and weight decay from the train section (official 0.9, 5e-4)",
        )
        ca_logit_norm: float = Field(
            0.1,
            ge=0,
            description="logit-normalisation temperature tau (official ca_with_logit_norm 0.1, "
            "0.05 for Cars); 0: plain CE on the raw logits",
        )
        logit_norm_mode: Literal["per_task_mean", "global"] = Field(
            "per_task_mean",
            description="per_task_mean: official code, divide by the mean over seen tasks of the "
            "per-task logit L2 norms; global: the paper's h/(tau*||h||) over all seen logits",
        )
        shrink_old_means: bool = Field(
            True,
            description="official quirk: sample class c of task t_c (0-based, in learning order) "
            "around mu_c * (0.9 + 0.1*(t_c+1)/(t+1)) after task t; false: around mu_c",
        )
        cov_ridge: float = Field(
            1e-4, ge=0, description="added to each class covariance diagonal (official 1e-4)"
        )
        restore_heads: bool = Field(
            True,
            description="official quirk (fc.backup/recall): after the phase-end evaluation the "
            "heads go back to their pre-alignment values before the next task trains",
        )


@STRATEGIES.spec("seq_ft", "clbench.strategies.slca.strategy:SeqFT")
class SeqFTSpec(SLCASpec):
    summary = "Sequential fine-tuning baseline of SLCA: backbone at the full lr, no alignment"
    capabilities: ClassVar[Capabilities] = Capabilities(settings=frozenset({"class", "task"}))

    class Config(SLCASpec.Config):
        backbone_lr_scale: float = Field(
            1.0, ge=0, description="backbone lr = train.lr * this (seq FT: 1, same lr as the head)"
        )
        ca_epochs: int = Field(0, ge=0, description="classifier-alignment epochs (seq FT: 0)")


@STRATEGIES.spec("linear_probe", "clbench.strategies.slca.strategy:LinearProbe")
class LinearProbeSpec(SLCASpec):
    summary = "Linear-probe baseline of SLCA: frozen backbone, per-task heads, no alignment"
    capabilities: ClassVar[Capabilities] = Capabilities(settings=frozenset({"class", "task"}))

    class Config(SLCASpec.Config):
        backbone_lr_scale: float = Field(
            0.0, ge=0, description="backbone lr scale (linear probe: 0 = frozen backbone)"
        )
        ca_epochs: int = Field(
            0, ge=0, description="classifier-alignment epochs (0; >0 gives 'linear probe + CA')"
        )
