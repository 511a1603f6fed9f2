"""Avalanche 0.6 strategies as clbench strategies (``avl_*``), driven one update per `observe`.

One adapter class (`AvalancheStrategy`) and a table of method specs (`METHODS`); each spec
becomes a registered strategy ``avl_<method>`` with a pydantic Config of that method's
parameters (defaults: Avalanche's own where it has one, cited otherwise). ``clbench list`` thus
shows every method with its parameters, and configs read ``strategy: {name: avl_ewc,
ewc_lambda: 0.4}``.

How an Avalanche strategy is made to do exactly one update per clbench `observe`:

- ``setup``: the Avalanche strategy object is built once, on clbench's model and optimizer
  (``ctx.optimizer``), ``train_mb_size`` = clbench's batch size, ``train_epochs=1``,
  ``eval_every=-1`` and an `EvaluationPlugin` without metrics or loggers (clbench's continual
  evaluator does all evaluation on pre-loaded tensors; continual-evaluation spec §7.4).
- ``before_phase(k)``: the phase's samples (as clbench forms them: normalised, transformed,
  targets mapped) become an Avalanche tensor dataset and a `DatasetExperience` (with the
  ``classes_in_this_experience`` / ``benchmark`` facts some plugins read); then the template's
  own ``_before_training`` → ``_before_training_exp`` (dataset adaptation, dataloader, model and
  optimizer adaptation, every plugin's ``before_training_exp``) → ``_before_training_epoch``.
- ``observe(batch)``: ``strategy.dataloader`` is set to the single minibatch ``[x, y, t]`` and the
  strategy's own ``training_epoch`` runs: one iteration with all plugin callbacks (forward,
  criterion incl. penalties, backward, GEM/A-GEM projections, optimizer step, SI/MIR hooks). This
  also covers strategies that override ``training_epoch`` (DER, ER-ACE).
- ``after_phase(k)``: ``_after_training_epoch`` → ``_after_training_exp`` (EWC/MAS importances,
  LwF's old model, memory updates) → ``_after_training``.

Two sample-source modes differ from "the clbench batch as is":
- ``replay`` (Avalanche `Replay`): `ReplayPlugin` replaces the dataloader by a
  `ReplayDataLoader` yielding new batch + memory batch (``batch_size_mem``, default the train batch
  size). The adapter keeps clbench's new batch and appends a memory batch drawn from the plugin's
  ``storage_policy.buffer`` (uniformly, without replacement within a draw).
- ``loader`` (GDumb, iCaRL): these train on what the plugins put in ``adapted_dataset`` (GDumb:
  only its buffer, after resetting the model; iCaRL: new data + exemplars), so each `observe`
  takes the next minibatch of Avalanche's own dataloader (cycled) instead of clbench's batch;
  the number of updates per phase stays clbench's. GDumb's model reset is copied into clbench's
  model so the evaluator sees it.

Other deviations, all documented where they happen: iCaRL predicts with its trained head until
its first class means exist (Avalanche cannot evaluate it before the end of experience 0); SI
gets a fix for an Avalanche 0.6 CPU aliasing bug (``fix_cpu_alias``); task-incremental runs wrap
the model so that Avalanche's forward masks logits to each sample's task, like clbench's `loss`;
checkpoints hold the optimizer only, so runs cannot be resumed (`load_state_dict` refuses).
Avalanche plugins draw from the global torch RNG (seeded by clbench per run).

Avalanche is imported only inside methods: the registry imports this module for
``clbench list``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import Field, create_model
from torch import nn

from clbench.data.stream import Batch
from clbench.errors import ClbenchError, ConfigError
from clbench.registry import STRATEGIES
from clbench.strategy import Capabilities, Strategy

ALL_SETTINGS = frozenset({"class", "domain", "task"})
CLASS_ONLY = frozenset({"class"})


@dataclass(frozen=True)
class MethodSpec:
    """One Avalanche method: its class, parameters and how the adapter feeds it."""

    avalanche_class: str  # name in `avalanche.training`
    summary: str
    params: dict[str, tuple[Any, Any, str]] = field(
        default_factory=dict
    )  # name: (type, default, doc)
    fixed: dict[str, Any] = field(default_factory=dict)  # constructor kwargs not exposed
    settings: frozenset[str] = ALL_SETTINGS
    mode: str = "batch"  # batch | replay | loader
    uses_buffer: bool = False
    build: Callable[..., Any] | None = None  # custom constructor (iCaRL)
    patch: Callable[[Any, Any], None] | None = None  # (strategy, config) fix applied after build


def _icarl(cls: type, model: nn.Module, kwargs: dict[str, Any]) -> Any:
    if not hasattr(model, "backbone") or not hasattr(model, "head"):
        raise ConfigError("model.name", type(model).__name__, "a model with backbone and head")
    return cls(feature_extractor=model.backbone, classifier=model.head, **kwargs)


def _si_cpu_fix(strategy: Any, config: Any) -> None:
    """Avalanche 0.6 SI bug: ``extract_weights`` stores ``param.detach().cpu().flatten()``, which
    on CPU is a *view* of the live parameter, so the "old" weights follow the optimizer step,
    every path-integral term ``grad · (new - old)`` is 0, importances stay 0 and SI equals naive
    fine-tuning (on CUDA ``.cpu()`` copies and SI works). The fix stores a copy."""
    if not config.fix_cpu_alias:
        return
    from avalanche.training.plugins import SynapticIntelligencePlugin as SI

    plugin = next(p for p in strategy.plugins if isinstance(p, SI))

    def before_training_iteration(strat: Any, **kwargs: Any) -> None:
        for name, param in SI.allowed_parameters(strat.model, plugin.excluded_parameters):
            plugin.syn_data["old_theta"][name].data = param.detach().cpu().flatten().clone()

    plugin.before_training_iteration = before_training_iteration


_MEM = (int, 200, "Memory size (Avalanche default 200)")
METHODS: dict[str, MethodSpec] = {
    "naive": MethodSpec("Naive", "[Avalanche] Naive fine-tuning (cross-check of clbench's naive)"),
    "replay": MethodSpec(
        "Replay",
        "[Avalanche] Replay: experience-balanced memory, new + memory batch per update",
        {
            "mem_size": _MEM,
            "batch_size_mem": (
                int | None,
                None,
                "Memory samples per update (Avalanche default: train batch size)",
            ),
        },
        mode="replay",
        uses_buffer=True,
    ),
    "ewc": MethodSpec(
        "EWC",
        "[Avalanche] EWC (Kirkpatrick 2017), one Fisher penalty per experience",
        {
            "ewc_lambda": (
                float,
                0.4,
                "Penalty weight (required in Avalanche; 0.4 as in its examples/ewc_mnist.py)",
            )
        },
        fixed={"mode": "separate"},
    ),
    "online_ewc": MethodSpec(
        "EWC",
        "[Avalanche] Online EWC (Schwarz 2018): one decayed running Fisher",
        {
            "ewc_lambda": (float, 0.4, "Penalty weight (required in Avalanche)"),
            "decay_factor": (float, 0.9, "Fisher decay (required for mode=online)"),
        },
        fixed={"mode": "online"},
    ),
    "si": MethodSpec(
        "SynapticIntelligence",
        "[Avalanche] Synaptic Intelligence (Zenke 2017)",
        {
            "si_lambda": (
                float,
                1.0,
                "Penalty weight (required in Avalanche; c=1 as in Zenke 2017 for split MNIST)",
            ),
            "eps": (float, 1e-7, "Damping (Avalanche default)"),
            "fix_cpu_alias": (
                bool,
                True,
                "Work around Avalanche 0.6's CPU aliasing bug that zeroes SI's importances "
                "(false: upstream behaviour, SI = naive on CPU)",
            ),
        },
        patch=_si_cpu_fix,
    ),
    "lwf": MethodSpec(
        "LwF",
        "[Avalanche] Learning without Forgetting (Li & Hoiem 2017)",
        {
            "alpha": (float, 1.0, "Distillation weight (required in Avalanche)"),
            "temperature": (float, 2.0, "Softmax temperature (required; T=2 as in the paper)"),
        },
    ),
    "mas": MethodSpec(
        "MAS",
        "[Avalanche] Memory Aware Synapses (Aljundi 2018)",
        {
            "lambda_reg": (float, 1.0, "Penalty weight (Avalanche default)"),
            "alpha": (float, 0.5, "Importance running-average factor (Avalanche default)"),
        },
    ),
    "gem": MethodSpec(
        "GEM",
        "[Avalanche] GEM (Lopez-Paz 2017): gradient projection on per-experience memories",
        {
            "patterns_per_exp": (int, 256, "Memory per experience (required in Avalanche)"),
            "memory_strength": (float, 0.5, "QP margin (Avalanche default)"),
        },
        uses_buffer=True,
    ),
    "agem": MethodSpec(
        "AGEM",
        "[Avalanche] A-GEM (Chaudhry 2019): averaged gradient projection",
        {
            "patterns_per_exp": (int, 256, "Memory per experience (required in Avalanche)"),
            "sample_size": (int, 64, "Memory samples per reference gradient (Avalanche default)"),
        },
        uses_buffer=True,
    ),
    "gdumb": MethodSpec(
        "GDumb",
        "[Avalanche] GDumb: retrain from init on a class-balanced buffer each experience",
        {"mem_size": _MEM},
        mode="loader",
        uses_buffer=True,
    ),
    "icarl": MethodSpec(
        "ICaRL",
        "[Avalanche] iCaRL: exemplars, distillation, nearest-mean-of-exemplars prediction",
        {
            "memory_size": (int, 2000, "Exemplars in total (required in Avalanche)"),
            "fixed_memory": (bool, True, "Fixed total memory (required in Avalanche)"),
        },
        fixed={"buffer_transform": None},
        settings=CLASS_ONLY,
        mode="loader",
        uses_buffer=True,
        build=_icarl,
    ),
    "der": MethodSpec(
        "DER",
        "[Avalanche] DER++ (Buzzega 2020): logit + label replay",
        {
            "mem_size": _MEM,
            "batch_size_mem": (int | None, None, "Memory batch (Avalanche default: train batch)"),
            "alpha": (float, 0.1, "Logit-distillation weight (Avalanche default)"),
            "beta": (float, 0.5, "Label-replay weight (Avalanche default; 0 gives DER)"),
        },
        uses_buffer=True,
    ),
    "er_ace": MethodSpec(
        "ER_ACE",
        "[Avalanche] ER-ACE (Caccia 2022): asymmetric cross-entropy replay",
        {"mem_size": _MEM, "batch_size_mem": (int, 10, "Memory batch (Avalanche default)")},
        settings=CLASS_ONLY,
        uses_buffer=True,
    ),
    "mir": MethodSpec(
        "MIR",
        "[Avalanche] MIR (Aljundi 2019): maximally interfered retrieval",
        {
            "mem_size": (int, 200, "Memory size (required in Avalanche)"),
            "subsample": (int, 50, "Candidates scored per update (required in Avalanche)"),
            "batch_size_mem": (int, 10, "Retrieved samples per update (Avalanche default: 1)"),
        },
        uses_buffer=True,
    ),
}


class AvalancheStrategy(Strategy):
    """Runs one Avalanche strategy under clbench's loop and continual evaluator."""

    method: ClassVar[str]
    spec: ClassVar[MethodSpec]
    provider: ClassVar[str] = "avalanche"
    # Avalanche plugins keep Python-object state (buffers, importances, old models) that the
    # adapter cannot serialise: no checkpoints, an interrupted run starts over
    resumable: ClassVar[bool] = False

    def setup(self, ctx: Any) -> None:
        import avalanche.training as avl_training
        from avalanche.training.plugins import EvaluationPlugin

        super().setup(ctx)
        spec = self.spec
        kwargs = {**spec.fixed, **self.config.model_dump()}
        kwargs.pop("fix_cpu_alias", None)
        if spec.avalanche_class in {"Replay", "GDumb"}:
            # Avalanche's ReplayPlugin / GDumb accept these through the plugin; keep them local
            self._mem_batch = kwargs.pop("batch_size_mem", None)
        model = self.model
        if ctx.plan.setting == "task":
            model = _task_masked(self.model, ctx.data)
        common = {
            "optimizer": self.optimizer,
            "train_mb_size": ctx.batch_size,
            "train_epochs": 1,
            "eval_mb_size": ctx.batch_size,
            "device": ctx.device,
            "evaluator": EvaluationPlugin(loggers=[]),
            "eval_every": -1,
        }
        if spec.avalanche_class != "ICaRL":
            common["criterion"] = nn.CrossEntropyLoss()
        cls = getattr(avl_training, spec.avalanche_class)
        if spec.build is not None:
            self.avl = spec.build(cls, model, {**common, **kwargs})
        else:
            self.avl = cls(model=model, **common, **kwargs)
        if spec.patch is not None:
            spec.patch(self.avl, self.config)
        self._memory: tuple[torch.Tensor, ...] | None = None
        self._loader_iter: Any = None

    # -- phases ----------------------------------------------------------------------------
    def before_phase(self, phase_index: int) -> None:
        from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
        from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

        plan, s = self.ctx.plan, self.avl
        parts = self.training_parts(phase_index)
        index = torch.cat([torch.as_tensor(p.indices, dtype=torch.long) for p in parts])
        task = torch.cat([torch.full((len(p.indices),), p.task, dtype=torch.long) for p in parts])
        batch = self.data.make_batch(index, task)
        x, y, t = batch.x.cpu(), batch.y.cpu(), self._task_labels(batch.task).cpu()
        dataset = _make_taskaware_tensor_classification_dataset(
            x, y, task_labels=_labels(t), targets=y.tolist()
        )
        exp = DatasetExperience(dataset=dataset, current_experience=phase_index)
        order = [o for tk in plan.tasks for o in tk.output_ids]
        seen = sorted({o for tk in plan.tasks[: phase_index + 1] for o in tk.output_ids})
        exp.task_labels = sorted(set(t.tolist()))
        if hasattr(s.model, "current_task"):  # the task-IL wrapper
            s.model.current_task = plan.phases[phase_index].current_task
        exp.classes_in_this_experience = sorted(set(y.tolist()))
        exp.classes_seen_so_far = seen
        exp.previous_classes = sorted({o for tk in plan.tasks[:phase_index] for o in tk.output_ids})
        exp.benchmark = types.SimpleNamespace(
            n_classes_per_exp=[len(tk.output_ids) for tk in plan.tasks],
            classes_order=order,
            n_classes=plan.num_outputs,
        )
        s.experience = exp
        s.is_training = True
        s._stop_training = False
        s._eval_streams = {}
        s.model.train()
        s._before_training()
        own_model = s.model
        s._before_training_exp()
        self._keep_our_model(own_model)
        s._before_training_epoch()
        self._memory, self._loader_iter = None, None
        if self.spec.mode == "replay":
            buffer = next(
                p for p in s.plugins if hasattr(p, "storage_policy")
            ).storage_policy.buffer
            if len(buffer) > 0:
                self._memory = _materialise(buffer)

    def _keep_our_model(self, before: nn.Module) -> None:
        """GDumb swaps in a fresh copy of the initial model: load it into clbench's model."""
        s = self.avl
        if s.model is before:
            return
        before.load_state_dict(s.model.state_dict())
        s.model = before
        s.optimized_param_id = None
        s.make_optimizer(reset_optimizer_state=True)

    def _task_labels(self, task: torch.Tensor) -> torch.Tensor:
        # Avalanche task labels: the task id in task-IL, 0 otherwise (as its class-IL benchmarks)
        return task if self.ctx.plan.setting == "task" else torch.zeros_like(task)

    def observe(self, batch: Batch) -> torch.Tensor:
        s = self.avl
        if self.spec.mode == "loader":
            mbatch = self._next_loader_batch()
        else:
            mbatch = [batch.x, batch.y, self._task_labels(batch.task)]
            if self._memory is not None:
                mbatch = self._with_memory(mbatch)
        loader = s.dataloader
        s.dataloader = [mbatch]
        try:
            s.training_epoch()
        finally:
            if self.spec.mode == "loader":
                s.dataloader = loader
        return s.loss.detach()

    def _with_memory(self, mbatch: list[torch.Tensor]) -> list[torch.Tensor]:
        assert self._memory is not None
        n = len(self._memory[0])
        k = min(n, getattr(self, "_mem_batch", None) or self.ctx.batch_size)
        pick = torch.randperm(n, generator=self.ctx.generator)[:k]
        dev = mbatch[0].device
        return [torch.cat([a, m[pick].to(dev)]) for a, m in zip(mbatch, self._memory, strict=False)]

    def _next_loader_batch(self) -> list[torch.Tensor]:
        s = self.avl
        if self._loader_iter is None:
            self._loader = s.dataloader
            self._loader_iter = iter(self._loader)
        try:
            mb = next(self._loader_iter)
        except StopIteration:
            self._loader_iter = iter(self._loader)
            mb = next(self._loader_iter)
        return list(mb)[:3]

    def after_phase(self, phase_index: int) -> None:
        s = self.avl
        if self.spec.mode == "loader" and self._loader_iter is not None:
            s.dataloader = self._loader
        s._after_training_epoch()
        s._after_training_exp()
        s._after_training()
        s._train_cleanup()
        s.is_training = False
        self._loader_iter = None

    def predict(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Logits as Avalanche would evaluate them (iCaRL: nearest mean of exemplars)."""
        from avalanche.models.utils import avalanche_forward

        m = self.avl.model
        if m is self.model:
            return self.model(x)
        ncm = getattr(m, "eval_classifier", None)
        if ncm is not None and not getattr(ncm, "class_means_dict", None):
            # iCaRL before its first class means exist (during phase 0): the trained head
            return m.train_classifier(m.feature_extractor(x))
        was = m.training
        m.training = False  # TrainEvalModel switches classifier on its own flag
        try:
            return avalanche_forward(m, x, self._task_labels(task))
        finally:
            m.training = was

    def report(self) -> dict[str, Any]:
        return {"provider": "avalanche", "avalanche_class": self.spec.avalanche_class}

    def state_dict(self) -> dict[str, Any]:
        # Avalanche plugins keep Python-object state (buffers, importances, old models) that
        # this adapter does not serialise: a checkpoint holds the optimizer only.
        return {"optimizer": self.optimizer.state_dict(), "avalanche_state": "not saved"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise ClbenchError(
            f"{self.registered_name}: runs of Avalanche strategies cannot be resumed (its "
            "plugins' state is not checkpointed); start the run again"
        )


def _labels(t: torch.Tensor) -> int | list[int]:
    # a constant label is stored as Avalanche's ConstantSequence, which only concatenates with
    # its own kind (iCaRL concatenates its exemplars, labelled 0, to the experience)
    values = t.tolist()
    return values[0] if values and len(set(values)) == 1 else values


def _materialise(dataset: Any) -> tuple[torch.Tensor, ...]:
    """All (x, y, t) of a small Avalanche dataset as tensors."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=len(dataset), collate_fn=dataset.collate_fn
    )
    return tuple(next(iter(loader))[:3])


