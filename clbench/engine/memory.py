"""Peak memory of one run, comparable between runs even when one process runs many (a sweep).

On a GPU: the CUDA memory allocated at the peak (statistics reset at the run's start). On CPU
(Linux): how far the resident set rose above its level at the run's start. Before the start
level is taken, garbage is collected and freed heap pages go back to the system
(``malloc_trim``; a full collection only from the process's second run on, see
`reset_peak_memory`), and the kernel's peak counter is reset (``/proc/self/clear_refs``), so memory
left over from an earlier run in the same worker is not counted. Elsewhere the process's
lifetime peak (``ru_maxrss``) is all there is.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
from pathlib import Path
from typing import Any

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
# Whether this process has measured a run before (a sweep worker's or a notebook's later runs).
_measured_before = False


def _status_mb(field: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    return None


def reset_peak_memory(device: torch.device) -> float | None:
    """Start measuring; returns the CPU resident set (MB) the run starts from (None on GPU or
    where it cannot be read)."""
    global _measured_before
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return None
    # A full collection walks every object torch's import made (about 0.2 s on 2 cores); only an
    # earlier run in this process can have left cyclic garbage worth that, so a first run
    # collects the young generations only.
    gc.collect(2 if _measured_before else 1)
    _measured_before = True
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give freed heap pages back
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")  # "5": reset the peak resident set (Linux >= 4.0)
    return _status_mb("VmRSS")


def peak_memory(device: torch.device, start_mb: float | None) -> dict[str, Any]:
    """``peak_memory_mb`` (what the run itself needed at its peak), the absolute peak and what
    they measure."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        return {"peak_memory_mb": round(peak, 1), "peak_memory_kind": "cuda_allocated"}
    peak = _status_mb("VmHWM")
    if peak is not None and start_mb is not None:
        return {
            "peak_memory_mb": round(max(0.0, peak - start_mb), 1),
            "peak_rss_mb": round(peak, 1),
            "peak_memory_kind": "rss_above_start",
        }
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_memory_mb": round(kib / 1024, 1), "peak_memory_kind": "process_max_rss"}
