"""``clbench sweep SUITE.yaml``: expand, check, (pretrain,) run, select (GTEP), summarise, report.

Everything that can be wrong with the suite is found before the first run starts (exit code 2,
nothing written): the suite schema, every expanded config, each distinct config's data and
strategy/scenario fit, the report format. Then runs go to the executor; finished run folders are
skipped, so re-running the same command resumes a sweep. Exit code 1 when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.reporting.command import FORMAT_BY_SUFFIX

if TYPE_CHECKING:
    from clbench.sweeps.preflight import Checked
    from clbench.sweeps.suite import GtepSelect, LoadedSuite, PlannedRun, SuiteReport

EXIT_FAILED_RUNS = 1
EXIT_INTERRUPTED = 130


@dataclass
class SweepOptions:
    """What ``clbench sweep`` takes besides the suite, by the options' names (``--jobs`` is
    ``jobs``); `clbench.sweep(...)` builds one from its keywords."""

    suite: str
    grid: list[str] = field(default_factory=list)  # "KEY=V1,V2" axes added or replaced
    seeds: str | None = None  # "0-4" or "0,2,5"
    jobs: int = 1
    executor: str = "local"  # local | ray | slurm
    address: str | None = None
    gpus_per_run: float = 0.0
    slurm_partition: str | None = None
    slurm_time: int | None = None
    slurm_array_parallelism: int | None = None
    slurm_folder: str | None = None
    slurm_option: list[str] = field(default_factory=list)
    dry_run: bool = False
    report: str | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> SweepOptions:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


@dataclass
class SweepOutcome:
    """How a sweep ended: its exit code and the folders of the runs it reports on."""

    code: int  # 0, EXIT_FAILED_RUNS, or 128 + signal
    root: Path  # the suite's results root
    run_paths: list[Path]  # the planned runs (the evaluation runs under a GTEP protocol)


DEFAULT_SLURM_TIME_MIN = 60  # clbench.sweeps.slurm.DEFAULT_TIME_MIN (not imported: submitit)
SLURM_FLAGS = ("slurm_partition", "slurm_time", "slurm_array_parallelism", "slurm_folder")


class SweepTerminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP to the sweep, raised like Ctrl-C so one path stops it: running runs are
    told to checkpoint, pending ones are cancelled, sweep.json says so."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the sweep runs, SIGTERM and SIGHUP raise `SweepTerminated` once (later ones are
    ignored: the sweep is already stopping and waits for its runs to checkpoint)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise SweepTerminated(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_command(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="run a suite: grids x seeds x entries on a process pool, Ray or SLURM",
        description="Expand SUITE (YAML: base config, overrides, grid, axes, entries, seeds, "
        "optional pretrain steps and GTEP protocol) into validated runs and run them. Finished "
        "runs are skipped, so the same command resumes an interrupted sweep.",
    )
    sweep.add_argument("suite", help="suite YAML file (see configs/sweeps/, configs/leaderboard/)")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="add a grid axis or replace one (repeatable), e.g. --grid train.lr=0.01,0.05",
    )
    sweep.add_argument("--seeds", help='seeds replacing the suite\'s: "0-4" or "0,2,5"')
    sweep.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    sweep.add_argument(
        "--executor",
        choices=["local", "ray", "slurm"],
        default="local",
        help="process pool, Ray tasks or SLURM array jobs (submitit)",
    )
    sweep.add_argument("--address", help="Ray cluster address (default: start a local cluster)")
    sweep.add_argument(
        "--gpus-per-run",
        type=float,
        default=0.0,
        metavar="G",
        help="GPUs each run gets (default 0: CPU runs); a fraction below 1 shares a GPU "
        "(0.5: 2 runs per GPU), above 1 a whole number",
    )
    slurm = sweep.add_argument_group("SLURM (--executor slurm)")
    slurm.add_argument("--slurm-partition", metavar="NAME", help="partition (default: SLURM's)")
    slurm.add_argument(
        "--slurm-time",
        type=int,
        metavar="MIN",
        help=f"time limit per run in minutes (default {DEFAULT_SLURM_TIME_MIN}); a run that "
        "reaches it checkpoints and is requeued",
    )
    slurm.add_argument(
        "--slurm-array-parallelism",
        type=int,
        metavar="N",
        help="runs of the array at once (default: submitit's, 256)",
    )
    slurm.add_argument(
        "--slurm-folder",
        metavar="DIR",
        help="submitit's job files and logs (default: <results root>/slurm)",
    )
    slurm.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a further #SBATCH option (repeatable), e.g. --slurm-option account=myproject",
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="expand and check, list the runs, run nothing"
    )
    sweep.add_argument(
        "--report", metavar="FILE", help="afterwards write a report (.md, .tex, .csv or .html)"
    )
    sweep.set_defaults(handler=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """The ``clbench sweep`` handler."""
    return execute_sweep(SweepOptions.from_namespace(args)).code


def execute_sweep(args: SweepOptions) -> SweepOutcome:
    """Check, then run (or with ``dry_run`` list) the suite's runs; see the module docstring."""
    from clbench.errors import ConfigError
    from clbench.sweeps import gtep, preflight
    from clbench.sweeps.state import SweepLock
    from clbench.sweeps.suite import expand, load_suite, parse_grid_option, parse_seeds

    if args.jobs < 1:
        raise ConfigError("--jobs", args.jobs, "an integer >= 1")
    if args.address and args.executor != "ray":
        raise ConfigError("--address", args.address, "only with --executor ray")
    if args.report and Path(args.report).suffix.lower() not in FORMAT_BY_SUFFIX:
        raise ConfigError("--report", args.report, "a file ending in .md, .tex, .csv or .html")
    devices = _check_execution_options(args)

    loaded = load_suite(args.suite)
    grid = dict(parse_grid_option(option) for option in args.grid)
    seeds = parse_seeds(args.seeds, "--seeds") if args.seeds else None
    expansion = expand(loaded, grid, seeds)
    _check_report_keys(loaded.suite.report, expansion.runs)
    protocol = loaded.suite.protocol
    if protocol is not None:
        gtep.check_metric(protocol.select)
    preflight.validate_pretrain_steps(loaded)
    checked = preflight.check_runs(loaded, expansion.runs, preflight.pending_backbones(loaded))
    planned = [loaded.root / run.run_id for run in expansion.runs]
    if args.dry_run:
        _print_plan(expansion.runs, checked, loaded)
        return SweepOutcome(0, loaded.root, planned)

    # one sweep per results root at a time: a second one would start the same runs again
    with SweepLock(loaded.root, loaded.suite.name), _terminate_as_interrupt():
        missing = preflight.run_pretrain_steps(loaded)
        deferred, checked.deferred = checked.deferred, []
        checked = preflight.check_runs(loaded, deferred, set(), missing, checked)
        runnable = {id(run) for run in checked.runnable}
        runs = [run for run in expansion.runs if id(run) in runnable]

        sweep = _Sweep(loaded, args, devices)
        try:
            with sweep.executor:
                if protocol is None:
                    sweep.execute(runs, loaded.suite.name)
                    reported = runs
                else:
                    reported = _run_gtep(sweep, runs, protocol.select)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, SweepTerminated) else signal.SIGINT
            name = signal.Signals(signum).name
            sweep.state.cancel_pending(name)
            counts = sweep.state.counts()
            print(
                f"clbench: sweep interrupted by {name}: {counts.get('interrupted', 0)} running "
                f"run(s) checkpointed where they could, {counts.get('cancelled', 0)} not started; "
                f"resume with: {_resume_command(args)}",
                file=sys.stderr,
            )
            sweep.print_summary(checked.skip_messages())
            return SweepOutcome(128 + int(signum), loaded.root, planned)
    sweep.print_summary(checked.skip_messages())
    paths = [loaded.root / run.run_id for run in reported]
    if args.report:
        _write_report(args.report, paths, loaded.suite.report)
    return SweepOutcome(EXIT_FAILED_RUNS if sweep.state.failed() else 0, loaded.root, paths)


