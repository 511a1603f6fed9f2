"""GPU throughput: ResNet-18 (CIFAR-shaped) and ViT-B/16 (224 px) through clbench vs bare PyTorch.

Usage::

    python benchmarks/gpu_throughput.py [--quick] [--device cuda|cuda:N|cpu]
        [--models resnet18,vit] [--precisions fp32,bf16,fp16] [--channels-last off,on]
        [--compile off|on|both | --no-compile] [--batch N] [--classes N] [--iters N]
        [--warmup N] [--repeats N] [--eval-samples N] [--eval-batch N] [--eval-reps N]
        [--resnet-nf N] [--threads N] [--max-wait S]

Written for the first GPU session (issue 19): by default 18 configurations (12 of ResNet-18,
6 of ViT-B/16), each printing how long it took; ``--compile off`` / ``--compile on`` split the run.
``--quick`` is a CPU smoke run (about 20 s on one thread) with tiny stand-ins of the models; on a
CPU it leaves ``torch.compile`` out unless ``--compile`` is given (each compiled graph takes ~30 s
there). Its figures are no performance claims.

Models, built by clbench's model builders:

- ``resnet18``: clbench's ``slim_resnet18`` (GEM / stability-gap ResNet-18, ``nf`` 20 by default,
  ``--resnet-nf 64`` for the full-width CIFAR ResNet-18) on 3x32x32 images, batch 128;
- ``timm_resnet18``: the ``timm`` builder with ``arch=resnet18`` (ImageNet stem) on 3x32x32;
- ``vit``: the ``timm`` builder with ``arch=vit_base_patch16_224``, random init (no download), on
  3x224x224 images, batch 64.

``--quick`` stand-ins, batch 8 on 3x32x32: ``slim_resnet18`` with ``nf=4``, timm ``resnet10t``,
``vit_tiny_patch16_224`` at 32 px (4 patches).

Data: random uint8 images of that shape from a benchmark-local data source (``bench_images``,
registered below: clbench's ``synthetic`` source makes single-channel images only), with
``--classes`` classes (default 100) in one class-incremental task, kept on the device
(``storage=device``).

For every model and configuration (precision fp32 / bf16 / fp16 autocast, fp16 with a
``GradScaler``; channels_last off/on for the conv nets; ``torch.compile`` off/on) it measures:

(a) training images/s: a whole ``Experiment.run()`` (strategy ``naive``: cross-entropy, SGD with
    momentum; evaluation switched off after the step-0 pass), timed over updates
    ``warmup+1 .. warmup+iters`` with a device sync at both ends, vs a bare PyTorch loop doing the
    same updates: same architecture and initial weights, batch, optimizer and precision, the same
    uint8 images on the device, gathered by an on-device permutation and normalised with one
    multiply-add per batch (as clbench does), channels_last inputs when the model is
    channels_last, forward and loss under autocast, backward and step outside it. What clbench
    does differently is what the ratio measures: it draws the batch order on the host and copies
    each batch's indices to the device, feeds contiguous (NCHW) inputs to a channels_last model,
    runs the strategy's whole ``observe`` (backward and step included) under autocast, keeps the
    test split and the evaluator's float subset resident, and checks the loss for NaN every 50
    updates. Medians of ``--repeats`` interleaved rounds, each on fresh models.
(b) continual-evaluation images/s: one ``ContinualEvaluator.evaluate_subsets`` pass over
    ``--eval-samples`` test images vs a bare ``model.eval(); with torch.inference_mode():
    model(x)`` over the same materialised tensor (converted once to the model's memory format) in
    the same batches and autocast; the model of the last clbench round for both, medians of
    ``--eval-reps`` interleaved passes after one warm-up pass each.

plus the peak device memory of each (``torch.cuda.max_memory_allocated``, reset before each; on a
CPU the growth of the process's peak RSS during the measurement, 0 once an earlier one peaked
higher). Ratios are clbench images/s / bare images/s (1.00: as fast, below 1: clbench slower).
Combinations the device cannot run (fp16 where ``clbench.engine.recipe.fp16_problem`` gives a
reason, bf16 on GPUs without it, a failing ``torch.compile``, out of memory) print a note and a
skipped row. The script exits 0 whatever the outcome: it is a report.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from machine_load import QUIET, ForeignLoad, say, stopwatch, sync
from pydantic import Field

from clbench.config import build_config
from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats
from clbench.engine.recipe import fp16_problem
from clbench.engine.runner import Experiment, Prepared, RunInterrupted, prepare
from clbench.engine.seeding import seed_globals
from clbench.errors import ConfigError
from clbench.registry import DATASETS

PRECISIONS = ("fp32", "bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MIB = 2**20


# --------------------------------------------------------------------------- data


@DATASETS.register("bench_images")
class BenchImages(DataSource):
    """Random uint8 images ``[N, channels, image_size, image_size]``, balanced classes."""

    summary: ClassVar[str] = "Random uint8 images of any shape (benchmarks/gpu_throughput.py)"

    class Config(DataSource.Config):
        num_classes: int = Field(10, ge=2)
        channels: int = Field(3, ge=1)
        image_size: int = Field(32, ge=2)
        train_per_class: int = Field(1, ge=1)
        test_per_class: int = Field(1, ge=1)
        seed: int = 0

    _cache: ClassVar[dict[str, InMemoryDataset]] = {}  # one dataset per config: built once

    def load(self) -> InMemoryDataset:
        cfg = self.config
        key = cfg.model_dump_json()
        if key not in self._cache:
            g = torch.Generator().manual_seed(cfg.seed)
            shape = (cfg.channels, cfg.image_size, cfg.image_size)

            def draw(per_class: int) -> Split:
                y = torch.arange(cfg.num_classes).repeat_interleave(per_class)
                x = torch.randint(0, 256, (len(y), *shape), dtype=torch.uint8, generator=g)
                return Split(x, y)

            train, test = draw(cfg.train_per_class), draw(cfg.test_per_class)
            mean, std = channel_stats(train.x)
            names = tuple(str(k) for k in range(cfg.num_classes))
            self._cache.clear()  # keep one (large) dataset alive at a time
            self._cache[key] = InMemoryDataset("bench_images", train, test, names, mean, std)
        return self._cache[key]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    key: str  # row label
    model: list[str]  # clbench `model.*` overrides
    description: str
    image_size: int
    batch: int
    eval_batch: int
    conv: bool  # channels_last applies


def model_specs(args: argparse.Namespace) -> dict[str, ModelSpec]:
    if args.quick:
        return {
            "resnet18": ModelSpec(
                "resnet18",
                ["model.name=slim_resnet18", "model.nf=4"],
                "stand-in: clbench slim_resnet18, nf=4, 3x32x32",
                32,
                8,
                20,
                True,
            ),
            "timm_resnet18": ModelSpec(
                "timm_resnet18",
                ["model.name=timm", "model.arch=resnet10t"],
                "stand-in: clbench timm builder, arch=resnet10t, 3x32x32",
                32,
                8,
                20,
                True,
            ),
            "vit": ModelSpec(
                "vit",
                ["model.name=timm", "model.arch=vit_tiny_patch16_224"],
                "stand-in: clbench timm builder, arch=vit_tiny_patch16_224 at 32 px (4 patches), "
                "random init",
                32,
                8,
                20,
                False,
            ),
        }
    nf = args.resnet_nf
    return {
        "resnet18": ModelSpec(
            "resnet18",
            ["model.name=slim_resnet18", f"model.nf={nf}"],
            f"clbench slim_resnet18 (GEM / stability-gap ResNet-18), nf={nf}, 3x32x32",
            32,
            128,
            1000,
            True,
        ),
        "timm_resnet18": ModelSpec(
            "timm_resnet18",
            ["model.name=timm", "model.arch=resnet18"],
            "clbench timm builder, arch=resnet18 (ImageNet stem), random init, 3x32x32",
            32,
            128,
            1000,
            True,
        ),
        "vit": ModelSpec(
            "vit",
            ["model.name=timm", "model.arch=vit_base_patch16_224"],
            "clbench timm builder, arch=vit_base_patch16_224 (ViT-B/16), random init, 3x224x224",
            224,
            64,
            250,
            False,
        ),
    }


def on_off(flag: bool) -> str:
    return "on" if flag else "off"


@dataclass(frozen=True)
class Combo:
    precision: str
    channels_last: bool
    compile: bool

    def text(self) -> list[str]:
        return [self.precision, on_off(self.channels_last), on_off(self.compile)]


# --------------------------------------------------------------------------- timing helpers


def amp(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision in AMP_DTYPES:
        return torch.autocast(device.type, dtype=AMP_DTYPES[precision])
    return contextlib.nullcontext()


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class PeakMemory:
    """Peak device memory during a block (CUDA), or growth of the process's peak RSS (CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib: float | None = None

    def __enter__(self) -> PeakMemory:
        free(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / MIB
        else:  # Linux: ru_maxrss in KiB
            self.mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.rss_kib) / 1024


