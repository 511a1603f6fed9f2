"""Peak host memory (and device memory on a GPU) of a run's data under each ``storage``.

Usage::

    python benchmarks/data_memory.py [--inr-images 3000] [--batches 200] [--batch-size 32]
        [--device auto|cpu|cuda] [--workdir DIR]

Data, written in the real on-disk formats and read by clbench's own loaders:

- CIFAR-100-shaped: 50,000 + 10,000 random uint8 3x32x32 images, as the python version's pickle
  files (``cifar-100-python/{train,test,meta}``), read by the ``cifar100`` source;
- ImageNet-R-shaped at 224 px: ``--inr-images`` (default 3,000 of the real 30,000, to keep the
  run short) random smooth 224x224 RGB JPEGs in ``imagenet-r/<wnid>/`` folders, 200 classes, read
  by the ``imagenet_r`` source (80/20 split). It is measured with ``--batches`` and again with
  proportionally fewer batches (20 of 200 at 3,000 images: batches then touch the same share of
  the training split as at full size); the latter is extrapolated linearly to 30,000 images, every
  figure times 30,000 / ``--inr-images`` (rows ``(est.)``; one batch's scratch memory is thereby
  over-counted by that factor).

Each case runs in a fresh subprocess: ``prepare`` (which loads the data as ``storage`` says),
`StreamData`, the continual evaluator's fixed subsets (default ``eval.subset_size`` 1000 per
task, 10 tasks), then ``--batches`` training batches of ``--batch-size`` drawn as the runner draws
them (one epoch of each phase in turn, through `StreamData.prefetching`). No model is trained and
no full test-set evaluation runs: the figures are the data path's alone. It reads the kernel's
peak resident set (``VmHWM`` in ``/proc/self/status``) after each stage, minus the baseline after
imports, and ``torch.cuda.max_memory_allocated`` on a GPU. The storages:

- ``device``: on a CPU, the data stays where the loader put it (host memory), so it equals host;
- ``host``: both splits in host memory;
- ``memmap build``: the first memmap run, which decodes into the cache (``$CLBENCH_CACHE`` set to
  ``<workdir>/cache``, emptied first);
- ``memmap``: a later run, which maps the cache.

Memory-mapped pages the process touched count in its resident set (``file`` column) although the
kernel can drop them at any time and processes reading the same dataset share them; ``anon`` is
the private memory, the part that cannot be given back. The last lines print the memmap/host
ratio of peak growth. Runtime on 2 CPU cores: about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MIB = 2**20
INR_FULL = 30_000
STORAGES = ("device", "host", "memmap build", "memmap")


# --------------------------------------------------------------------------- fake data files


def write_cifar100(root: Path) -> None:
    """``cifar-100-python/{train,test,meta}``: random pixels, 500 / 100 images per class, pickled
    (protocol 2, like the real Python-2 files) as the ``cifar100`` source reads them."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", 50_000), ("test", 10_000)):
        fine = (np.arange(n) % 100).tolist()
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": fine,
            "coarse_labels": [label // 5 for label in fine],
        }
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
    meta = {
        "fine_label_names": [f"class{k}" for k in range(100)],
        "coarse_label_names": [f"super{k}" for k in range(20)],
    }
    with (folder / "meta").open("wb") as f:
        pickle.dump(meta, f, protocol=2)


def write_imagenet_r(root: Path, n_images: int) -> None:
    """``imagenet-r/<wnid>/<k>.jpg``: ``n_images`` smooth random 224x224 JPEGs in 200 classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n_images):
        folder = root / "imagenet-r" / f"n{1000000 + i % 200:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((224, 224), Image.Resampling.BILINEAR)
        image.save(folder / f"{i // 200}.jpg", quality=90)


# --------------------------------------------------------------------------- one case (child)


def status() -> dict[str, int]:
    """Resident-set figures of this process, in bytes."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Load, build the evaluator's subsets, form training batches; peak memory after each."""
    import torch

    from clbench.config import build_config
    from clbench.data.batches import PhaseBatches
    from clbench.data.stream import StreamData, split_bytes
    from clbench.engine.evaluator import ContinualEvaluator
    from clbench.engine.records import RecordLog
    from clbench.engine.runner import prepare, resolve_storage

    storage = spec["storage"].split()[0]
    config = build_config(
        None,
        [
            f"data.name={spec['data']}",
            f"data.root={spec['root']}",
            "scenario.n_experiences=10",
            "strategy.name=naive",
            "model.hidden_sizes=[8]",
            f"train.batch_size={spec['batch_size']}",
            f"storage={storage}",
            f"device={spec['device']}",
            "threads=1",
        ],
    )
    torch.set_num_threads(1)
    start = status()
    base = start["VmHWM"]
    peaks = {}
    prepared = prepare(config)
    peaks["load"] = status()["VmHWM"] - base
    dataset = prepared.dataset
    data = StreamData(
        dataset, prepared.plan, prepared.device, resolve_storage(config, dataset, prepared.device)
    )
    evaluator = ContinualEvaluator(
        data,
        torch.nn.Identity(),
        lambda x, task: x,
        RecordLog(),
        subset_size=config.eval.subset_size,
        stratified=True,
        batch_size=config.eval.batch_size,
        seed=0,
        autocast=contextlib.nullcontext,
    )
    subset = evaluator.subset.x
    peaks["subsets"] = status()["VmHWM"] - base
    generator = torch.Generator().manual_seed(0)
    formed = 0
    while formed < spec["batches"]:
        for phase in prepared.plan.phases:
            batches = PhaseBatches(phase.parts, spec["batch_size"], generator)
            for index, task in data.prefetching(batches.epoch()):
                data.make_batch(index, task)
                formed += 1
                if formed == spec["batches"]:
                    break
            if formed == spec["batches"]:
                break
    end = status()
    peaks["batches"] = end["VmHWM"] - base
    cuda = None
    if prepared.device.type == "cuda":
        torch.cuda.synchronize(prepared.device)
        cuda = torch.cuda.max_memory_allocated(prepared.device)
    return {
        "samples": len(dataset.train) + len(dataset.test),
        "data_bytes": split_bytes(dataset.train) + split_bytes(dataset.test),
        "subset_bytes": subset.numel() * subset.element_size(),
        "base": base,
        "peaks": peaks,
        "anon": end["RssAnon"] - start["RssAnon"],
        "file": end["RssFile"] - start["RssFile"],
        "cuda": cuda,
    }


