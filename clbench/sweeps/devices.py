"""GPUs for sweep runs: checking ``--gpus-per-run`` and giving each local worker its own device(s).

A run asks for ``G`` GPUs: a whole number, or a fraction below 1 so that ``floor(1/G)`` runs share
one GPU. The local pool turns the visible GPUs into worker *slots* (`gpu_slots`): each slot is the
``CUDA_VISIBLE_DEVICES`` value one worker process starts with, so a run sees only its own
device(s), as ``cuda:0`` (and ``cuda:1``, ... when ``G > 1``). Ray and SLURM do the same
assignment themselves from the request (``num_gpus``, ``--gpus-per-node``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from clbench.errors import ConfigError

OPTION = "--gpus-per-run"
# 1/G for a fraction such as 0.2 is 4.999999... in binary floating point: floor() needs slack
_EPS = 1e-9


def _shown(value: float) -> float | int:
    """The value as typed: 1 rather than 1.0."""
    return int(value) if math.isfinite(value) and float(value).is_integer() else value


def check_gpus_per_run(value: float, executor: str) -> float:
    """``value`` if it is a valid ``--gpus-per-run`` for ``executor``, else `ConfigError`.

    Only the request itself is checked here; whether this machine has the devices is
    `local_gpu_slots`' question (the local pool, and Ray's local cluster).
    """
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            OPTION,
            _shown(value),
            "a number >= 0: 0 (CPU runs, the default), a fraction below 1 (runs share a GPU: "
            "0.5 = 2 runs per GPU) or a whole number of GPUs per run",
        )
    if value > 1 and not float(value).is_integer():
        raise ConfigError(
            OPTION,
            _shown(value),
            "a whole number of GPUs when above 1 (e.g. 2); fractions only below 1, where "
            "several runs share one GPU",
        )
    if executor == "slurm" and 0 < value < 1:
        raise ConfigError(
            OPTION,
            _shown(value),
            "a whole number of GPUs with --executor slurm (SLURM allocates whole GPUs to a job)",
        )
    return float(value)


def gpu_slots(n_gpus: int, gpus_per_run: float, visible: Sequence[str] | None = None) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value of each worker slot: ``n_gpus`` devices, ``gpus_per_run``
    each. Pure: no device is queried.

    - ``G >= 1`` (whole): ``floor(N/G)`` slots of ``G`` consecutive devices each
      (``gpu_slots(4, 2) == ["0,1", "2,3"]``); leftover devices stay unused.
    - ``G < 1``: ``floor(1/G)`` slots per device, ``N * floor(1/G)`` in all, taken round-robin
      over the devices (``gpu_slots(2, 0.5) == ["0", "1", "0", "1"]``) so that a pool with fewer
      workers than slots still spreads over every device first.

    ``visible`` names the devices as the parent sees them (its own ``CUDA_VISIBLE_DEVICES``
    entries): a sweep started with ``CUDA_VISIBLE_DEVICES=2,3`` hands out ``"2"`` and ``"3"``,
    not the indices 0 and 1, which would name other, physical devices in the workers.
    """
    if n_gpus < 0 or not math.isfinite(gpus_per_run) or gpus_per_run <= 0:
        raise ValueError(
            f"gpu_slots needs n_gpus >= 0 and gpus_per_run > 0, got {n_gpus}, {gpus_per_run}"
        )
    names = [str(i) for i in range(n_gpus)] if visible is None else list(visible)[:n_gpus]
    if len(names) < n_gpus:
        raise ValueError(f"{n_gpus} device(s) but only {len(names)} name(s): {list(visible or [])}")
    if gpus_per_run >= 1:
        if not float(gpus_per_run).is_integer():
            raise ValueError(f"gpus_per_run above 1 must be whole, got {gpus_per_run}")
        per = int(gpus_per_run)
        return [",".join(names[i * per : (i + 1) * per]) for i in range(n_gpus // per)]
    share = math.floor(1 / gpus_per_run + _EPS)
    return [name for _ in range(share) for name in names]


def visible_device_names(n_gpus: int) -> list[str] | None:
    """The parent's names for its ``n_gpus`` devices: its ``CUDA_VISIBLE_DEVICES`` entries when
    set (indices or ``GPU-<uuid>``), else None (devices 0..N-1)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    # CUDA ignores the entries after the first invalid one; device_count() says how many count
    return names[:n_gpus] if len(names) >= n_gpus else None


def cuda_device_count() -> int:
    """How many CUDA devices this process sees (0 without CUDA)."""
    import torch

    return int(torch.cuda.device_count())


def local_gpu_slots(gpus_per_run: float) -> list[str]:
    """`gpu_slots` for this machine's visible devices; `ConfigError` (naming the option) when
    there is none, or fewer than one run needs."""
    n_gpus = cuda_device_count()
    if n_gpus == 0:
        raise ConfigError(
            OPTION,
            _shown(gpus_per_run),
            "0 here: no CUDA device is visible (torch.cuda.device_count() is 0; check the "
            "driver, the CUDA build of torch and CUDA_VISIBLE_DEVICES)",
        )
    slots = gpu_slots(n_gpus, gpus_per_run, visible_device_names(n_gpus))
    if not slots:
        raise ConfigError(
            OPTION,
            _shown(gpus_per_run),
            f"at most {n_gpus}: only {n_gpus} CUDA device(s) visible",
        )
    return slots
