"""How busy the machine is with *other* processes while a benchmark times something, and the
device-synchronised stopwatch the benchmarks time with.

Shared by the benchmark scripts (run as files: ``python benchmarks/<name>.py`` puts this folder on
the import path). On 2 cores, another busy process distorts torch timings many-fold, so timed
blocks measure the foreign CPU share and the scripts mark or skip loaded runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import torch

QUIET = 0.10  # runs during which other processes used more of the CPU than this are "loaded"


def say(message: str = "") -> None:
    print(message, flush=True)


def _busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    """CPU seconds used by this process and its children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class ForeignLoad:
    """Share of the machine's CPU used by *other* processes while a block runs.

    With 2 intra-op threads on 2 cores, one busy foreign process can stall every parallel torch
    op for a scheduler time slice (measured here: a whole clbench run 20-25x slower while another
    process kept one core busy), while code that spends its time in Python, such as Avalanche's
    loops, slows down far less; ratios taken under foreign load are meaningless. So each timed
    block first waits (within ``--max-wait`` in all) for the machine to be quiet, the figures come
    from quiet runs, and the report marks any that could not ("NOISY").
    """

    share: float | None = None
    wait_budget_s = 0.0  # total time the script may still spend waiting for a quiet machine
    probed_s = 0.0  # time spent checking for (and waiting for) quiet

    def __init__(self, wait: bool = True) -> None:
        self.wait = wait

    def __enter__(self) -> ForeignLoad:
        if self.wait:
            self.wait_for_quiet()
        self.start, self.busy, self.own = time.perf_counter(), _busy_s(), _own_s()
        return self

    @classmethod
    def wait_for_quiet(cls) -> None:
        """Before a timed run, wait (within ``wait_budget_s``) for half a second of quiet."""
        announced = False
        while cls.wait_budget_s > 0:
            with ForeignLoad(wait=False) as probe:
                time.sleep(0.5)
            cls.probed_s += 0.5
            if probe.share is None or probe.share <= QUIET:
                break
            if not announced:
                say(f"  (other processes use {probe.text()} of the CPU: waiting for quiet)")
                announced = True
            cls.wait_budget_s -= 0.5

    def __exit__(self, *exc: object) -> None:
        busy = _busy_s()
        elapsed = time.perf_counter() - self.start
        if busy is not None and self.busy is not None and elapsed > 0:
            foreign = (busy - self.busy) - (_own_s() - self.own)
            self.share = max(0.0, foreign) / (elapsed * (os.cpu_count() or 1))

    def text(self) -> str:
        return "n/a" if self.share is None else f"{100 * self.share:.0f}%"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def stopwatch(out: list[float], device: torch.device) -> Iterator[None]:
    """Append the wall time of the block (device work included) to ``out``."""
    sync(device)
    start = time.perf_counter()
    yield
    sync(device)
    out.append(time.perf_counter() - start)
