"""Runs one experiment: validate everything, then train with continual evaluation.

`prepare` does all the checking (config, data files, scenario fit, strategy and plugin
capabilities, model weights), resolves the config once into typed parts and loads the data without
touching the output folder, so bad input fails before any work and leaves nothing behind.
`Experiment.run` then trains phase by phase in small named steps (`_enter_phase`, `_run_epoch`,
`_update`, `_after_update`, `_finish_phase`), evaluating every seen task when the evaluation
schedule says (`clbench.engine.schedule`), and keeps the loop state (`LoopState`) strategies and
plugins read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from clbench.config import RunConfig, component, config_hash, plugin_params, run_name
from clbench.data.arrays import LastLoaded
from clbench.data.cache import load_memmapped
from clbench.data.dataset import InMemoryDataset
from clbench.data.source import resolve_data_root
from clbench.data.stream import Storage, StreamData, split_bytes
from clbench.engine.checkpoint import Checkpointer, Position, cloned, make_checkpoint
from clbench.engine.evaluator import ContinualEvaluator
from clbench.engine.observer import Evaluation, Observers
from clbench.engine.recipe import BatchAugmenter, check_augment_data, check_recipe
from clbench.engine.recipe_checks import check_pretrained_given
from clbench.engine.records import RecordLog
from clbench.engine.schedule import EvalSchedule
from clbench.engine.seeding import derived_seeds, seed_globals, torch_settings
from clbench.errors import ConfigError, IncompatibleError, RunInterrupted, SetupConfigError
from clbench.models.base import ModelBuilder
from clbench.registry import DATASETS, MODELS, PLUGINS, SCENARIOS, STRATEGIES
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategy import (
    LoopPlan,
    LoopState,
    OptimizerSettings,
    PluginChain,
    Strategy,
    StrategyContext,
)
from clbench.strategy.lr_schedule import apply_lr, lr_factor
from clbench.strategy.stepper import Stepper


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError("device", name, "auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "auto or cpu (no CUDA device is available)")
    return device


def resolve_storage(config: RunConfig, dataset: InMemoryDataset, device: torch.device) -> Storage:
    """``storage=auto``: the device when it is the host or the data fits its share of it, else
    host memory. ``memmap`` is never chosen automatically: it writes a cache to disk."""
    if config.storage != "auto":
        return config.storage
    if device.type != "cuda":
        return "device"  # host memory either way: the in-place gather is the fast path
    total = torch.cuda.get_device_properties(device).total_memory
    size = split_bytes(dataset.train) + split_bytes(dataset.test)
    return "device" if size <= config.storage_device_fraction * total else "host"


@dataclass(frozen=True)
class Component:
    """A resolved strategy or plugin: its class and validated parameters (built per run)."""

    name: str
    cls: type[Any]
    params: Any

    def build(self) -> Any:
        return self.cls(self.params)


@dataclass
class Prepared:
    """A validated experiment, resolved once into the typed parts a run is built from."""

    config: RunConfig
    dataset: InMemoryDataset
    plan: ScenarioPlan
    device: torch.device
    seeds: dict[str, int]
    run_id: str
    model: ModelBuilder
    strategy: Component
    plugins: tuple[Component, ...] = ()


def prepare(config: RunConfig, last_loaded: LastLoaded | None = None) -> Prepared:
    """Check everything that can be checked and load the data; never writes anything, except
    that ``storage=memmap`` builds the dataset's cache (`clbench.data.cache`) when missing.
    ``last_loaded`` keeps the dataset for the next call with the same data (a sweep's check)."""
    device = resolve_device(config.device)
    seeds = derived_seeds(config.seed)
    strategy_name, strategy_params = component(config, "strategy")
    strategy = Component(strategy_name, STRATEGIES.get(strategy_name), strategy_params)
    plugins = tuple(Component(n, PLUGINS.get(n), p) for n, p in plugin_params(config))
    model_name, model_params = component(config, "model")
    model_builder = MODELS.get(model_name)(model_params)
    model_builder.check()
    check_pretrained_given(strategy_name, strategy.cls.capabilities, model_params)
    check_recipe(config, device, strategy_name, strategy.cls.capabilities)

    data_name, data_params = component(config, "data")
    source = DATASETS.get(data_name)(
        data_params, resolve_data_root(config.data.get("root")), bool(config.data.get("download"))
    )
    source.check_available()
    key = json.dumps([config.data, config.storage], sort_keys=True, default=str)
    dataset = last_loaded.get(key) if last_loaded is not None else None
    if dataset is None:
        # storage=memmap: mapped from the cache, decoded into it on the first run
        memmap = config.storage == "memmap"
        dataset = load_memmapped(source, data_name) if memmap else source.load()
        if last_loaded is not None:
            last_loaded.keep(key, dataset)
    model_builder.check_input(dataset.input_shape)

    scenario_name, scenario_params = component(config, "scenario")
    plan = SCENARIOS.get(scenario_name)(scenario_params).build(dataset, seeds["scenario"])
    check_augment_data(config, dataset)
    learner = strategy.build()
    problems = learner.problems_with(plan)
    if problems:
        raise IncompatibleError(
            f"strategy {strategy_name!r} cannot run scenario {scenario_name!r}: "
            + "; ".join(problems)
        )
    for plugin in plugins:
        problems = plugin.build().problems_with(plan, learner)
        if problems:
            raise IncompatibleError(
                f"plugin {plugin.name!r} cannot modify strategy {strategy_name!r} on scenario "
                f"{scenario_name!r}: " + "; ".join(problems)
            )
    return Prepared(
        config, dataset, plan, device, seeds, run_name(config), model_builder, strategy, plugins
    )


FINITE_CHECK_EVERY = 50  # updates between checks for a non-finite loss (each one host sync)


class RunDiverged(Exception):
    """The training loss became non-finite at update ``step``."""

    def __init__(self, step: int, loss: float) -> None:
        self.step, self.loss = step, loss
        super().__init__(f"training loss is {loss} at update {step}: the run diverged")


@dataclass
class Timing:
    train_s: float = 0.0
    eval_s: float = 0.0
    checkpoint_s: float = 0.0
    updates: int = 0
    samples_seen: int = 0
    phase_end_steps: list[int] = field(default_factory=list)


class Experiment:
    """Holds all run state (model, strategy, plugins, records, RNGs) for one prepared run."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        cfg = prepared.config
        self.device = prepared.device
        with self._torch_settings():
            seed_globals(prepared.seeds["model"])
            self.model = prepared.model.build(
                prepared.dataset.input_shape, prepared.plan.num_outputs
            ).to(self.device)
            if cfg.train.channels_last:
                self._to_channels_last()
            self.storage = resolve_storage(cfg, prepared.dataset, self.device)
            self.data = StreamData(
                prepared.dataset,
                prepared.plan,
                self.device,
                self.storage,
                channels_last=cfg.train.channels_last,
            )
            self.strategy: Strategy = prepared.strategy.build()
            self.plugins = PluginChain([c.build() for c in prepared.plugins])
            self.ctx = self._context()
            self.loop = self.ctx.loop
            try:
                self.strategy.setup(self.ctx)
                for plugin in self.plugins:
                    plugin.setup(self.ctx, self.strategy)
            except ConfigError as exc:  # bad input the model revealed, not a run failure
                raise SetupConfigError(exc.field, exc.value, exc.allowed) from None
            if cfg.train.compile:
                self.model.compile()  # in place: state_dict keys and strategies' references stay
        self.data_generator = torch.Generator().manual_seed(prepared.seeds["data_order"])
        self.log = RecordLog()
        self.evaluator = ContinualEvaluator(
            self.data,
            self.model,
            self.strategy.predict,
            self.log,
            subset_size=cfg.eval.subset_size,
            stratified=cfg.eval.subset_sampling == "stratified",
            batch_size=cfg.eval.batch_size,
            seed=prepared.seeds["eval_subsets"],
            autocast=self._eval_autocast,
        )
        self.schedule = EvalSchedule(cfg.eval)
        online = cfg.eval.online_accuracy
        # "auto": where the stream's generator drew each phase from a task mix (no boundaries)
        self.measures_online_accuracy = online is True or (
            online == "auto" and any(phase.mix is not None for phase in prepared.plan.phases)
        )
        self.timing = Timing()
        self.train_losses: list[torch.Tensor] = []
        self.run_hash = config_hash(cfg)
        self.position = Position()
        self._phase_start: dict[str, Any] | None = None
        # (batches, live epoch iterator) of the phase `restore` resumed inside
        self._resumed: tuple[Any, Iterator[Any]] | None = None
        self._finite_upto = 0
        self.observers = Observers()  # live trackers and progress logs (`run_job` sets them)
        self._losses_observed = 0  # training losses handed to the observers so far

    # -- setup ------------------------------------------------------------------------------
    def _context(self) -> StrategyContext:
        """The strategy's context, its loop plan complete before `Strategy.setup`."""
        prepared, t = self.prepared, self.prepared.config.train
        ctx = StrategyContext(
            model=self.model,
            data=self.data,
            plan=prepared.plan,
            device=self.device,
            optimizer=OptimizerSettings(t.optimizer, t.lr, t.momentum, t.weight_decay),
            batch_size=t.batch_size,
            generator=torch.Generator().manual_seed(prepared.seeds["strategy"]),
            plugins=self.plugins,
            stepper=Stepper(self.device, prepared.config.precision == "fp16", t.grad_clip),
            augment=BatchAugmenter(t.augment, prepared.dataset, prepared.seeds["augment"]),
        )
        # `training_parts` runs before setup and may read the context's plan (Strategy docs)
        self.strategy.ctx = ctx
        parts = tuple(
            tuple(self.strategy.training_parts(k)) for k in range(len(prepared.plan.phases))
        )
        counts = tuple(len(self._batches(p, torch.Generator())) for p in parts)  # no draws
        plan = LoopPlan(parts, counts, t.epochs, t.batch_size, t.drop_last)
        ctx.loop = LoopState(plan, self.data.output_mask)
        return ctx

    def _batches(self, parts: Sequence[PhasePart], generator: torch.Generator) -> Any:
        """The batch iterator of a phase: the strategy's, then each plugin's composition."""
        t = self.prepared.config.train
        batches = self.strategy.phase_batches(parts, t.batch_size, generator, t.drop_last)
        return self.plugins.phase_batches(parts, t.batch_size, generator, t.drop_last, batches)

    def _torch_settings(self) -> contextlib.AbstractContextManager[None]:
        cfg = self.prepared.config
        return torch_settings(cfg.deterministic, cfg.threads)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self._precision(self.prepared.config.precision)

    def _eval_autocast(self) -> contextlib.AbstractContextManager[Any]:
        cfg = self.prepared.config
        return self._precision(
            cfg.precision if cfg.eval.precision == "train" else cfg.eval.precision
        )

    def _precision(self, precision: str) -> contextlib.AbstractContextManager[Any]:
        if precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return contextlib.nullcontext()

    def _to_channels_last(self) -> None:
        if not any(p.dim() == 4 for p in self.model.parameters()):
            model = self.prepared.config.model["name"]
            raise SetupConfigError(
                "train.channels_last",
                True,
                f"false for model {model!r}: it has no convolution (no 4-d weights) whose memory "
                "format could change",
            )
        self.model.to(memory_format=torch.channels_last)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed_eval(self, evaluate: Callable[..., Any], *args: Any, observe: bool = True) -> Any:
        self._sync()
        start = time.perf_counter()
        result = evaluate(*args)
        self._sync()
        self.timing.eval_s += time.perf_counter() - start
        if observe and self.observers:
            self._observe_evaluation()
        return result

    def _observe_evaluation(self) -> None:
        """Hand the evaluation just made (and the losses before it) to the observers; its
        accuracies are read after `_timed_eval`'s synchronisation, so no extra wait."""
        self._observe_losses()
        kind, step, phase, current, tasks, correct, n = self.log.latest()
        # as `RecordLog.flush` makes them: whole counts, divided in double precision
        counts, sizes = correct.cpu().round().long().tolist(), n.cpu().tolist()
        accuracies = [c / s for c, s in zip(counts, sizes, strict=True)]
        loop = self.loop
        preupdate = kind == "subset" and phase > 0 and loop.phase_step == 0
        evaluation = Evaluation(
            kind, step, phase, current, tuple(tasks), tuple(accuracies), loop.seen_upto, preupdate
        )
        self.observers.notify("on_evaluation", evaluation)

    def _observe_losses(self) -> None:
        """Hand the training losses not yet observed to the observers (one transfer)."""
        new = self.train_losses[self._losses_observed :]
        if new:
            first = self._losses_observed + 1
            self._losses_observed = len(self.train_losses)
            self.observers.notify("on_train_losses", first, torch.stack(new).float().cpu().tolist())

    def phase_batches_counts(self) -> list[int]:
        """Batches per epoch of each phase (the loop plan's)."""
        return list(self.loop.plan.batches_per_epoch)

    def total_updates(self) -> int:
        """Updates the whole run will make (for progress bars)."""
        return self.loop.plan.total_updates

    def check_position(self, position: Position) -> None:
        """Raise ValueError unless ``position`` is a point this run's plan reaches."""
        counts, epochs = self.phase_batches_counts(), self.prepared.config.train.epochs
        p = position
        limit = len(counts) - 1 if p.in_phase else len(counts)
        if not 0 <= p.phase <= limit:
            raise ValueError(f"position {p.describe()}: the plan has {len(counts)} phase(s)")
        if not 0 <= p.seen_upto < self.prepared.plan.num_tasks:
            raise ValueError(f"position {p.describe()}: seen_upto {p.seen_upto} is not a task")
        before = epochs * sum(counts[: p.phase])
        if p.in_phase:
            n = counts[p.phase]
            ok = 0 <= p.epoch < epochs and 1 <= p.batch <= n
            ok = ok and p.phase_step == p.epoch * n + p.batch and p.step == before + p.phase_step
        else:
            ok = (p.epoch, p.batch, p.phase_step) == (0, 0, 0) and p.step == before
        if not ok:
            raise ValueError(
                f"position {p.describe()} (epoch {p.epoch}, batch {p.batch}, phase update "
                f"{p.phase_step}) does not fit the plan ({epochs} epoch(s) of {counts} batches)"
            )

    # -- the training loop ------------------------------------------------------------------
    def run(
        self,
        on_update: Callable[[int], None] | None = None,
        checkpointer: Checkpointer | None = None,
        should_stop: Callable[[], str | None] | None = None,
    ) -> None:
        """Train on every phase from ``self.position``, evaluating as the ``eval`` config says.

        Fills ``self.log``. ``checkpointer`` saves every N updates and at phase ends;
        ``should_stop`` is polled after every update and a non-None answer (the reason, e.g.
        ``"SIGTERM"``) checkpoints and raises `RunInterrupted`. A non-finite training loss raises
        `RunDiverged` (checked every `FINITE_CHECK_EVERY` updates and at phase ends).
        """
        hooks = _LoopHooks(on_update, checkpointer, should_stop)
        with self._torch_settings():
            self._restore_loop_state()
            if self.position == Position():
                self._evaluate_start()
            for k in range(self.position.phase, len(self.prepared.plan.phases)):
                self._run_phase(k, hooks)
        self.timing.updates = self.loop.step

    def _restore_loop_state(self) -> None:
        """The loop state at ``self.position`` (a fresh run, or a restored checkpoint)."""
        pos, loop = self.position, self.loop
        loop.phase, loop.epoch, loop.batch = pos.phase, pos.epoch, pos.batch
        loop.step, loop.phase_step, loop.seen_upto = pos.step, pos.phase_step, pos.seen_upto

    def _evaluate_start(self) -> None:
        """The step-0 point: every task phase 0 trains (SCoLe and joint phases hold several),
        so each has its untrained point and none looks "unseen" at step 0."""
        plan, ev = self.prepared.plan, self.prepared.config.eval
        first_task = plan.phases[0].current_task
        self.loop.seen_upto = self._seen_upto(0, self.loop.seen_upto)
        self._timed_eval(self.evaluator.evaluate_subsets, 0, 0, first_task, self.loop.seen_upto)
        if ev.track_forward:
            tasks = list(range(plan.num_tasks))
            self._timed_eval(self.evaluator.evaluate_full, "init", 0, 0, first_task, tasks)

    def _run_phase(self, k: int, hooks: _LoopHooks) -> None:
        batches, resumed = self._enter_phase(k, hooks)
        first_epoch = self.loop.epoch
        for epoch in range(first_epoch, self.prepared.config.train.epochs):
            if resumed is not None and epoch == first_epoch:
                self._run_epoch(epoch, resumed, self.loop.batch, hooks)
            else:
                self._run_epoch(epoch, batches.epoch(), 0, hooks)
        self._finish_phase(k, hooks)

    def _enter_phase(self, k: int, hooks: _LoopHooks) -> tuple[Any, Iterator[Any] | None]:
        """Start phase ``k`` (or continue it after `restore`): its batches and, when resuming
        inside it, the partly consumed epoch iterator."""
        loop, pos = self.loop, self.position
        loop.phase = k
        loop.seen_upto = self._seen_upto(k, loop.seen_upto)
        if k == pos.phase and pos.in_phase and self._resumed is not None:
            # `restore` already replayed this phase's start up to the saved batch
            batches, live = self._resumed
            self._resumed = None
            return batches, live
        loop.epoch = loop.batch = loop.phase_step = 0
        batches = self._batches(loop.plan.parts[k], self.data_generator)
        # any checkpoint inside a phase (every N updates, or on a stop signal, even with
        # `every=0`) needs the phase-start state, so keep it whenever there is a checkpointer
        keep = hooks.checkpointer is not None
        self._phase_start = cloned(self.state_dict()) if keep else None
        self._before_phase(k)
        self.observers.notify("on_phase_start", k, loop.step)
        if self.prepared.config.eval.preupdate_every_task and k > 0:
            current = self.prepared.plan.phases[k].current_task
            self._timed_eval(self.evaluator.evaluate_subsets, loop.step, k, current, loop.seen_upto)
        return batches, None

    def _before_phase(self, k: int) -> None:
        with self._training_time():
            self.strategy.before_phase(k)
            for plugin in self.plugins:
                plugin.before_phase(self.loop)

    @contextlib.contextmanager
    def _training_time(self) -> Iterator[None]:
        """Count a phase hook's work (a Fisher, a retraining, herding) as training time, so a
        method's budget includes what it computes between the updates."""
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.timing.train_s += time.perf_counter() - start

    def _run_epoch(
        self, epoch: int, epoch_batches: Iterator[Any], first_batch: int, hooks: _LoopHooks
    ) -> None:
        loop = self.loop
        loop.epoch = epoch
        n_batches = loop.plan.batches_per_epoch[loop.phase]
        last_epoch = epoch == loop.plan.epochs - 1
        clock = _TrainClock(self)
        # off-device data on a GPU: each batch's copy is issued while the one before trains
        for b, (index, task) in enumerate(self.data.prefetching(epoch_batches), start=first_batch):
            loop.batch = b + 1
            if epoch == 0 and self.measures_online_accuracy:
                with clock.paused():  # the batch before any update used it: online accuracy
                    current = self.prepared.plan.phases[loop.phase].current_task
                    args = (loop.step, loop.phase, current, index, task)
                    # records only: observers and trackers follow the test-set evaluations
                    self._timed_eval(self.evaluator.evaluate_incoming, *args, observe=False)
            self._update(index, task)
            self._after_update(last_epoch and b == n_batches - 1, clock, hooks)
        clock.stop()

    def _update(self, index: torch.Tensor, task: torch.Tensor) -> None:
        """One update: the batch (through the plugins), the strategy's `observe` around the
        plugins' update hooks, the counters."""
        loop = self.loop
        loop.step += 1
        loop.phase_step += 1
        batch = self.strategy.make_batch(index, task)  # augmented, then through the plugins
        train = self.prepared.config.train
        if train.scheduler != "none":
            apply_lr(self.strategy.optimizer, lr_factor(train, loop))
        for plugin in self.plugins:
            plugin.before_update(batch, loop)
        with self._autocast():
            loss = self.strategy.observe(batch)
        for plugin in self.plugins:
            plugin.after_update(batch, loss, loop)
        self.train_losses.append(loss.detach())
        self.timing.samples_seen += len(batch)

    def _after_update(self, last: bool, clock: _TrainClock, hooks: _LoopHooks) -> None:
        """What follows an update: continual evaluation when due, progress, the divergence
        check, checkpoints and stop requests."""
        loop = self.loop
        schedule = self.schedule
        if schedule.due(loop.phase, loop.step, loop.phase_step, loop.batch, last):
            with clock.paused():
                current = self.prepared.plan.phases[loop.phase].current_task
                accuracies = self._timed_eval(
                    self.evaluator.evaluate_subsets, loop.step, loop.phase, current, loop.seen_upto
                )
                schedule.evaluated(
                    loop.phase_step, accuracies if schedule.watches_results else None
                )
        if hooks.on_update is not None:
            hooks.on_update(loop.step)
        if loop.step % FINITE_CHECK_EVERY == 0:
            self._check_finite()
        stop = hooks.should_stop() if hooks.should_stop is not None else None
        checkpointer = hooks.checkpointer
        if (checkpointer is not None and checkpointer.due(loop.step)) or stop:
            here = Position(
                loop.phase,
                loop.epoch,
                loop.batch,
                loop.step,
                loop.phase_step,
                loop.seen_upto,
                True,
            )
            with clock.paused():
                if checkpointer is not None:
                    self._save(checkpointer, here)
            if stop:
                clock.stop()
                raise RunInterrupted(stop, here, checkpointer is not None)

    def _finish_phase(self, k: int, hooks: _LoopHooks) -> None:
        """After the last update of phase ``k``: divergence check, the strategy's and plugins'
        phase-end hooks, the boundary evaluation, records flushed, the phase-end checkpoint."""
        loop, plan, ev = self.loop, self.prepared.plan, self.prepared.config.eval
        self._check_finite()
        with self._training_time():
            self.strategy.after_phase(k)
            for plugin in self.plugins:
                plugin.after_phase(loop)
        if ev.boundary_full_eval:
            tasks = list(range(loop.seen_upto + 1))
            if ev.track_forward and loop.seen_upto + 1 < plan.num_tasks:
                tasks.append(loop.seen_upto + 1)
            current = plan.phases[k].current_task
            self._timed_eval(self.evaluator.evaluate_full, "full", loop.step, k, current, tasks)
        self.log.flush()
        self.timing.phase_end_steps.append(loop.step)
        self.timing.updates = loop.step
        if self.observers:  # before the checkpoint: a resume replays up to it (RunStart)
            self._observe_losses()
            self.observers.notify("on_phase_end", k, loop.step)
        checkpointer = hooks.checkpointer
        if checkpointer is not None and checkpointer.at_phase_end:
            here = Position(k + 1, 0, 0, loop.step, 0, loop.seen_upto, False)
            self._save(checkpointer, here)
        loop.epoch = loop.batch = loop.phase_step = 0

    def _seen_upto(self, phase: int, seen_upto: int) -> int:
        """The highest task id seen once phase ``phase`` starts (tasks are numbered by first
        appearance, so the seen tasks are ``0..seen_upto``)."""
        current = self.prepared.plan.phases[phase].current_task
        return max([seen_upto, current, *(p.task for p in self.loop.plan.parts[phase])])

    def _fast_forward(
        self, batches: Any, epoch: int, batch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Replay the data order (all random draws of batch iteration) up to ``batch`` of
        ``epoch``, without training; return the partly consumed iterator of that epoch."""
        for _ in range(epoch):
            for _ in batches.epoch():
                pass
        live = batches.epoch()
        for _ in range(batch):
            next(live)
        return live

    def _check_finite(self) -> None:
        """Raise `RunDiverged` at the first non-finite training loss (one host sync)."""
        new = self.train_losses[self._finite_upto :]
        if not new:
            return
        finite = torch.isfinite(torch.stack(new).float())
        if not bool(finite.all()):
            first = self._finite_upto + int((~finite).nonzero()[0, 0]) + 1
            raise RunDiverged(first, float(torch.stack(new)[first - self._finite_upto - 1]))
        self._finite_upto = len(self.train_losses)

    def _save(self, checkpointer: Checkpointer, position: Position) -> None:
        self._check_finite()  # never checkpoint a diverged state
        self._sync()
        start = time.perf_counter()
        phase_start = self._phase_start if position.in_phase else None
        checkpointer.save(make_checkpoint(self.run_hash, position, self.state_dict(), phase_start))
        self.timing.checkpoint_s += time.perf_counter() - start

    def restore(self, position: Position, checkpoint: dict[str, Any]) -> None:
        """Continue from a checkpoint (see `clbench.engine.checkpoint`) on the next `run`.

        Checks the config hash and that the position fits the plan (`ConfigError`,
        `ValueError`), and loads every state the resume will use, so a checkpoint that does not
        fit this run fails here, before the caller writes anything (ValueError).
        """
        if checkpoint["config_hash"] != self.run_hash:
            raise ConfigError(
                "checkpoint",
                checkpoint["config_hash"],
                f"a checkpoint of this run's config (hash {self.run_hash})",
            )
        self.check_position(position)
        losses = checkpoint["current"]["train_losses"]
        n_losses = 0 if losses is None else len(losses) if torch.is_tensor(losses) else -1
        if n_losses != position.step:
            raise ValueError(f"position {position.describe()}: the loss history does not match")
        if not position.in_phase:
            self._load(checkpoint["current"], "current")
            self.position = position
            return
        # Inside a phase: rebuild the phase start, replay the phase's set-up and data order up
        # to the saved batch, then take the saved state. Done here rather than in `run` so a
        # state that does not fit fails before the caller writes anything.
        k = position.phase
        self._load(checkpoint["phase_start"], "phase_start")
        # a copy: the live strategy may keep the loaded tensors and update them in place,
        # and this phase start goes into every later checkpoint of the phase
        self._phase_start = cloned(checkpoint["phase_start"])
        self.position = position
        self._restore_loop_state()
        self.loop.epoch = self.loop.batch = self.loop.phase_step = 0  # as at the phase start
        self.loop.seen_upto = self._seen_upto(k, position.seen_upto)
        batches = self._batches(self.loop.plan.parts[k], self.data_generator)
        self._before_phase(k)
        live = self._fast_forward(batches, position.epoch, position.batch)
        self._load(checkpoint["current"], "current")
        self._resumed = (batches, live)

    def _load(self, state: dict[str, Any], half: str) -> None:
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
            raise ValueError(f"its {half!r} state does not fit this run: {e!r}") from None

    def state_dict(self) -> dict[str, Any]:
        """All run state: model, strategy (optimizer, buffers), records, RNGs, counters.

        The ``current`` and ``phase_start`` halves of a checkpoint (`clbench.engine.checkpoint`).
        """
        return {
            "model": self.model.state_dict(),
            "strategy": self.strategy.state_dict(),
            "plugins": [plugin.state_dict() for plugin in self.plugins],
            "records": self.log.state_dict(),
            "rng": {
                "data_order": self.data_generator.get_state(),
                "strategy": self.ctx.generator.get_state(),
                "augment": self.ctx.augment.generator.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            },
            "timing": dataclasses.asdict(self.timing),
            "schedule": self.schedule.state_dict(),
            "stepper": self.ctx.stepper.state_dict(),
            "train_losses": torch.stack(self.train_losses).cpu() if self.train_losses else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["strategy"])
        plugin_states = state.get("plugins", [])  # checkpoints of runs without plugins
        if len(plugin_states) != len(self.plugins):
            n = len(self.plugins)
            raise ValueError(f"it holds {len(plugin_states)} plugin state(s), not {n}")
        for plugin, plugin_state in zip(self.plugins, plugin_states, strict=True):
            plugin.load_state_dict(plugin_state)
        self.log.load_state_dict(state["records"])
        self.data_generator.set_state(state["rng"]["data_order"])
        self.ctx.generator.set_state(state["rng"]["strategy"])
        if "augment" in state["rng"]:  # checkpoints from before train.augment: never drawn
            self.ctx.augment.generator.set_state(state["rng"]["augment"])
        if "stepper" in state:
            self.ctx.stepper.load_state_dict(state["stepper"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.timing = Timing(**state["timing"])
        if "schedule" in state:
            self.schedule.load_state_dict(state["schedule"])
        else:  # checkpoints from before the schedule kept a state (no eval.refine then)
            self.schedule.resume_at(self.position.phase, self.position.phase_step)
        losses = state["train_losses"]
        self.train_losses = [] if losses is None else list(losses.to(self.device).unbind())
        self._finite_upto = len(self.train_losses)
        self._losses_observed = len(self.train_losses)  # a resume hands these over at its start

    def budget_parts(self) -> tuple[list[torch.nn.Parameter], list[Any]]:
        """What the budget counts: the parameters of the networks the strategy declares it
        trains, and the memories it and the plugins declare (each counted once)."""
        params = {id(p): p for net in self.strategy.networks() for p in net.parameters()}
        memories = [self.strategy.memory(), *(p.memory() for p in self.plugins)]
        distinct = {id(m): m for m in memories if m is not None}
        return list(params.values()), list(distinct.values())

    def report(self) -> dict[str, Any]:
        """The strategy's report, with each plugin's under its name."""
        report = dict(self.strategy.report())
        for part, plugin in zip(self.prepared.plugins, self.plugins, strict=True):
            report[part.name] = plugin.report()
        return report

    def train_loss_frame(self) -> pd.DataFrame:
        losses = torch.stack(self.train_losses).float().cpu().tolist() if self.train_losses else []
        return pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses})


@dataclass
class _LoopHooks:
    """What the caller of `Experiment.run` asked to be called during the loop."""

    on_update: Callable[[int], None] | None
    checkpointer: Checkpointer | None
    should_stop: Callable[[], str | None] | None


class _TrainClock:
    """Training time of one epoch, without the evaluations and checkpoints inside it."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        experiment._sync()
        self.start: float | None = time.perf_counter()

    def stop(self) -> None:
        if self.start is not None:
            self.experiment._sync()
            self.experiment.timing.train_s += time.perf_counter() - self.start
            self.start = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start = time.perf_counter()
