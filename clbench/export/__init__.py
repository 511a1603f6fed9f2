"""Export of run folders to experiment trackers: TensorBoard event files and offline Weights &
Biases runs. ``run_log`` gathers what is logged (the same for both); one module per tracker; the
trackers are imported only when used (pip extra ``loggers``). ``command`` is ``clbench export``.
"""
