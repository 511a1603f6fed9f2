"""Runs one experiment: validate everything, then train with continual evaluation.

`prepare` does all the checking (config, data files, scenario fit, strategy capabilities, model
weights) and loads the data without touching the output folder, so bad input fails before any work
and leaves nothing behind. `Experiment.run` then trains phase by phase, evaluating every seen task
after every ``eval.every`` updates, and returns the records and timing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from clbench.config import RunConfig, component, config_hash
from clbench.data.dataset import InMemoryDataset
from clbench.data.source import resolve_data_root
from clbench.data.stream import StreamData
from clbench.engine.checkpoint import Checkpointer, Position, cloned, make_checkpoint
from clbench.engine.evaluator import ContinualEvaluator
from clbench.engine.records import RecordLog
from clbench.engine.seeding import derived_seeds, seed_globals
from clbench.errors import ConfigError, IncompatibleError
from clbench.registry import DATASETS, MODELS, SCENARIOS, STRATEGIES
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategy import OptimizerSettings, Strategy, StrategyContext


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


@dataclass
class Prepared:
    """A validated experiment, ready to run."""

    config: RunConfig
    dataset: InMemoryDataset
    plan: ScenarioPlan
    device: torch.device
    seeds: dict[str, int]
    run_id: str


def run_name(config: RunConfig) -> str:
    """The run folder's name: ``output.name``, else strategy, scenario, data (its source's
    ``run_label``: the name, or e.g. an Avalanche benchmark's), seed and hash."""
    if config.output.name:
        return config.output.name
    data = DATASETS.get(config.data["name"]).run_label(config.data)  # e.g. the benchmark
    names = (config.strategy["name"], config.scenario["name"], data)
    return f"{'-'.join(names)}-s{config.seed}-{config_hash(config)}"


def prepare(config: RunConfig) -> Prepared:
    """Check everything that can be checked and load the data; never writes anything."""
    device = resolve_device(config.device)
    seeds = derived_seeds(config.seed)
    _, strategy_params = component(config, "strategy")
    strategy_cls = STRATEGIES.get(config.strategy["name"])
    model_name, model_params = component(config, "model")
    model_builder = MODELS.get(model_name)(model_params)
    model_builder.check()
    if strategy_cls.capabilities.needs_pretrained and not getattr(model_params, "pretrained", None):
        raise ConfigError(
            "model.pretrained", None, f"{strategy_cls.registered_name} needs pretrained weights"
        )

    data_name, data_params = component(config, "data")
    source = DATASETS.get(data_name)(
        data_params, resolve_data_root(config.data.get("root")), bool(config.data.get("download"))
    )
    source.check_available()
    dataset = source.load()
    model_builder.check_input(dataset.input_shape)

    scenario_name, scenario_params = component(config, "scenario")
    plan = SCENARIOS.get(scenario_name)(scenario_params).build(dataset, seeds["scenario"])
    problems = strategy_cls(strategy_params).problems_with(plan)
    if problems:
        raise IncompatibleError(
            f"strategy {strategy_cls.registered_name!r} cannot run scenario {scenario_name!r}: "
            + "; ".join(problems)
        )
    return Prepared(config, dataset, plan, device, seeds, run_name(config))


FINITE_CHECK_EVERY = 50  # updates between checks for a non-finite loss (each one host sync)


class RunDiverged(Exception):
    """The training loss became non-finite at update ``step``."""

    def __init__(self, step: int, loss: float) -> None:
        self.step, self.loss = step, loss
        super().__init__(f"training loss is {loss} at update {step}: the run diverged")


class RunInterrupted(Exception):
    """A stop was requested (signal); the run checkpointed at ``position`` when it could."""

    def __init__(self, reason: str, position: Position, checkpointed: bool) -> None:
        self.reason, self.position, self.checkpointed = reason, position, checkpointed
        self.run_dir: Any = None  # set by the job that owns the run folder
        super().__init__(f"{reason} at {position.describe()}")


@dataclass
class Timing:
    train_s: float = 0.0
    eval_s: float = 0.0
    checkpoint_s: float = 0.0
    updates: int = 0
    samples_seen: int = 0
    phase_end_steps: list[int] = field(default_factory=list)


