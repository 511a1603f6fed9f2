"""Run every strategy and plugin on small settings and compare the records of two code versions.

A refactor must keep behaviour: this runs the same cases with the code in ``--code`` (a checkout;
default: this repository) and writes each run's records under ``OUT``; ``compare A B`` then
reports, case by case, whether ``records.parquet`` and the training losses are identical.

    git worktree add /tmp/before <commit>
    python tools/compare_records.py run /tmp/rec_before --code /tmp/before --form wrapper
    python tools/compare_records.py run /tmp/rec_after
    python tools/compare_records.py compare /tmp/rec_before /tmp/rec_after

Cases before the plugin API (``--form wrapper``) wrote View-Batch and FPF as strategies wrapping
a ``base``; each case holds both spellings of the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

SMALL = ["train.epochs=1", "eval.every=5", "eval.subset_size=200", "device=cpu", "threads=1"]
AVALANCHE = [
    "avl_agem", "avl_der", "avl_er_ace", "avl_ewc", "avl_gdumb", "avl_gem", "avl_icarl",
    "avl_lwf", "avl_mas", "avl_mir", "avl_naive", "avl_online_ewc", "avl_replay", "avl_si",
]  # fmt: skip
BACKBONE = "backbone.pth"  # made once in OUT by `clbench pretrain` (SLCA needs one)
PRETRAIN = [
    "data.name=digits", "scenario.name=class_incremental", "scenario.n_experiences=1",
    "model.name=timm", "model.arch=resnet10t", "model.image_size=28", "strategy.name=naive",
    "train.epochs=1",
]  # fmt: skip


def _vb(base: str, **params: object) -> tuple[list[str], list[str]]:
    """(wrapper form, plugin form) of View-Batch over ``base``."""
    return _plugin("view_batch", base, params)


def _fpf(base: str, **params: object) -> tuple[list[str], list[str]]:
    return _plugin("fpf", base, params)


def _plugin(name: str, base: str, params: dict[str, object]) -> tuple[list[str], list[str]]:
    base_name, _, base_params = (s.strip() for s in base.partition(","))
    inner = f"{base_name}, {base_params}" if base_params else base_name
    old = [f"strategy.name={name}", f"strategy.base={{name: {inner}}}"]
    old += [f"strategy.{k}={v}" for k, v in params.items()]
    new = [f"strategy.name={base_name}"]
    new += [f"strategy.{kv.strip()}".replace(": ", "=") for kv in base_params.split(",") if kv]
    new += [f"plugins.{name}.{k}={v}" for k, v in params.items()] or [f"plugins.{name}={{}}"]
    return old, new


def cases() -> dict[str, tuple[list[str], list[str]]]:
    """name -> (overrides before the plugin API, overrides after)."""
    same: dict[str, list[str]] = {
        "er": ["strategy.name=er"],
        "er_weighted": [
            "strategy.name=er", "strategy.new_weight=0.3", "strategy.buffer=class_balanced",
        ],
        "naive": ["strategy.name=naive"],
        "joint": ["strategy.name=joint"],
        "k_fpf_ce": ["strategy.name=k_fpf", "strategy.iterations=20", "strategy.loss=ce"],
        "k_fpf_kd": ["strategy.name=k_fpf", "strategy.iterations=20", "strategy.fpf_lr=0.005"],
        "hyperinterval": [
            "strategy.name=hyperinterval", "scenario.name=task_incremental", "strategy.val_size=20",
        ],
        "hyperinterval_nested": [
            "strategy.name=hyperinterval", "scenario.name=task_incremental",
            "strategy.variant=nested",
        ],
        **{
            m: [f"strategy.name={m}", "model.name=timm", "model.arch=resnet10t",
                "model.image_size=28", f"model.pretrained={{OUT}}/{BACKBONE}"]
            for m in ("slca", "seq_ft", "linear_probe")
        },
        **{m: [f"strategy.name={m}"] for m in AVALANCHE},
    }  # fmt: skip
    out = {name: (o, o) for name, o in same.items()}
    out |= {
        "view_batch_er": _vb("er", ssl_start_epoch=0),
        "view_batch_er_noint": _vb("er", ssl_start_epoch=0, replay_interval="false"),
        "view_batch_er_buffer": _vb("er", ssl_start_epoch=0, apply_to="buffer", view_aug="noise"),
        "view_batch_naive": _vb("naive", ssl_start_epoch=0),
        "view_batch_er_weighted": _vb("er, new_weight: 0.3", ssl_start_epoch=0),
        "fpf_er": _fpf("er", iterations=20),
        "fpf_naive": _fpf("naive", iterations=20),
        "fpf_er_kd": _fpf("er", iterations=20, loss="kd", fpf_lr=0.005),
        "fpf_er_every": _fpf("er", iterations=10, when="every_phase"),
    }
    configs = {
        "cfg_split_digits_er": "configs/stability_gap/split_digits_er.yaml",
        "cfg_cir_digits": "configs/recurrence/cir_digits.yaml",
        "cfg_scole_digits": "configs/recurrence/scole_digits.yaml",
        "cfg_v1_power": "configs/power_law/v1_permuted_digits_power.yaml",
        "cfg_v3_power": "configs/power_law/v3_split_digits_power.yaml",
    }
    out |= {name: ([f"@{path}"], [f"@{path}"]) for name, path in configs.items()}
    return out


def _link_builtin_packages(code: Path) -> None:
    """The installed package maps ``clbench.strategies`` / ``clbench.scenarios`` to this
    repository's folders; another checkout on PYTHONPATH must bring its own, so link them inside
    its ``clbench/`` (found before the installed mapping)."""
    for name in ("strategies", "scenarios"):
        link = code / "clbench" / name
        if not link.exists() and (code / name).is_dir():
            link.symlink_to(code / name, target_is_directory=True)


def run(out: Path, code: Path, form: str, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if code.resolve() != Path(__file__).resolve().parent.parent:
        _link_builtin_packages(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    python = [sys.executable, "-m", "clbench"]
    if not (out / BACKBONE).exists():
        cmd = [*python, "pretrain", "--out", str(out / BACKBONE), *PRETRAIN, "device=cpu"]
        subprocess.run(cmd, cwd=code, env=env, check=True, capture_output=True)
    for name, (old, new) in cases().items():
        if only and name not in only:
            continue
        overrides = [o.replace("{OUT}", str(out)) for o in (old if form == "wrapper" else new)]
        config = [overrides[0][1:]] if overrides[0].startswith("@") else []
        overrides = overrides[len(config) :]
        cmd = [*python, "run", *config, *overrides, *SMALL]
        cmd += [f"output.root={out}", f"output.name={name}", "output.plot=false", "--force"]
        done = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
        print(f"{name:28s} exit {done.returncode}", flush=True)
        if done.returncode:
            print(done.stderr[-2000:], flush=True)


def compare(a: Path, b: Path) -> int:
    different = 0
    for name in cases():
        files = [d / name / "records.parquet" for d in (a, b)]
        if not all(f.exists() for f in files):
            absent = " and ".join(str(f.parent.parent) for f in files if not f.exists())
            print(f"{name:28s} missing in {absent}")
            different += 1
            continue
        ra, rb = (pd.read_parquet(f) for f in files)
        la, lb = (pd.read_parquet(f.with_name("train_loss.parquet")) for f in files)
        same = ra.equals(rb) and la.equals(lb)
        different += not same
        print(f"{name:28s} {'identical' if same else 'DIFFERENT'} ({len(ra)} records)")
    return 1 if different else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    r.add_argument("--form", choices=["wrapper", "plugin"], default="plugin")
    r.add_argument("--only", nargs="*", default=[])
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.out.resolve(), args.code.resolve(), args.form, args.only)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    raise SystemExit(main())
