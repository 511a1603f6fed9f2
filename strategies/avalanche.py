"""Avalanche 0.6 strategies as clbench strategies (``avl_*``), driven one update per `observe`.

One adapter class (`AvalancheStrategy`) over a table of methods (`METHODS` in
`specs/avalanche.py`); each entry becomes a registered strategy ``avl_<method>`` with a pydantic
Config of that method's parameters (defaults: Avalanche's own where it has one, cited
otherwise). ``clbench list`` thus shows every method with its parameters, and configs read
``strategy: {name: avl_ewc, ewc_lambda: 0.4}``.

How an Avalanche strategy is made to do exactly one update per clbench `observe`:

- ``setup``: the Avalanche strategy object is built once, on clbench's model and optimizer
  (``ctx.optimizer``), ``train_mb_size`` = clbench's batch size, ``train_epochs=1``,
  ``eval_every=-1`` and an `EvaluationPlugin` without metrics or loggers (clbench's continual
  evaluator does all evaluation on pre-loaded tensors).
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
gets fixes for two Avalanche 0.6 problems, a CPU aliasing bug that makes it naive fine-tuning
(``fix_cpu_alias``) and negative importances that make its penalty unbounded below
(``nonnegative_importance``, see `_si`); task-incremental runs wrap the model so that
Avalanche's forward masks logits to each sample's task, like clbench's `loss`; checkpoints hold
the optimizer only, so runs cannot be resumed (`load_state_dict` refuses). Avalanche plugins
draw from the global torch RNG (seeded by clbench per run). `observe` returns Avalanche's loss
(criterion plus the method's penalty terms) as a scalar.

Methods with a memory expose it as ``buffer`` (`AvalancheMemory`: ``len`` = samples held,
``nbytes`` = their bytes), read from Avalanche's own storage, so the run budget reports it like
clbench's buffers. Packages Avalanche needs only mid-run (GEM: ``quadprog``) are checked in
`problems_with`, before any work.

Avalanche is imported only inside methods: the registry imports this module for
``clbench list``.
"""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from clbench.data.stream import Batch
from clbench.errors import ClbenchError, ConfigError
from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategies.specs.avalanche import SPECS, AvalancheSpec, MethodSpec
from clbench.strategy import Strategy


def _icarl(cls: type, model: nn.Module, kwargs: dict[str, Any]) -> Any:
    if not hasattr(model, "backbone") or not hasattr(model, "head"):
        raise ConfigError("model.name", type(model).__name__, "a model with backbone and head")
    return cls(feature_extractor=model.backbone, classifier=model.head, **kwargs)


def _si(cls: type, model: nn.Module, kwargs: dict[str, Any]) -> Any:
    """SI with two fixes to Avalanche 0.6's plugin, each switchable (both off: upstream).

    ``fix_cpu_alias``: the plugin's ``extract_weights`` (ContinualAI/avalanche@
    cc2205f572f2659aba2d7351629ae3fdf07df953:avalanche/training/plugins/synaptic_intelligence.py)
    stores ``param.detach().cpu().flatten()``, which on CPU is a *view* of the live parameter (on
    CUDA ``.cpu()`` copies). Two of those snapshots must not follow the weights:
    - ``ewc_data[0]``, the penalty's anchor θ*, set in ``before_training_exp``: as a view,
      ``θ - θ*`` is 0 at every step, so the penalty and its gradient are exactly 0 and SI trains
      as naive fine-tuning whatever ``si_lambda`` (and the importance's denominator
      ``(θ_end - θ*)² + eps`` collapses to ``eps``);
    - ``old_theta``, set in ``before_training_iteration``: as a view, every path-integral term
      ``grad · (θ_new - θ_old)`` is 0.
    (An earlier workaround copied ``old_theta`` only: importances became non-zero, but with the
    anchor still aliased the penalty stayed 0 and runs stayed bit-identical to naive.)
    An older version of the same file copied in place (``target[name][...] = ...``,
    ContinualAI/avalanche@095460d2fce22f3580c20877a8008452099ad98b).

    ``nonnegative_importance``: Avalanche clips the importance from above only (``clip_to``
    0.001); a parameter whose net move opposed its gradients (momentum) and that barely moved gets
    a large *negative* importance (-c·ω/(Δ²+eps)), which makes the penalty unbounded below: with
    the aliasing fixed, the digits default diverges (loss -inf) at λ=100. The official code clips
    Ω at 0 (``tf.nn.relu``, ganguli-lab/pathint@7e95e99368ec2eef2aba01eadb551538775ab01e:
    pathint/protocols.py, PATH_INT_PROTOCOL).

    The fixes live in a subclass of the plugin, run on `SupervisedTemplate` exactly as
    Avalanche's `SynapticIntelligence` strategy runs its own plugin.
    """
    from avalanche.training.templates import SupervisedTemplate

    copy, nonnegative = kwargs.pop("fix_cpu_alias"), kwargs.pop("nonnegative_importance")
    if not copy and not nonnegative:
        return cls(model=model, **kwargs)
    plugin = _fixed_si_plugin()(
        si_lambda=kwargs.pop("si_lambda"), eps=kwargs.pop("eps"), copy=copy, nonnegative=nonnegative
    )
    return SupervisedTemplate(model=model, plugins=[plugin], **kwargs)


