"""Built-in scenario generators, one module per family.

Each module registers a `clbench.scenario.ScenarioBuilder` subclass in `clbench.registry.SCENARIOS`
(``class_incremental``, ``task_incremental``, ``domain_incremental``, ``joint``); the registry
imports every public module of this package on first lookup. Modules starting with ``_`` hold
shared helpers and are not scanned.
"""
