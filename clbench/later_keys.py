"""Parameters added to a component after runs were made with it.

A run is named by the hash of its resolved config, and a scenario plan by the hash of its
content, parameters included. A parameter added later resolves to its default in every new
config, which would rename every earlier run and change every earlier plan's hash although
nothing about them changed. Such a parameter is therefore left out of both hashes while it is
unset (None), so runs and plans made before it existed keep their names and hashes.
"""

from __future__ import annotations

from typing import Any

# scenario parameters: class- and task-incremental `train_samples_per_class`
LATER_COMPONENT_KEYS = frozenset({"train_samples_per_class"})


def without_unset_later_keys(params: Any) -> Any:
    """``params`` less the later-added keys left unset, at any depth (a power-law or
    recurrence scenario holds its base scenario's parameters)."""
    if isinstance(params, dict):
        return {
            k: without_unset_later_keys(v)
            for k, v in params.items()
            if not (k in LATER_COMPONENT_KEYS and v is None)
        }
    return params
