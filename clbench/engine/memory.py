"""Peak memory of one run: CUDA memory allocated on a GPU, else the process's peak resident set.

On Linux the resident-set peak (``VmHWM``) is reset at the start of each run through
``/proc/self/clear_refs``, so a process that runs several runs (a sweep worker) reports each
run's own peak; elsewhere it falls back to ``ru_maxrss``, the peak over the process's life.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    # not Linux, or not allowed: the process-lifetime peak is reported instead
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")  # "5": reset the peak RSS (Linux >= 4.0)


def peak_memory(device: torch.device) -> dict[str, Any]:
    """``peak_memory_mb`` and what it measures (``peak_memory_kind``)."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        return {"peak_memory_mb": round(peak, 1), "peak_memory_kind": "cuda_allocated"}
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                kib = int(line.split()[1])
                return {"peak_memory_mb": round(kib / 1024, 1), "peak_memory_kind": "rss"}
    except OSError:
        pass
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_memory_mb": round(kib / 1024, 1), "peak_memory_kind": "process_max_rss"}