# --------------------------------------------------------------------------- the table (parent)


def run_case(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"case {spec} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:,.0f}"


HEADER = (
    f"{'dataset':<26} {'storage':<13} {'batches':>7} {'data':>7} {'subsets':>8} {'load':>7} "
    f"{'+subsets':>9} {'+batches':>9} {'anon':>7} {'file':>7} {'cuda':>7}"
)


def line(name: str, storage: str, r: dict[str, Any]) -> str:
    p = r["peaks"]
    return (
        f"{name:<26} {storage:<13} {r['batches']:>7} {mib(r['data_bytes']):>7} "
        f"{mib(r['subset_bytes']):>8} {mib(p['load']):>7} {mib(p['subsets']):>9} "
        f"{mib(p['batches']):>9} {mib(r['anon']):>7} {mib(r['file']):>7} {mib(r['cuda']):>7}"
    )


def scaled(r: dict[str, Any], scale: float) -> dict[str, Any]:
    """``r`` with every byte figure times ``scale``: the linear extrapolation to more images
    (measured with proportionally fewer batches, so the share of the training split that batches
    touch is the same; one batch's own scratch memory is over-counted by the factor)."""
    return {
        **r,
        "cuda": None if r["cuda"] is None else r["cuda"] * scale,
        "batches": round(r["batches"] * scale),
        "data_bytes": r["data_bytes"] * scale,
        "subset_bytes": r["subset_bytes"] * scale,
        "peaks": {k: v * scale for k, v in r["peaks"].items()},
        "anon": r["anon"] * scale,
        "file": r["file"] * scale,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inr-images", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    work = (
        Path(tempfile.mkdtemp(prefix="clbench-data-memory-"))
        if args.workdir is None
        else args.workdir
    )
    n_inr = args.inr_images
    try:
        if not (work / "cifar" / "cifar-100-python" / "meta").exists():
            write_cifar100(work / "cifar")
        if len(list((work / "inr").rglob("*.jpg"))) != n_inr:
            shutil.rmtree(work / "inr", ignore_errors=True)
            write_imagenet_r(work / "inr", n_inr)
        env = {**os.environ, "CLBENCH_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}
        repo = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
        # (label, source, data root, training batches)
        groups = [
            ("CIFAR-100 60,000 32px", "cifar100", work / "cifar", args.batches),
            (f"ImageNet-R {n_inr:,} 224px", "imagenet_r", work / "inr", args.batches),
        ]
        scale = INR_FULL / n_inr
        if n_inr != INR_FULL:  # the share of the data that batches touch, as at full size
            few = max(1, round(args.batches / scale))
            groups.append((f"ImageNet-R {n_inr:,} 224px", "imagenet_r", work / "inr", few))
        print(
            "MiB. load, +subsets, +batches: peak resident set (VmHWM) growth over the baseline "
            "after imports, after each stage; anon, file: private and file-backed resident "
            "memory at the end, over the baseline; cuda: torch.cuda.max_memory_allocated"
        )
        print(HEADER)
        print("-" * len(HEADER))
        ratios = []
        for i, (label, data, root, batches) in enumerate(groups):
            shutil.rmtree(work / "cache", ignore_errors=True)
            results = {}
            for storage in STORAGES:
                spec = {
                    "data": data,
                    "root": str(root),
                    "storage": storage,
                    "batches": batches,
                    "batch_size": args.batch_size,
                    "device": args.device,
                }
                r = results[storage] = {**run_case(spec, env), "batches": batches}
                print(line(label, storage, r), flush=True)
            host, mapped = results["host"], results["memmap"]
            growth = [r["peaks"]["batches"] for r in (mapped, host)]
            whole = [r["base"] + r["peaks"]["batches"] for r in (mapped, host)]
            ratios.append(
                f"{label}, {batches} batches: memmap/host peak RSS growth "
                f"{growth[0] / growth[1]:.2f}, whole peak RSS {whole[0] / whole[1]:.2f}, private "
                f"memory at the end {mapped['anon'] / host['anon']:.2f} (baseline after imports "
                f"{mib(host['base'])} MiB)"
            )
            if i == 2:
                for storage in STORAGES:
                    estimate = scaled(results[storage], scale)
                    print(line(f"ImageNet-R {INR_FULL:,} (est.)", storage, estimate))
        print()
        print("\n".join(ratios))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