_UNSET: Any = object()


# Masked logits for Avalanche plugins: finite, because plugins subtract logits (DER's MSE to
# stored logits: -inf - -inf is NaN); exp(-1e4) is exactly 0 in fp32 and bf16, so CE is unchanged.
AVALANCHE_MASKED_LOGIT = -1e4


def _task_masked(model: nn.Module, data: Any) -> nn.Module:
    """Task-IL: a multi-task wrapper masking each sample's logits to its task's outputs."""
    from avalanche.models import MultiTaskModule

    class TaskMasked(MultiTaskModule):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.current_task = 0  # used when a plugin calls the model without task labels

        def forward(self, x: torch.Tensor, task_labels: Any = _UNSET) -> Any:
            logits = self.inner(x)
            if task_labels is None:  # Avalanche's "all heads" call (LwF): {task: logits}
                n = data.plan.num_tasks
                full = torch.ones(len(x), dtype=torch.long, device=logits.device)
                return {
                    k: data.mask_logits(logits, full * k, AVALANCHE_MASKED_LOGIT) for k in range(n)
                }
            if task_labels is _UNSET:  # plain model(x) (DER's stored logits): current task
                task_labels = self.current_task
            if not torch.is_tensor(task_labels):
                task_labels = torch.full((len(x),), int(task_labels), dtype=torch.long)
            return data.mask_logits(logits, task_labels.to(logits.device), AVALANCHE_MASKED_LOGIT)

        def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
            return self.forward(x, task_label)

    return TaskMasked()


def _register(method: str, spec: MethodSpec) -> type[AvalancheStrategy]:
    fields: dict[str, Any] = {
        name: (typ, Field(default, description=doc))
        for name, (typ, default, doc) in spec.params.items()
    }
    config = create_model(f"{spec.avalanche_class}Config", __base__=Strategy.Config, **fields)
    cls = type(
        f"Avalanche_{method}",
        (AvalancheStrategy,),
        {
            "Config": config,
            "method": method,
            "spec": spec,
            "summary": spec.summary,
            "capabilities": Capabilities(settings=spec.settings, uses_buffer=spec.uses_buffer),
            "__module__": __name__,
            "__doc__": f"Avalanche's `{spec.avalanche_class}` through the clbench adapter.",
        },
    )
    return STRATEGIES.register(f"avl_{method}")(cls)


for _method, _spec in METHODS.items():
    _register(_method, _spec)
