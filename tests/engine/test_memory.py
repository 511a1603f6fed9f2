"""Per-run peak memory: what the run itself adds, not what an earlier run left in the process."""

from __future__ import annotations

import gc
import sys

import pytest
import torch

from clbench.engine import memory
from clbench.engine.memory import peak_memory, reset_peak_memory

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-run peak reset is Linux-only")


def test_peak_counts_what_the_run_allocates_and_not_what_came_before():
    before = torch.ones(40_000_000)  # 160 MB allocated and freed before the run starts
    del before
    start = reset_peak_memory(CPU)
    work = torch.ones(25_000_000)  # 100 MB during the run
    work += 1
    measured = peak_memory(CPU, start)
    del work
    assert measured["peak_memory_kind"] == "rss_above_start"
    assert 90 <= measured["peak_memory_mb"] < 150
    assert measured["peak_rss_mb"] >= start + measured["peak_memory_mb"] - 1


def test_a_later_smaller_run_reports_its_own_smaller_peak():
    start = reset_peak_memory(CPU)
    big = torch.ones(50_000_000)
    big += 1
    first = peak_memory(CPU, start)["peak_memory_mb"]
    del big
    start = reset_peak_memory(CPU)
    small = torch.ones(5_000_000)
    small += 1
    second = peak_memory(CPU, start)["peak_memory_mb"]
    assert first > 150 and second < 60


def test_a_later_run_in_the_process_starts_after_old_cyclic_garbage_is_freed(monkeypatch):
    # an earlier run left 100 MB in a reference cycle that has aged into the oldest generation
    monkeypatch.setattr(memory, "_measured_before", False)
    reset_peak_memory(CPU)  # the earlier run's start
    cycle: list = [torch.ones(25_000_000)]
    cycle.append(cycle)
    gc.collect()  # still referenced: moves it to the oldest generation
    del cycle
    held = memory._status_mb("VmRSS")
    start = reset_peak_memory(CPU)  # the later run: a full collection frees the cycle
    assert start < held - 90
