"""The HyperInterval strategy's spec: its parameters, summary and capabilities (implementation:
`hyperinterval/`).

Defaults are the official code's (gmum/HyperInterval@d42305d:
`Utils/prepare_non_forced_scenario_params.py`, `Utils/prepare_nested_scenario_params.py`) or a
reduced configuration sized for a CPU, as each description says; quirks of the official code are
options with an ``official`` value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from clbench.registry import STRATEGIES
from clbench.strategy.spec import TRAIN_BATCHES, Capabilities, StrategySpec


class HyperIntervalConfig(StrategySpec.Config):
    """Options of the `hyperinterval` strategy; defaults cite the official code."""

    variant: Literal["standard", "nested"] = Field(
        "standard",
        description="standard: learnable centre e_t and ρ_t (train_non_forced_scenario.py, "
        "the paper's TIL results); nested: centre (ε/2M)·cos(e_t), fixed radius ε/M, so all "
        "task boxes share [−ε/2M, ε/2M]^M (train_nested_scenario.py; official nested defaults "
        "ε 5, β 0.005 Permuted MNIST / ε 10, β 0.001 Split MNIST)",
    )
    embedding_dim: int = Field(
        24, ge=1, description="M (official: 24 Permuted MNIST; reduced configuration)"
    )
    hnet_hidden: list[int] = Field(
        [50, 50],
        description="Hypernet hidden widths (reduced; official [100,100] PMNIST, [75,75] "
        "Split MNIST)",
    )
    target: Literal["mlp", "cnn"] = Field(
        "mlp",
        description="mlp: target MLP `target_hidden` with exact interval propagation "
        "(official Permuted/Split MNIST); cnn: conv net `cnn_channels` + `cnn_fc_hidden` "
        "with bounds by `cnn_bounds` (official CIFAR-100 / TinyImageNet use CNNs)",
    )
    target_hidden: list[int] = Field(
        [100, 100],
        description="Target MLP hidden widths (reduced; official [1000,1000] / [400,400])",
    )
    cnn_channels: list[int] = Field(
        [16, 32],
        min_length=1,
        description="target: cnn. 3×3 convolutions (padding 1), each followed by ReLU and "
        "2×2 max-pooling (reduced for CPU; official AlexNet 64-192-384-256-256)",
    )
    cnn_fc_hidden: list[int] = Field(
        [100],
        description="target: cnn. Hidden widths of the MLP head after the convolutions "
        "(reduced for CPU; official AlexNet 4096-4096)",
    )
    cnn_bounds: Literal["relaxed", "ibp"] = Field(
        "relaxed",
        description="target: cnn. relaxed (official reverse_predictions): three passes with "
        "lower/middle/upper weights, partially sorted; NOT a sound bound (weights inside the "
        "box can give logits outside it, and lower ≤ middle can fail); ibp: exact interval "
        "propagation through conv, ReLU and max-pool, a sound bound (clbench fix)",
    )
    eps: float = Field(1.0, ge=0, description="Radius budget ε (official Split MNIST TIL: 1.0)")
    beta: float = Field(0.01, ge=0, description="Output regulariser weight β (official: 0.01)")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (official: 1e-3); fresh per task")
    kappa_final: float = Field(0.5, ge=0, le=1, description="κ after the warm-up (official: 0.5)")
    kappa_decay: float = Field(5e-5, ge=0, description="κ decrease per iteration (official: 5e-5)")
    kappa_schedule: Literal["official", "linear_to_final"] = Field(
        "official",
        description="official: κ = max(1 − 5e-5·it, κ_final) then a jump to κ_final at "
        "N/2; linear_to_final: a linear ramp reaching κ_final at N/2",
    )
    reg_scaling: Literal["official", "mean_over_tasks"] = Field(
        "official",
        description="official: β·L_reg/max(1,t) with L_reg already a mean over t tasks "
        "(β/t² on the sum); mean_over_tasks: β·L_reg",
    )
    custom_init: bool | None = Field(
        None,
        validate_default=True,
        description="Start e_t as a copy of e_{t−1} before task t (official custom_init). "
        "None: the official choice, true for nested and false for standard",
    )
    selection: Literal["last", "official", "after_warmup"] = Field(
        "last",
        description="Iterate kept at the end of a task. last: the last one. official: standard "
        "variant, the best validation accuracy of the "
        "middle net (weights at the current ε_it, so warm-up checks count) on `val_size` "
        "samples held out of each task's training data; nested, the lowest training loss "
        "among checks after the ε warm-up. after_warmup: as official, but only "
        "checks made once ε_it = ε. Checks every `val_every` updates and at the last one",
    )
    val_size: int = Field(
        500,
        ge=1,
        description="Training samples per task held out for validation when selection is "
        "official/after_warmup in the standard variant (official: 500 Permuted MNIST, 1000 Split "
        "MNIST)",
    )
    val_every: int = Field(10, ge=1, description="Updates between selection checks (official: 10)")
    inference: Literal["auto", "task", "entropy"] = Field(
        "auto",
        description="task: each sample's own embedding; entropy: per-sample minimum output "
        "entropy over learned tasks (official entropy.py); auto: task iff task ids are given "
        "at test",
    )
    entropy_weighting: Literal["vanilla", "interval"] = Field(
        "vanilla",
        description="vanilla: w_j = 1 (official default); interval: w_j = 1/(0.001+|zU−zL|)",
    )
    inputs: Literal["unit", "normalised"] = Field(
        "unit",
        description="unit: undo clbench's mean/std normalisation of images so pixels are in "
        "[0, 1] as in the official code (its IntervalLinear expects x ≥ 0; zero-mean "
        "inputs widen the intervals); normalised: use the batch as given",
    )
    universal: bool = Field(
        True,
        description="Evaluate the universal embedding after the last phase (as the official code)",
    )

    @field_validator("custom_init")
    @classmethod
    def _resolve_custom_init(cls, value: bool | None, info: ValidationInfo) -> bool:
        # resolved here so the saved config records what ran
        return info.data.get("variant") == "nested" if value is None else value


@STRATEGIES.spec("hyperinterval", "clbench.strategies.hyperinterval.strategy:HyperInterval")
class HyperIntervalSpec(StrategySpec):
    summary = "HyperInterval: hypernetwork-generated weight intervals with interval embeddings"
    # its loss is the hypernetwork's own (no plugin terms); the batch handed in is trained on
    capabilities = Capabilities(
        settings=frozenset({"task", "class", "domain"}), routes=frozenset({TRAIN_BATCHES})
    )

    Config = HyperIntervalConfig