def _check_execution_options(args: SweepOptions) -> list[str]:
    """Check ``--gpus-per-run`` and the SLURM options before anything else (exit 2, nothing
    written); the local pool's GPU slots (`clbench.sweeps.devices.gpu_slots`), else []."""
    from clbench.errors import ConfigError
    from clbench.sweeps.devices import check_gpus_per_run, local_gpu_slots

    executor = args.executor
    gpus = check_gpus_per_run(args.gpus_per_run, executor)
    for flag in SLURM_FLAGS:
        value = getattr(args, flag, None)
        if value is not None and executor != "slurm":
            raise ConfigError(_flag(flag), value, "only with --executor slurm")
    if args.slurm_option and executor != "slurm":
        raise ConfigError("--slurm-option", args.slurm_option[0], "only with --executor slurm")
    if executor == "slurm":
        for flag in ("slurm_time", "slurm_array_parallelism"):
            value = getattr(args, flag)
            if value is not None and value < 1:
                raise ConfigError(_flag(flag), value, "an integer >= 1")
        if args.jobs != 1:
            raise ConfigError(
                "--jobs",
                args.jobs,
                "1 with --executor slurm (how many runs run at once is --slurm-array-parallelism)",
            )
        _slurm_options_mapping(args.slurm_option)
        slurm = _slurm_module()
        slurm.check_slurm_available(slurm.slurm_cluster())
    # the local pool, and a Ray cluster this sweep starts, use this machine's GPUs
    if gpus and (executor == "local" or (executor == "ray" and not args.address)):
        slots = local_gpu_slots(gpus)
        return slots if executor == "local" else []
    return []


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _slurm_options_mapping(options: list[str]) -> dict[str, str]:
    """``--slurm-option KEY=VALUE`` as submitit's ``slurm_additional_parameters``."""
    from clbench.errors import ConfigError

    mapping = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not value.strip():
            raise ConfigError(
                "--slurm-option",
                option,
                "KEY=VALUE, an sbatch option without its --, e.g. qos=high",
            )
        mapping[key.replace("-", "_")] = value.strip()
    return mapping


