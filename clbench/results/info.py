"""``clbench info RUN_DIR``: what one run folder holds, in plain text.

Status first (with the error, the divergence step or how to resume), then the run's identity
(components, seed, hash), where and with what it ran (manifest), its checkpoint, and its metrics
and budget once finished. Every file is read through `RunFolder`, so a damaged one is named; and
first every file is checked against its digest (``digests.json``, the checkpoint's own header), so
a damaged or edited file is reported even where it would still parse.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from clbench.config import config_hash, resolve_config
from clbench.engine.lock import LOCK_FILE, lock_holder
from clbench.engine.run_dir import CHECKPOINT_FILE, DIGESTS_FILE, read_digests, verify_files
from clbench.errors import ConfigError, CorruptedResultError
from clbench.metrics.headline import HEADLINE, format_value
from clbench.results.reader import RunFolder

BUDGET_KEYS = (
    "updates",
    "samples_seen",
    "train_time_s",
    "eval_time_s",
    "checkpoint_time_s",
    "buffer_size",
    "params_trainable",
    "params_total",
)


def _process_gone(status: dict[str, Any]) -> bool:
    """True when a 'running' status names a process of this host that no longer exists."""
    if status.get("host") != socket.gethostname() or not isinstance(status.get("pid"), int):
        return False
    try:
        os.kill(status["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def check_integrity(run: RunFolder, in_use: bool = False) -> None:
    """Raise `CorruptedResultError` naming the first damaged file (and listing the others):
    files that do not match ``digests.json`` and a checkpoint that fails its own checks. While
    a run holds the folder (``in_use``) a file and its digest may be between writes, so only
    the checkpoint (one atomic file) is checked."""
    problems = [] if in_use else verify_files(run.path)
    ckpt = run.file(CHECKPOINT_FILE)
    if ckpt.is_file():
        try:
            from clbench.engine.checkpoint import load_checkpoint  # torch: only with a checkpoint

            load_checkpoint(ckpt)
        except CorruptedResultError as exc:
            problems.append(exc)
    if problems:
        first, rest = problems[0], problems[1:]
        also = "; also damaged: " + "; ".join(str(p) for p in rest) if rest else ""
        raise CorruptedResultError(first.path, first.reason + also)


def describe_run(run: RunFolder) -> str:
    """The text `clbench info` prints; raises `CorruptedResultError` naming a damaged file."""
    holder = lock_holder(run.path)
    check_integrity(run, in_use=holder is not None)
    status = run.status_info
    lines = [f"run      {run.path}", f"status   {status['status']}"]
    if "time" in status:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(status["time"])))
        lines[-1] += f" (since {stamp})"
    if holder is not None:
        lines.append(f"  in use by pid {holder.get('pid')} on host {holder.get('host')}")
    elif status["status"] == "running" and (
        run.file(LOCK_FILE).is_file() or _process_gone(status)
    ):  # nobody holds the lock (the OS drops a dead holder's): the process is gone
        lines.append(
            f"  its process ({status.get('pid')}) is gone: the run was killed; resume with: "
            f"clbench run --resume {run.path}"
        )
    for key in ("error", "step", "resume", "resumed_from"):
        if status.get(key) is not None:
            lines.append(f"  {key}: {status[key]}")
    if status.get("traceback"):
        lines.append("  traceback (last line): " + status["traceback"].strip().splitlines()[-1])

    config = run.config
    names = {s: config.get(s, {}).get("name") for s in ("strategy", "scenario", "data", "model")}
    lines.append(
        "config   " + ", ".join(f"{s}={n}" for s, n in names.items()) + f", seed={config['seed']}"
    )
    try:
        lines.append(f"  hash {config_hash(resolve_config(config))}")
    except ConfigError as exc:
        raise CorruptedResultError(run.file("config.yaml"), str(exc)) from None
    train = config.get("train", {})
    lines.append(
        "  train: "
        + ", ".join(
            f"{k}={train[k]}" for k in ("epochs", "batch_size", "optimizer", "lr") if k in train
        )
        + f"; eval every {config.get('eval', {}).get('every')} update(s)"
    )

    if run.file("manifest.json").is_file():
        manifest = run.manifest
        versions = manifest.get("versions", {})
        lines.append(
            "versions " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
        )
        git = manifest.get("git", {})
        commit = git.get("commit")
        if commit:
            lines.append(f"  git {commit[:12]}" + (" (dirty)" if git.get("dirty") else ""))
        lines.append(f"  device {manifest.get('device')}, created {manifest.get('created')}")

    if holder is not None:
        lines.append("files    not verified while the run is in use")
    elif read_digests(run.path) is None:
        lines.append(f"files    not verified: no {DIGESTS_FILE} (an older clbench wrote them)")
    else:
        lines.append(f"files    match their digests ({DIGESTS_FILE})")
    ckpt = run.file(CHECKPOINT_FILE)
    if ckpt.is_file():
        from clbench.engine.checkpoint import load_checkpoint

        position, _ = load_checkpoint(ckpt)
        lines.append(f"checkpoint at {position.describe()} ({ckpt.stat().st_size / 1e6:.1f} MB)")

    if run.finished:
        summary = run.summary
        metrics = summary["metrics"]
        lines.append("metrics")
        for key, meaning in HEADLINE:
            if key in metrics:
                lines.append(f"  {key:<20} {format_value(metrics[key]):>10}  {meaning}")
        per_task = metrics.get("per_task_final_acc")
        if per_task:
            accs = " ".join(format_value(a) for a in per_task)
            lines.append(f"  per-task final accuracy: {accs}")
        budget = summary.get("budget", {})
        spent = ", ".join(f"{k}={format_value(budget[k])}" for k in BUDGET_KEYS if k in budget)
        lines.append(f"budget   {spent}")
        if summary.get("tags"):
            lines.append("tags     " + ", ".join(f"{k}={v}" for k, v in summary["tags"].items()))
    return "\n".join(lines)