@functools.cache
def _fixed_si_plugin() -> type:
    from avalanche.training.plugins import SynapticIntelligencePlugin

    class FixedSIPlugin(SynapticIntelligencePlugin):
        """Avalanche's SI plugin with copied weight snapshots and importances clipped at 0."""

        def __init__(self, *args: Any, copy: bool, nonnegative: bool, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.copy, self.nonnegative = copy, nonnegative

        def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
            super().before_training_exp(strategy, **kwargs)
            if self.copy:
                _own_copies(strategy.model, self.ewc_data[0])  # the anchor θ*

        def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
            super().before_training_iteration(strategy, **kwargs)
            if self.copy:
                _own_copies(strategy.model, self.syn_data["old_theta"])

        def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
            super().after_training_exp(strategy, **kwargs)  # computes the importances
            if self.nonnegative:
                for importance in self.ewc_data[1].values():
                    importance.data = importance.data.clamp(min=0.0)

    return FixedSIPlugin


def _own_copies(model: nn.Module, snapshots: dict[str, Any]) -> None:
    """Replace every snapshot sharing storage with a model parameter by a copy."""
    live = {p.untyped_storage().data_ptr() for p in model.parameters()}
    for item in snapshots.values():
        if item.data.untyped_storage().data_ptr() in live:
            item.data = item.data.clone()


# -- memory readers: (samples, bytes) of what each method's Avalanche memory holds ----------
# Bytes count the stored samples as tensors (inputs, int64 targets and task labels, DER's logits):
# Avalanche's memories hold samples, where clbench's own buffers hold indices into the data.


def _item_bytes(value: Any) -> int:
    if torch.is_tensor(value):
        return value.element_size() * value.numel()
    if isinstance(value, (list, tuple)):
        return sum(_item_bytes(v) for v in value)
    return 8  # a Python int label, int64 once collated


def _dataset_memory(dataset: Any) -> tuple[int, int]:
    n = len(dataset)
    # every sample of a memory has the same shapes: one sample's bytes times the count
    return n, n * _item_bytes(dataset[0]) if n else 0


def _plugin_with(s: Any, attribute: str) -> Any:
    return next(h for h in (s, *s.plugins) if hasattr(h, attribute))


def _storage_memory(s: Any) -> tuple[int, int]:
    """Replay, GDumb, DER, ER-ACE, MIR: an `ExemplarsBuffer` (``storage_policy``)."""
    return _dataset_memory(_plugin_with(s, "storage_policy").storage_policy.buffer)


def _gem_memory(s: Any) -> tuple[int, int]:
    """GEM: tensors per experience in ``memory_x`` / ``memory_y`` / ``memory_tid``."""
    p = _plugin_with(s, "memory_x")
    n = sum(len(x) for x in p.memory_x.values())
    stores = (p.memory_x, p.memory_y, p.memory_tid)
    return n, sum(_item_bytes(t) for store in stores for t in store.values())


def _agem_memory(s: Any) -> tuple[int, int]:
    """A-GEM: one dataset per experience in ``buffers``."""
    parts = [_dataset_memory(b) for b in _plugin_with(s, "patterns_per_experience").buffers]
    return sum(n for n, _ in parts), sum(b for _, b in parts)


def _icarl_memory(s: Any) -> tuple[int, int]:
    """iCaRL: exemplar tensors per class in ``x_memory``, their labels in ``y_memory``."""
    p = _plugin_with(s, "x_memory")
    n = sum(len(x) for x in p.x_memory)
    return n, sum(_item_bytes(x) for x in p.x_memory) + 8 * n  # + int64 labels


class AvalancheMemory:
    """The ``buffer`` the run summary reads (``len``, ``nbytes``), read live from Avalanche."""

    def __init__(self, strategy: Any, reader: Callable[[Any], tuple[int, int]]) -> None:
        self._strategy, self._reader = strategy, reader

    def __len__(self) -> int:
        return self._reader(self._strategy)[0]

    @property
    def nbytes(self) -> int:
        return self._reader(self._strategy)[1]


def build_avalanche(
    spec: MethodSpec, model: nn.Module, common: dict[str, Any], params: dict[str, Any]
) -> Any:
    """Avalanche's strategy object for ``spec``: template arguments ``common`` (optimizer, batch
    sizes, device, evaluator, ...) and the method's own config values ``params``."""
    import avalanche.training as avl_training

    common = dict(common)
    if spec.avalanche_class != "ICaRL":  # iCaRL brings its own BCE criterion
        common.setdefault("criterion", nn.CrossEntropyLoss())
    cls = getattr(avl_training, spec.avalanche_class)
    kwargs = {**common, **spec.fixed, **params}
    if spec.build is not None:
        return BUILDERS[spec.build](cls, model, kwargs)
    return cls(model=model, **kwargs)


class AvalancheStrategy(Strategy):
    """Runs one Avalanche strategy under clbench's loop and continual evaluator."""

    method: ClassVar[str]
    spec: ClassVar[MethodSpec]
    provider: ClassVar[str] = "avalanche"

    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        # a missing optional package would otherwise fail inside Avalanche mid-run (GEM: at the
        # first QP, in the second experience): refuse before any work, naming the fix
        for module, why in self.spec.requires.items():
            try:
                importlib.import_module(module)
            except ImportError:
                raise ClbenchError(
                    f"{self.registered_name} needs the Python package {module!r}, which is not "
                    f"installed ({why}); install it with: pip install {module}"
                ) from None
        return super().problems_with(plan)

    def setup(self, ctx: Any) -> None:
        from avalanche.training.plugins import EvaluationPlugin

        super().setup(ctx)
        spec = self.spec
        params = self.config.model_dump()
        if spec.avalanche_class in {"Replay", "GDumb"}:
            # Avalanche's ReplayPlugin / GDumb accept these through the plugin; keep them local
            self._mem_batch = params.pop("batch_size_mem", None)
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
        self.avl = build_avalanche(spec, model, common, params)
        self._avl_memory = (
            None if spec.memory is None else AvalancheMemory(self.avl, MEMORY_READERS[spec.memory])
        )
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
        # Avalanche's loss starts as torch.zeros(1) (`_make_empty_loss`): shape [1], where every
        # clbench strategy returns a scalar (train_loss.parquet would get one-element lists)
        return s.loss.detach().reshape(())

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

    def memory(self) -> AvalancheMemory | None:
        return self._avl_memory

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


MEMORY_READERS: dict[str, Callable[[Any], tuple[int, int]]] = {
    "storage": _storage_memory,
    "gem": _gem_memory,
    "agem": _agem_memory,
    "icarl": _icarl_memory,
}
BUILDERS: dict[str, Callable[..., Any]] = {"si": _si, "icarl": _icarl}


def _register(method: str, spec_cls: type[AvalancheSpec]) -> type[AvalancheStrategy]:
    cls = type(
        f"Avalanche_{method}",
        (spec_cls, AvalancheStrategy),
        {
            "__module__": __name__,
            "__doc__": f"Avalanche's `{spec_cls.spec.avalanche_class}` through the adapter.",
        },
    )
    return STRATEGIES.register(f"avl_{method}")(cls)


for _method, _spec_cls in SPECS.items():
    _register(_method, _spec_cls)