def _slurm_module() -> Any:
    """`clbench.sweeps.slurm`, or `ConfigError` when submitit (an optional extra) is missing."""
    from clbench.errors import ConfigError

    try:
        from clbench.sweeps import slurm
    except ImportError as exc:
        if not (exc.name or "").startswith("submitit"):
            raise
        raise ConfigError(
            "--executor", "slurm", 'local or ray (or install submitit: pip install -e ".[slurm]")'
        ) from None
    return slurm


def _resume_command(args: SweepOptions) -> str:
    """The command that continues this sweep (finished runs are skipped, interrupted resumed)."""
    words = ["clbench", "sweep", args.suite]
    for option in args.grid:
        words += ["--grid", option]
    for flag in ("seeds", "address", "report", *SLURM_FLAGS):
        if getattr(args, flag, None) is not None:
            words += [_flag(flag), str(getattr(args, flag))]
    for option in getattr(args, "slurm_option", None) or ():
        words += ["--slurm-option", option]
    if args.jobs != 1:
        words += ["--jobs", str(args.jobs)]
    if args.executor != "local":
        words += ["--executor", args.executor]
    if getattr(args, "gpus_per_run", 0):
        words += ["--gpus-per-run", f"{args.gpus_per_run:g}"]
    return shlex.join(words)


def _run_gtep(sweep: _Sweep, runs: list[PlannedRun], select: GtepSelect) -> list[PlannedRun]:
    """Phase 1 on every grid point, selection, phase 2 on the chosen points."""
    from clbench.engine.run_dir import write_json
    from clbench.sweeps import gtep

    tuning = [r for r in runs if r.phase == "tuning"]
    sweep.execute(tuning, f"{sweep.loaded.suite.name} (tuning)")
    selection = gtep.select_points(tuning, sweep.loaded.root, select)
    evaluation = gtep.chosen_runs(selection, [r for r in runs if r.phase == "evaluation"])
    selection["evaluation_run_ids"] = [r.run_id for r in evaluation]
    write_json(
        sweep.loaded.root / gtep.SELECTION_FILE, {"suite": sweep.loaded.suite.name, **selection}
    )
    print(gtep.format_selection(selection))
    print(f"selection written to {sweep.loaded.root / gtep.SELECTION_FILE}")
    sweep.execute(evaluation, f"{sweep.loaded.suite.name} (evaluation)")
    return evaluation


