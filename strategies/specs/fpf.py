"""Specs of the FPF plugin and k-FPF, and the finetuning options they share (implementation:
`fpf/`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from clbench.registry import PLUGINS, STRATEGIES
from clbench.strategy.spec import Capabilities, PluginSpec, StrategySpec


class FPFOptions(BaseModel):
    """FPF options shared by `fpf` and `k_fpf`.

    Paper (Zhao et al., ICML 2023, arXiv:2304.04158): FPF finetunes "the most sensitive
    parameters for a few iterations using buffered data" (Fig. 2 caption), modules being ranked
    by metrics of their training dynamics (abstract). No official code has been found: no FPF
    repository under the authors' or the method's names, and Mammoth
    (aimagelab/mammoth@e75a491c69fd729edeb01431afb753d9157d9a81) has no FPF model. No default
    below is taken from the paper or code: each is a clbench choice, and its description says
    why, citing Mammoth at that commit where a value follows it.
    """

    modules: list[str] | Literal["auto"] = Field(
        default_factory=lambda: ["bn", "fc"],
        description="modules finetuned: keywords bn, fc/head, conv1, first_layer, last_conv, all, "
        "or globs over module names; 'auto' = the top_k most sensitive by the paper's "
        "training-dynamics metric (abstract). Default ['bn', 'fc'] is a clbench choice, not a "
        "setting taken from the paper or code: BatchNorm layers plus the classifier head are a "
        "small share of the parameters (keeps FPF cheap, as the paper intends); the head exists "
        "on every clbench backbone, whereas conv1 matches nothing on MLPs",
    )
    top_k: int = Field(
        3,
        ge=1,
        description="modules taken by modules=auto. The paper finds 'only a few modules' "
        "task-specific (abstract) but no count is taken from the paper or code; 3 is a clbench "
        "choice for 'a few'",
    )
    sensitivity_skip_first: bool = Field(
        True,
        description="auto: leave out the init -> end-of-task-1 interval when ranking. clbench "
        "design choice, not from the paper: that interval measures learning from the "
        "initialisation, not change between tasks, and would dominate the average",
    )
    iterations: int = Field(
        300,
        ge=0,
        description="FPF SGD iterations per run. Paper: 'a few iterations' (Fig. 2 caption); "
        "no number is taken from the paper or code. 300 is a clbench choice: with batch 32, "
        "about 19 passes over a 500-slot buffer (48 over 200), cheap next to training",
    )
    fpf_lr: float = Field(
        0.05,
        gt=0,
        description="FPF SGD learning rate; not taken from the paper or code. 0.05 is a clbench "
        "choice between the lrs Mammoth tunes for ER (0.1) and DER (0.03) on seq-cifar10 "
        "(aimagelab/mammoth@e75a491c69fd:utils/best_args.py L520-531, L644-658). loss=kd can "
        "diverge at this lr on small MLPs (docs/methods/fpf.md); lower it there",
    )
    fpf_momentum: float = Field(
        0.0,
        ge=0,
        description="FPF SGD momentum; not taken from the paper or code. 0 (plain SGD) is a "
        "clbench choice matching Mammoth's default optimiser momentum "
        "(aimagelab/mammoth@e75a491c69fd:utils/args.py L316, --optim_mom default 0)",
    )
    fpf_batch_size: int = Field(
        32,
        ge=1,
        description="buffer minibatch per FPF iteration; not taken from the paper or code. 32 "
        "is a clbench choice: Mammoth's replay minibatch_size for ER/DER on seq-cifar10 "
        "(aimagelab/mammoth@e75a491c69fd:utils/best_args.py L520-531)",
    )
    bn_running_stats: Literal["update", "freeze"] = Field(
        "update",
        description="selected BatchNorm layers in train mode (update: running statistics "
        "re-estimated on buffer batches) or eval mode (freeze) during FPF; unselected BN layers "
        "are always frozen. Not specified by the paper or code; 'update' is a clbench choice: "
        "it is what finetuning a BN layer in train mode does, and the buffer mixes all tasks",
    )
    kd_weight: float = Field(
        1.0,
        ge=0,
        description="λ of CE + λ·MSE(logits, stored logits) for loss=kd; the MSE-to-stored-logits "
        "form follows DER (aimagelab/mammoth@e75a491c69fd:models/der.py L41). λ is not taken "
        "from the paper or code; 1.0 (equal weights) is a clbench choice. Mammoth's tuned DER "
        "α on seq-cifar10 is 0.3 (utils/best_args.py L644-658)",
    )
    kd_ce: bool = Field(
        True,
        description="loss=kd also keeps CE on the buffered labels (CE + λ·MSE), as DER++ adds "
        "both buffer terms (aimagelab/mammoth@e75a491c69fd:models/derpp.py L44-50). Not taken "
        "from the paper or code; True is a clbench choice so the KD run still fits the labels",
    )


@PLUGINS.spec("fpf", "clbench.strategies.fpf.plugin:FPF")
class FPFSpec(PluginSpec):
    summary = "FPF: finetune the most sensitive modules on a replay memory after any strategy"

    class Config(PluginSpec.Config, FPFOptions):
        when: Literal["end", "every_phase"] = Field(
            "end", description="FPF after the last phase (paper abstract, Fig. 2) or after each"
        )
        loss: Literal["ce", "kd"] = Field(
            "ce", description="CE on buffered labels, or KD on stored logits (+CE if kd_ce)"
        )
        buffer_size: int = Field(
            200,
            ge=0,
            description="own reservoir memory, used when the strategy has none or KD needs "
            "logits (Mammoth's smallest standard size, aimagelab/mammoth@e75a491: "
            "utils/best_args.py)",
        )


@STRATEGIES.spec("k_fpf", "clbench.strategies.fpf.k_fpf:KFPF")
class KFPFSpec(StrategySpec):
    summary = "k-FPF: SGD without replay + FPF on the buffer k times (CE or KD)"
    capabilities = Capabilities(uses_buffer=True)

    class Config(StrategySpec.Config, FPFOptions):
        k: int = Field(
            10,
            ge=1,
            description="FPF runs per training sequence. Paper: FPF applied 'for k times' "
            "periodically, regardless of task boundaries (Fig. 2 caption); no value of k is "
            "taken from the paper or code (none public). 10 is a clbench choice: two runs per "
            "task on a 5-task sequence",
        )
        loss: Literal["ce", "kd"] = Field(
            "kd",
            description="ce: k-FPF-CE, CE on buffered labels; kd: k-FPF-KD, matching buffered "
            "logits (+ CE if kd_ce), the paper's distilled variant as described in the "
            "liner.com summary of arXiv:2304.04158. Default kd is a clbench choice: that summary "
            "reports it comparable to FPF at much lower cost; at fpf_lr 0.05 it can diverge on "
            "small MLPs (docs/methods/fpf.md), use ce there",
        )
        final_fpf: bool = Field(
            True,
            description="true: runs after updates round(i·T/k), the k-th at the last update; "
            "false: round(i·T/(k+1)), all inside training. Not taken from the paper or code; "
            "true is a clbench choice so the evaluated final model has just been finetuned, as "
            "after FPF at the end",
        )
        buffer_size: int = Field(
            200,
            ge=0,
            description="reservoir slots. Not taken from the paper or code; 200 is a clbench "
            "choice, the smallest of Mammoth's standard sizes 200/500/5120 "
            "(aimagelab/mammoth@e75a491c69fd:utils/best_args.py L520-531)",
        )
