"""The reproducibility manifest written with every run."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("clbench", "torch", "torchvision", "timm", "avalanche-lib", "numpy", "pandas")


def package_versions() -> dict[str, str | None]:
    """Installed versions, read from metadata (never imports avalanche or timm)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _git(path: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()


def git_state(path: Path) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout containing ``path`` (None outside git)."""
    try:
        commit = _git(path, "rev-parse", "HEAD")
        dirty = _git(path, "status", "--porcelain", "--untracked-files=no")
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def build_manifest(
    device: torch.device,
    seed: int,
    seeds: dict[str, int],
    scenario_hash: str,
    dataset_checksum: str,
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": sys.argv,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "git": git_state(Path(__file__).resolve().parent),
        "device": device_description(device),
        "seed": seed,
        "derived_seeds": seeds,
        "scenario_hash": scenario_hash,
        "dataset_checksum": dataset_checksum,
    }