class Window:
    """Times updates ``start+1 .. stop`` of a training loop (device sync at both ends)."""

    def __init__(self, device: torch.device, start: int, stop: int) -> None:
        self.device, self.start, self.stop = device, start, stop
        self.t0: float | None = None
        self.seconds: float | None = None

    def __call__(self, step: int) -> None:
        if step == self.start:
            sync(self.device)
            self.t0 = time.perf_counter()
        elif step == self.stop and self.t0 is not None:
            sync(self.device)
            self.seconds = time.perf_counter() - self.t0

    def done(self) -> str | None:
        return "timed window done" if self.seconds is not None else None


# --------------------------------------------------------------------------- the two systems


def overrides(args: argparse.Namespace, spec: ModelSpec, combo: Combo) -> list[str]:
    batch = args.batch or spec.batch
    per_epoch = batches_per_epoch(batch, args.classes, args.warmup + args.iters)
    eval_per_class = max(1, args.eval_samples // args.classes)
    return [
        "data.name=bench_images",
        f"data.num_classes={args.classes}",
        f"data.image_size={spec.image_size}",
        f"data.train_per_class={batch * per_epoch // args.classes}",
        f"data.test_per_class={eval_per_class}",
        "scenario.name=class_incremental",
        "scenario.n_experiences=1",
        "scenario.shuffle_classes=false",
        *spec.model,
        "strategy.name=naive",
        # one epoch more than the timed window needs: the phase's last update (always
        # evaluated) stays outside it; the run stops once the window is over
        f"train.epochs={(args.warmup + args.iters) // per_epoch + 1}",
        f"train.batch_size={batch}",
        "train.optimizer=sgd",
        "train.lr=0.01",
        "train.momentum=0.9",
        f"train.channels_last={str(combo.channels_last).lower()}",
        f"train.compile={str(combo.compile).lower()}",
        f"precision={combo.precision}",
        "eval.every=1000000000",  # no continual evaluation during training ((b) measures it)
        "eval.boundary_full_eval=false",
        "eval.track_forward=false",
        f"eval.subset_size={eval_per_class * args.classes}",
        f"eval.batch_size={args.eval_batch or spec.eval_batch}",
        f"device={args.device}",
        "storage=device",
        "output.plot=false",
    ]


def batches_per_epoch(batch: int, classes: int, updates: int) -> int:
    """Batches per epoch such that every batch is full and the classes are balanced: the
    train set (batch * this) is a multiple of ``classes``; at least min(updates, 25)."""
    unit = math.lcm(batch, classes) // batch
    return unit * max(1, math.ceil(min(updates, 25) / unit))


def clbench_train(prepared: Prepared, args: argparse.Namespace) -> tuple[float, Experiment]:
    """Seconds of the timed updates of one ``Experiment.run()``, and the trained experiment."""
    exp = Experiment(prepared)
    window = Window(exp.device, args.warmup, args.warmup + args.iters)
    with contextlib.suppress(RunInterrupted):  # stopped once the timed window is over
        exp.run(on_update=window, should_stop=window.done)
    assert window.seconds is not None, "the run ended before the timed window"
    return window.seconds, exp


def bare_train(prepared: Prepared, args: argparse.Namespace) -> float:
    """Seconds of the timed updates of a hand-written loop doing the same work."""
    cfg, device, dataset = prepared.config, prepared.device, prepared.dataset
    t, precision = cfg.train, cfg.precision
    seed_globals(prepared.seeds["model"])  # the initial weights clbench's model gets
    model = prepared.model.build(dataset.input_shape, prepared.plan.num_outputs).to(device)
    fmt = torch.channels_last if t.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    if t.compile:
        model.compile()
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    x_all, y_all = dataset.train.x.to(device), dataset.train.y.to(device)
    stat = (1, -1, 1, 1)
    mean = torch.tensor(dataset.mean).view(stat)
    std = torch.tensor(dataset.std).view(stat)
    scale, shift = (1 / (255 * std)).to(device), (mean / std).to(device)
    window = Window(device, args.warmup, args.warmup + args.iters)
    n, step = x_all.shape[0], 0
    while window.seconds is None:
        order = torch.randperm(n, device=device)
        for start in range(0, n, t.batch_size):
            index = order[start : start + t.batch_size]
            x = torch.mul(x_all.index_select(0, index), scale).sub_(shift)
            x = x.contiguous(memory_format=fmt)
            y = y_all.index_select(0, index)
            with amp(device, precision):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            window(step)
            if window.seconds is not None:
                break
    return window.seconds


@dataclass
class Result:
    spec: ModelSpec
    combo: Combo
    note: str | None = None  # set when skipped
    train: dict[str, float] = field(default_factory=dict)  # images/s
    evaluation: dict[str, float] = field(default_factory=dict)
    train_mib: dict[str, float | None] = field(default_factory=dict)
    eval_mib: dict[str, float | None] = field(default_factory=dict)
    load: float | None = None


def measure_eval(exp: Experiment, args: argparse.Namespace) -> tuple[dict, dict]:
    """(b): images/s and peak memory of an evaluator pass vs a bare inference loop."""
    ev, model, device = exp.evaluator, exp.model, exp.device
    precision = exp.prepared.config.precision
    channels_last = exp.prepared.config.train.channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    end = int(ev.ends[0])
    # the bare loop runs on the evaluator's own materialised subset, in the model's memory
    # format (converted once, untimed: a hand-written loop would keep it so)
    x = ev.subset.x[:end].contiguous(memory_format=fmt)
    batch = ev.batch_size

    def clbench_pass() -> None:
        ev.evaluate_subsets(0, 0, 0, 0)

    def bare_pass() -> None:
        model.eval()
        with torch.inference_mode():
            for start in range(0, end, batch):
                with amp(device, precision):
                    model(x[start : start + batch])
        model.train()

    fns: dict[str, Callable[[], None]] = {"clbench": clbench_pass, "bare": bare_pass}
    mib: dict[str, float | None] = {}
    for name, fn in fns.items():
        fn()  # warm-up (compiles the inference graph when compiled)
        with PeakMemory(device) as peak:
            fn()
        mib[name] = peak.mib
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(args.eval_reps + 1):  # one more warm-up round
        for name in fns if i % 2 == 0 else reversed(fns):
            out: list[float] = []
            with stopwatch(out, device):
                fns[name]()
            if i > 0:
                times[name].append(out[0])
    exp.log._pending.clear()  # drop the records of these passes
    return {k: end / statistics.median(v) for k, v in times.items()}, mib


def measure(args: argparse.Namespace, spec: ModelSpec, combo: Combo) -> Result:
    result = Result(spec, combo)
    device = torch.device(args.device)
    if combo.precision == "fp16":
        problem = fp16_problem(device)
        if problem:
            result.note = f"skipped: fp16 ({problem})"
            return result
    if combo.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        result.note = "skipped: bf16 is not supported on this GPU"
        return result
    try:
        prepared = prepare(build_config(None, overrides(args, spec, combo)))
    except ConfigError as exc:
        result.note = f"skipped: clbench refuses it ({exc})"
        return result
    if combo.compile:
        torch._dynamo.reset()  # each configuration compiles its own graphs
    batch, exp = prepared.config.train.batch_size, None
    try:
        with ForeignLoad() as load:
            seconds: dict[str, list[float]] = {"clbench": [], "bare": []}
            for name in ("clbench", "bare"):
                result.train_mib[name] = None
            for r in range(args.repeats):
                # alternate the order, clbench last in odd rounds: (b) uses its last model
                for name in ("bare", "clbench") if r % 2 == 0 else ("clbench", "bare"):
                    exp = None
                    with PeakMemory(device) as peak:
                        if name == "clbench":
                            s, exp = clbench_train(prepared, args)
                        else:
                            s = bare_train(prepared, args)
                    seconds[name].append(s)
                    mib, old = peak.mib, result.train_mib[name]
                    result.train_mib[name] = mib if old is None or mib is None else max(old, mib)
            result.train = {
                k: batch * args.iters / statistics.median(v) for k, v in seconds.items()
            }
            if exp is None:  # the last round ran the bare loop last
                _, exp = clbench_train(prepared, args)
            result.evaluation, result.eval_mib = measure_eval(exp, args)
        result.load = load.share
    except Exception as exc:  # a device's or compiler's failure: note it and go on
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        if isinstance(exc, torch.OutOfMemoryError):
            result.note = f"skipped: out of device memory ({text[:120]})"
        else:
            result.note = f"skipped: failed{' with torch.compile' * combo.compile} ({text})"
        result.train, result.evaluation = {}, {}
    finally:
        exp = None
        free(device)
    return result


# --------------------------------------------------------------------------- report


def mib_text(n_bytes: float) -> str:
    value = n_bytes / MIB
    return f"{value:,.0f} MiB" if value >= 10 else f"{value:.2f} MiB"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_mib(values: dict[str, float | None]) -> str:
    c, b = values.get("clbench"), values.get("bare")
    if c is None or b is None:
        return "n/a"
    return f"{c:,.0f}/{b:,.0f}"


COLUMNS = (
    ("model", "<", 13),
    ("prec", "<", 4),
    ("CL", "<", 3),
    ("compile", "<", 7),
    ("train clbench", ">", 13),
    ("train bare", ">", 10),
    ("ratio", ">", 6),
    ("eval clbench", ">", 12),
    ("eval bare", ">", 10),
    ("ratio", ">", 6),
    ("train MiB c/b", ">", 15),
    ("eval MiB c/b", ">", 15),
    ("load", ">", 10),
)


def line(cells: list[str]) -> str:
    return " ".join(f"{c:{a}{w}}" for c, (_, a, w) in zip(cells, COLUMNS, strict=True)).rstrip()


def row(r: Result) -> str:
    head = [r.spec.key, *r.combo.text()]
    if r.note is not None:
        return " ".join(f"{c:<{w}}" for c, (_, _, w) in zip(head, COLUMNS, strict=False)) + (
            f" {r.note}"
        )
    ratio_t = r.train["clbench"] / r.train["bare"]
    ratio_e = r.evaluation["clbench"] / r.evaluation["bare"]
    load = "n/a" if r.load is None else f"{100 * r.load:.0f}%"
    if r.load is not None and r.load > QUIET:
        load += " NOISY"
    return line(
        [
            *head,
            fmt_rate(r.train["clbench"]),
            fmt_rate(r.train["bare"]),
            f"{ratio_t:.2f}",
            fmt_rate(r.evaluation["clbench"]),
            fmt_rate(r.evaluation["bare"]),
            f"{ratio_e:.2f}",
            fmt_mib(r.train_mib),
            fmt_mib(r.eval_mib),
            load,
        ]
    )


def environment(device: torch.device) -> str:
    parts = [f"torch {torch.__version__}", f"python {platform.python_version()}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        parts += [
            f"{props.name} ({props.total_memory / 2**30:.0f} GiB)",
            f"CUDA {torch.version.cuda}",
            f"cuDNN {torch.backends.cudnn.version()}",
            f"cudnn.benchmark={torch.backends.cudnn.benchmark}",
            f"matmul TF32={torch.backends.cuda.matmul.allow_tf32}",
            f"cudnn TF32={torch.backends.cudnn.allow_tf32}",
        ]
    else:
        parts.append(f"device cpu, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")
    return ", ".join(parts)


# --------------------------------------------------------------------------- main


def parse_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{what}: comma-separated from {', '.join(allowed)}")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny CPU smoke run (seconds)")
    p.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available, else cpu)",
    )
    p.add_argument(
        "--models",
        default="resnet18,vit",
        type=lambda s: parse_list(s, ("resnet18", "timm_resnet18", "vit"), "--models"),
        help="resnet18 (clbench slim_resnet18), timm_resnet18, vit (default: resnet18,vit)",
    )
    p.add_argument(
        "--precisions",
        default="fp32,bf16,fp16",
        type=lambda s: parse_list(s, PRECISIONS, "--precisions"),
        help="autocast precisions (default: fp32,bf16,fp16; fp16 trains with a GradScaler)",
    )
    p.add_argument(
        "--channels-last",
        default="off,on",
        type=lambda s: parse_list(s, ("off", "on"), "--channels-last"),
        help="conv nets only (default: off,on)",
    )
    p.add_argument(
        "--compile",
        choices=("off", "on", "both"),
        default=None,
        help="torch.compile (Module.compile) settings to run (default: both; off for --quick on "
        "a CPU, where each compile takes ~30 s)",
    )
    p.add_argument("--no-compile", action="store_true", help="same as --compile off")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="training batch (default 128 ResNets, 64 ViT; quick 8)",
    )
    p.add_argument("--classes", type=int, default=None, help="classes (default 100; quick 10)")
    p.add_argument("--iters", type=int, default=None, help="timed updates (default 50; quick 5)")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed updates first (default 10; quick 2)"
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="interleaved training rounds (default 3; quick 1)"
    )
    p.add_argument(
        "--eval-samples", type=int, default=None, help="(b) test images (default 1000; quick 40)"
    )
    p.add_argument(
        "--eval-batch",
        type=int,
        default=None,
        help="(b) batch (default 1000 ResNets, 250 ViT; quick 20)",
    )
    p.add_argument(
        "--eval-reps", type=int, default=None, help="(b) timed passes (default 10; quick 3)"
    )
    p.add_argument("--resnet-nf", type=int, default=20, help="slim_resnet18 width (default 20)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--max-wait",
        type=float,
        default=None,
        help="seconds the script may wait in all for other processes to go quiet before timed "
        "blocks (default 60; quick 0)",
    )
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "classes": (10, 100),
        "iters": (5, 50),
        "warmup": (2, 10),
        "repeats": (1, 3),
        "eval_samples": (40, 1000),
        "eval_reps": (3, 10),
        "max_wait": (0.0, 60.0),
    }
    for name, (q, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, q if quick else full)
    if args.no_compile:
        args.compile = "off"
    args.quick_no_compile = args.compile is None and quick and not args.device.startswith("cuda")
    if args.compile is None:
        args.compile = "off" if args.quick_no_compile else "both"
    try:
        device = torch.device(args.device)
    except RuntimeError:
        p.error(f"--device {args.device!r}: not a torch device")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    if min(args.iters, args.warmup, args.repeats, args.eval_reps, args.eval_samples) < 1:
        p.error("--iters, --warmup, --repeats, --eval-reps and --eval-samples must be >= 1")
    if args.classes < 2 or (args.batch is not None and args.batch < 2):
        p.error("--classes and --batch must be >= 2")
    return args


