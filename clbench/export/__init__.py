"""Experiment trackers: TensorBoard, Weights & Biases (offline by default), MLflow and CSV.

``scalars`` is the one mapping from a run's evaluations, losses and phases to tracker tags;
``run_log`` applies it to a finished run folder (``command``: ``clbench export``) and ``live``
to a running run (``output.trackers``, through the engine's observers). One module per tracker
(``tensorboard``, ``wandb``, ``mlflow``, ``csv_log``), each a `sink.Sink`; the tracker packages
are imported only when used (pip extras ``tensorboard``, ``wandb``, ``mlflow``, ``loggers``).
"""