class Experiment:
    """Holds all run state (model, strategy, evaluator records, RNGs) for one prepared run."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        cfg = prepared.config
        self.device = prepared.device
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        seed_globals(prepared.seeds["model"])
        model_name, model_params = component(cfg, "model")
        self.model = (
            MODELS.get(model_name)(model_params)
            .build(prepared.dataset.input_shape, prepared.plan.num_outputs)
            .to(self.device)
        )
        self.data = StreamData(prepared.dataset, prepared.plan, self.device)
        strategy_name, strategy_params = component(cfg, "strategy")
        self.strategy: Strategy = STRATEGIES.get(strategy_name)(strategy_params)
        t = cfg.train
        self.strategy.setup(
            StrategyContext(
                model=self.model,
                data=self.data,
                plan=prepared.plan,
                device=self.device,
                optimizer=OptimizerSettings(t.optimizer, t.lr, t.momentum, t.weight_decay),
                batch_size=t.batch_size,
                generator=torch.Generator().manual_seed(prepared.seeds["strategy"]),
            )
        )
        self.data_generator = torch.Generator().manual_seed(prepared.seeds["data_order"])
        self._batch_counts: list[int] | None = None
        # after setup: a strategy's training_parts may need its context (k-FPF's schedule)
        self.strategy.ctx.total_updates = self.total_updates()
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
            autocast=self._autocast,
        )
        self.timing = Timing()
        self.train_losses: list[torch.Tensor] = []
        self.run_hash = config_hash(cfg)
        self.position = Position()
        self._phase_start: dict[str, Any] | None = None
        # (parts, batches, live epoch iterator) of the phase `restore` resumed inside
        self._resumed: tuple[Any, Any, Iterator[Any]] | None = None
        self._finite_upto = 0

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.prepared.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed_eval(self, evaluate: Callable[..., None], *args: Any) -> None:
        self._sync()
        start = time.perf_counter()
        evaluate(*args)
        self._sync()
        self.timing.eval_s += time.perf_counter() - start

    def phase_batches_counts(self) -> list[int]:
        """Batches per epoch of each phase; draws no random numbers.

        Counted once, at construction: `Strategy.phase_batches` may keep the object it returns
        (view_batch reads its epoch from it), so calling it later, e.g. after `restore`
        replayed a phase, would swap the live batches for fresh ones."""
        if self._batch_counts is None:
            self._batch_counts = [
                len(self._phase_data(k)[1]) for k in range(len(self.prepared.plan.phases))
            ]
        return list(self._batch_counts)

    def total_updates(self) -> int:
        """Updates the whole run will make (for progress bars); draws no random numbers."""
        return self.prepared.config.train.epochs * sum(self.phase_batches_counts())

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
        cfg, plan = self.prepared.config, self.prepared.plan
        ev = cfg.eval
        evaluate_subsets, evaluate_full = (
            self.evaluator.evaluate_subsets,
            self.evaluator.evaluate_full,
        )
        pos = self.position
        step, seen_upto = pos.step, pos.seen_upto
        if pos == Position():
            # The step-0 point covers every task phase 0 trains (SCoLe and joint phases hold
            # several), so each has its untrained point and none looks "unseen" at step 0.
            first_task = plan.phases[0].current_task
            seen_upto = self._seen_upto(0, seen_upto)
            self._timed_eval(evaluate_subsets, 0, 0, first_task, seen_upto)
            if ev.track_forward:
                tasks = list(range(plan.num_tasks))
                self._timed_eval(evaluate_full, "init", 0, 0, first_task, tasks)
        # any checkpoint inside a phase (every N updates, or on a stop signal, even with
        # `every=0`) needs the phase-start state, so keep it whenever there is a checkpointer
        keep_phase_start = checkpointer is not None
        for k in range(pos.phase, len(plan.phases)):
            phase = plan.phases[k]
            current = phase.current_task
            if k == pos.phase and pos.in_phase and self._resumed is not None:
                # `restore` already replayed this phase's start up to the saved batch
                parts, batches, resumed_epoch = self._resumed
                self._resumed = None
                seen_upto = self._seen_upto(k, seen_upto, parts)
                first_epoch, phase_step = pos.epoch, pos.phase_step
            else:
                parts, batches = self._phase_data(k)
                seen_upto = self._seen_upto(k, seen_upto, parts)
                self._phase_start = cloned(self.state_dict()) if keep_phase_start else None
                self.strategy.before_phase(k)
                first_epoch, phase_step, resumed_epoch = 0, 0, None
                if ev.preupdate_every_task and k > 0:
                    self._timed_eval(evaluate_subsets, step, k, current, seen_upto)
            n_batches = len(batches)
            for epoch in range(first_epoch, cfg.train.epochs):
                if resumed_epoch is not None and epoch == first_epoch:
                    epoch_batches, first_batch = resumed_epoch, pos.batch
                else:
                    epoch_batches, first_batch = batches.epoch(), 0
                self._sync()
                start = time.perf_counter()
                for b, (index, task) in enumerate(epoch_batches, start=first_batch):
                    batch = self.data.make_batch(index, task)
                    with self._autocast():
                        loss = self.strategy.observe(batch)
                    self.train_losses.append(loss.detach())
                    step += 1
                    phase_step += 1
                    self.timing.samples_seen += len(batch)
                    counter = {"global": step, "per_phase": phase_step, "per_epoch": b + 1}
                    last = epoch == cfg.train.epochs - 1 and b == n_batches - 1
                    if counter[ev.counter] % ev.every == 0 or last:
                        self._sync()
                        self.timing.train_s += time.perf_counter() - start
                        self._timed_eval(evaluate_subsets, step, k, current, seen_upto)
                        start = time.perf_counter()
                    if on_update is not None:
                        on_update(step)
                    if step % FINITE_CHECK_EVERY == 0:
                        self._check_finite()
                    stop = should_stop() if should_stop is not None else None
                    if (checkpointer is not None and checkpointer.due(step)) or stop:
                        self._sync()
                        self.timing.train_s += time.perf_counter() - start
                        here = Position(k, epoch, b + 1, step, phase_step, seen_upto, True)
                        if checkpointer is not None:
                            self._save(checkpointer, here)
                        if stop:
                            raise RunInterrupted(stop, here, checkpointer is not None)
                        start = time.perf_counter()
                self._sync()
                self.timing.train_s += time.perf_counter() - start
            self._check_finite()
            self.strategy.after_phase(k)
            if ev.boundary_full_eval:
                tasks = list(range(seen_upto + 1))
                if ev.track_forward and seen_upto + 1 < plan.num_tasks:
                    tasks.append(seen_upto + 1)
                self._timed_eval(evaluate_full, "full", step, k, current, tasks)
            self.log.flush()
            self.timing.phase_end_steps.append(step)
            self.timing.updates = step
            if checkpointer is not None and checkpointer.at_phase_end:
                self._save(checkpointer, Position(k + 1, 0, 0, step, 0, seen_upto, False))
        self.timing.updates = step

    def _phase_data(self, phase: int) -> tuple[Sequence[PhasePart], Any]:
        """The parts phase ``phase`` trains on and the strategy's batch iterator over them."""
        t = self.prepared.config.train
        parts = self.strategy.training_parts(phase)
        return parts, self.strategy.phase_batches(
            parts, t.batch_size, self.data_generator, t.drop_last
        )

    def _seen_upto(
        self, phase: int, seen_upto: int, parts: Sequence[PhasePart] | None = None
    ) -> int:
        """The highest task id seen once phase ``phase`` starts (tasks are numbered by first
        appearance, so the seen tasks are ``0..seen_upto``)."""
        if parts is None:
            parts = self.strategy.training_parts(phase)
        current = self.prepared.plan.phases[phase].current_task
        return max([seen_upto, current, *(p.task for p in parts)])

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
        parts, batches = self._phase_data(k)
        self.strategy.before_phase(k)
        live = self._fast_forward(batches, position.epoch, position.batch)
        self._load(checkpoint["current"], "current")
        self._resumed = (parts, batches, live)
        self.position = position

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
            "records": self.log.state_dict(),
            "rng": {
                "data_order": self.data_generator.get_state(),
                "strategy": self.strategy.ctx.generator.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            },
            "timing": dataclasses.asdict(self.timing),
            "train_losses": torch.stack(self.train_losses).cpu() if self.train_losses else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["strategy"])
        self.log.load_state_dict(state["records"])
        self.data_generator.set_state(state["rng"]["data_order"])
        self.strategy.ctx.generator.set_state(state["rng"]["strategy"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.timing = Timing(**state["timing"])
        losses = state["train_losses"]
        self.train_losses = [] if losses is None else list(losses.to(self.device).unbind())
        self._finite_upto = len(self.train_losses)

    def train_loss_frame(self) -> pd.DataFrame:

        losses = torch.stack(self.train_losses).float().cpu().tolist() if self.train_losses else []
        return pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses})
