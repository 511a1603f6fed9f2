"""`clbench sweep`: expand a suite YAML into run configs and run them on a process pool, Ray or
SLURM.

- `suite`: the suite schema and its deterministic expansion into validated run configs;
- `executors`: the worker body (one `run_job` call) and the local-pool and Ray executors;
- `slurm`: SLURM array jobs through submitit, requeued from their checkpoint when preempted;
- `devices`: ``--gpus-per-run``, and which GPU(s) each local worker gets;
- `gtep`: the two-phase hyperparameter protocol (tune on one scenario, evaluate on another);
- `progress` and `state`: what the user sees while it runs and the ``sweep.json`` it leaves;
- `command`: the command line and the order of the steps.
"""