def combos(args: argparse.Namespace, spec: ModelSpec) -> list[Combo]:
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    layouts = [v == "on" for v in args.channels_last] if spec.conv else [False]
    return [Combo(p, cl, c) for c in compiles for cl in layouts for p in args.precisions]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    ForeignLoad.wait_budget_s = args.max_wait
    # every (precision, layout, train/eval) graph of a configuration compiles once; the
    # default limit (8) would silently fall back to eager code
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    device = torch.device(args.device)
    specs = model_specs(args)
    started = time.perf_counter()
    say(f"gpu_throughput benchmark{' (--quick: smoke run, no performance claims)' * args.quick}")
    say(environment(device))
    say(
        f"{args.classes} classes, {args.warmup} warm-up + {args.iters} timed updates, "
        f"{args.repeats} round(s); evaluation: {args.eval_samples} images, {args.eval_reps} "
        f"passes; compile: {args.compile}"
        + (" (--quick on a CPU: --compile both adds it, ~30 s per graph)" * args.quick_no_compile)
    )
    for key in args.models:
        spec = specs[key]
        batch, eval_batch = args.batch or spec.batch, args.eval_batch or spec.eval_batch
        say(f"  {key}: {spec.description}; batch {batch}, eval batch {eval_batch}")
        pixels = 3 * spec.image_size**2
        n_train = batch * batches_per_epoch(batch, args.classes, args.warmup + args.iters)
        n_test = max(1, args.eval_samples // args.classes) * args.classes
        say(
            f"    on the device: {n_train} train images ({mib_text(n_train * pixels)} uint8; "
            f"both loops), clbench also {n_test} test images ({mib_text(n_test * pixels)} uint8) "
            f"and the evaluator's float32 subset of them ({mib_text(4 * n_test * pixels)})"
        )
    results: list[Result] = []
    for key in args.models:
        for combo in combos(args, specs[key]):
            start = time.perf_counter()
            r = measure(args, specs[key], combo)
            results.append(r)
            took = f"{time.perf_counter() - start:.1f} s"
            say(f"  {key} {' '.join(combo.text())}: {r.note or 'done'} ({took})")
    say()
    mem = "peak MiB" if device.type == "cuda" else "peak RSS growth MiB"
    say(f"images/s, clbench vs bare PyTorch ({mem} clbench/bare)")
    header = line([name for name, _, _ in COLUMNS])
    say(header)
    say("-" * len(header))
    for r in results:
        say(row(r))
    say(
        "ratio: clbench images/s / bare images/s (1.00: as fast; below 1: clbench slower). "
        "train: Experiment.run() vs a hand-written loop; eval: ContinualEvaluator pass vs bare "
        "model(x) under inference_mode. CL: channels_last."
    )
    if device.type != "cuda":
        say(
            "memory on a CPU: growth of the process's peak RSS during the measurement (0 when an "
            "earlier measurement already peaked higher)."
        )
    say(
        "load: share of the machine's CPU other processes used meanwhile (NOISY above "
        f"{QUIET:.0%}: rerun on a quiet machine before quoting)."
    )
    say(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
