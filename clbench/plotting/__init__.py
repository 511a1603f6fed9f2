"""Figures drawn from run folders and scenario plans (matplotlib, imported inside functions).

One module per figure kind — ``curves`` (per-task accuracy vs update), ``gap`` (zoom after each
task boundary), ``bars`` (summary metrics), ``matrix`` (phase-end accuracy matrix), ``schedule``
(a scenario's task x phase sample counts) — plus what they share: ``settings`` (runs grouped into
settings), ``run_data`` (what a figure reads from a run folder), ``seeds`` (statistics over seeds)
and ``figure`` (backend and saving). ``command`` is ``clbench plot``.
"""