class _Sweep:
    """Runs batches of planned runs on the chosen executor, keeping ``sweep.json`` current."""

    def __init__(
        self, loaded: LoadedSuite, args: SweepOptions, gpu_slots: list[str] | None = None
    ) -> None:
        from clbench.sweeps.executors import LocalExecutor, RayExecutor
        from clbench.sweeps.state import SweepState

        self.loaded = loaded
        threads = loaded.suite.threads
        gpus = float(getattr(args, "gpus_per_run", 0.0) or 0.0)
        self.executor: Any
        if args.executor == "ray":
            self.executor = RayExecutor(args.jobs, threads, args.address, gpus)
        elif args.executor == "slurm":
            self.executor = _slurm_executor(loaded, args, int(gpus))
        else:
            self.executor = LocalExecutor(args.jobs, threads, gpu_slots or (), gpus)
        keys = ("grid", "seeds", "jobs", "executor", "address", "gpus_per_run")
        options = {k: getattr(args, k, None) for k in keys}
        if args.executor == "slurm":
            options.update({k: getattr(args, k) for k in (*SLURM_FLAGS, "slurm_option")})
        self.state = SweepState(loaded, options)

    def execute(self, runs: list[PlannedRun], label: str) -> None:
        from clbench.engine.run_dir import RunDir
        from clbench.sweeps.executors import RunResult, RunTask
        from clbench.sweeps.progress import SweepProgress

        done = [r for r in runs if RunDir(self.loaded.root / r.run_id).finished]
        done_ids = {r.run_id for r in done}
        todo = [r for r in runs if r.run_id not in done_ids]
        self.state.add(done, "skipped")
        self.state.add(todo)
        if done:
            print(f"{label}: skipped {len(done_ids)} finished run(s)")
        tasks, queued = [], set()
        for run in todo:
            if run.run_id not in queued and self.state.rows[run.run_id]["status"] == "pending":
                queued.add(run.run_id)
                tasks.append(
                    RunTask(run.run_id, run.config.model_dump(mode="json"), str(Path.cwd()))
                )
        if not tasks:
            return
        print(f"{label}: {len(tasks)} run(s) on {self.executor.describe()}")
        with SweepProgress(len(tasks), label) as progress:

            def on_result(result: RunResult) -> None:
                self.state.record(result)
                progress.advance(result)

            self.executor.run(tasks, on_result)

    def print_summary(self, skip_messages: list[str]) -> None:
        counts = self.state.counts()
        total = sum(counts.values())
        parts = [
            f"{counts.get('finished', 0)} finished",
            f"{counts.get('skipped', 0)} skipped (finished before)",
            f"{counts.get('failed', 0)} failed",
            f"{counts.get('diverged', 0)} diverged",
        ]
        for other in ("interrupted", "cancelled"):
            if counts.get(other):
                parts.append(f"{counts[other]} {other}")
        for message in skip_messages:
            print(message)
        print(f"sweep {self.loaded.suite.name}: {total} run(s): " + ", ".join(parts))
        failed = self.state.failed()
        if failed:
            print("failed runs (tracebacks in sweep.log and each run's status.json):")
            for row in failed:
                print(f"  {row['run_id']}: {row.get('error', '?')}")
        print(f"results: {self.loaded.root} (state: {self.state.path})")


def _slurm_executor(loaded: LoadedSuite, args: SweepOptions, gpus: int) -> Any:
    """The SLURM executor of this sweep: its resources from the options, logs under the root."""
    slurm = _slurm_module()
    folder = Path(args.slurm_folder) if args.slurm_folder else loaded.root / "slurm"
    options = slurm.SlurmOptions(
        folder=folder.absolute(),  # the jobs may start in another directory
        time_min=args.slurm_time or DEFAULT_SLURM_TIME_MIN,
        partition=args.slurm_partition,
        gpus_per_run=gpus,
        array_parallelism=args.slurm_array_parallelism,
        cpus_per_task=loaded.suite.threads,
        additional=_slurm_options_mapping(args.slurm_option),
        cluster=slurm.slurm_cluster(),
        job_name=f"clbench-{loaded.suite.name}",
    )
    return slurm.SlurmExecutor(options)


def _print_plan(runs: list[PlannedRun], checked: Checked, loaded: LoadedSuite) -> None:
    from clbench.engine.run_dir import RunDir

    deferred = {id(r) for r in checked.deferred}
    runnable = {id(r) for r in checked.runnable}
    counts = {"finished": 0, "to run": 0, "after pretrain": 0}
    counted: set[tuple[str | None, str]] = set()  # a config listed by two entries runs once
    for step in loaded.suite.pretrain:
        state = "exists" if Path(step.out).exists() else "will be made first"
        print(f"pretrain -> {step.out}: {state}")
    for run in runs:
        if id(run) in deferred:
            state = "after pretrain"
        elif id(run) not in runnable:
            continue
        elif RunDir(loaded.root / run.run_id).finished:
            state = "finished"
        else:
            state = "to run"
        if (run.phase, run.run_id) not in counted:
            counted.add((run.phase, run.run_id))
            counts[state] += 1
        phase = f"{run.phase:<10} " if run.phase else ""
        print(f"{phase}{run.entry:<14} seed {run.seed}  {run.run_id}  [{state}]  {run.point_label}")
    for message in checked.skip_messages():
        print(message)
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    print(f"dry run: {sum(counts.values())} run(s) into {loaded.root}: {summary or 'none'}")
    if loaded.suite.protocol:
        candidates = [r for r in runs if r.phase == "evaluation"]
        first_points = {}
        for run in candidates:
            first_points.setdefault(run.entry, run.point)
        chosen = sum(1 for r in candidates if r.point == first_points[r.entry])
        print(
            f"GTEP: of the {len(candidates)} evaluation runs listed, only each entry's chosen "
            f"point runs ({chosen} run(s)), after the tuning phase"
        )


def _check_report_keys(options: SuiteReport, runs: list[PlannedRun]) -> None:
    """Report keys must name config keys of the runs (or tags, seed): checked before any run."""
    from clbench.errors import ConfigError
    from clbench.results.reader import flat_config

    known = {"seed"}
    for run in runs:
        known.update(flat_config(run.config.model_dump(mode="json")))
    for option in ("split_by", "group_by"):
        for key in getattr(options, option) or ():
            if key not in known and not key.startswith("tags."):
                raise ConfigError(
                    f"suite report.{option}",
                    key,
                    "a config key of the runs, e.g. data.name, or tags.<name> or seed",
                )
    if options.metrics and options.sort_by and options.sort_by not in options.metrics:
        raise ConfigError("suite report.sort_by", options.sort_by, options.metrics)
    if options.treatment:
        from clbench.reporting.treatment import check_treatment

        check_treatment(
            options.treatment,
            [run.config.model_dump(mode="json") for run in runs],
            option="suite report.treatment",
            row_split=options.split_by or (),
            split_option="suite report.split_by",
        )


def _write_report(path: str, run_paths: list[Path], options: SuiteReport) -> None:
    """Render this sweep's run folders; a report that cannot be made never hides the runs."""
    from clbench.engine.run_dir import write_text
    from clbench.errors import ClbenchError
    from clbench.reporting import render_report

    existing = [p for p in run_paths if p.is_dir()]
    try:
        report = render_report(
            existing, fmt=FORMAT_BY_SUFFIX[Path(path).suffix.lower()], **options.model_dump()
        )
    except ClbenchError as exc:
        print(f"report: {path} not written: {exc}")
        return
    write_text(Path(path), report.text)
    print(f"report: {path}")
    if report.skipped:
        print(f"report: {report.skipped}")
