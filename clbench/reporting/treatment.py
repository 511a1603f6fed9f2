"""The treatment of a study: config keys a table varies on purpose (``--treatment KEY``).

A report normally treats runs of another data stream, scenario or evaluation protocol as another
benchmark: their rows are footnoted as not comparable and compete for no best value
(`clbench.reporting.comparability`). A study that compares settings of one scenario family on
purpose, say the lag kernels of a power-law rehearsal environment (``scenario.kernel``), declares
that axis as its treatment. Each treatment key then

* is a row key, so every value is its own row, named in the label (``scenario.kernel=power``);
* is left out of the comparability check, so the rows compete for best values as strategies do;

while every other comparability setting is still checked across the rows: a run with another
``scenario.n_experiences`` is flagged as before. A treatment ``<section>.name`` (another scenario
or dataset) compares the section's other keys only between rows of the same name, since other
components have other parameters as a matter of course.

Keys are refused unless they are identifying config keys that vary between the reported runs: a
misspelt or constant key would silently change nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from clbench.errors import ConfigError
from clbench.results.labels import distinguishes_results
from clbench.results.reader import NON_IDENTIFYING, identifying_config, varying_keys

OPTION = "--treatment"
_ABSENT = object()  # a key the run's config lacks (another component, or a typo)


def check_treatment(
    keys: Sequence[str],
    configs: Sequence[dict[str, Any]],
    *,
    option: str = OPTION,
    row_split: Sequence[str] = (),
    split_option: str = "--split-by",
) -> list[str]:
    """``keys`` without repeats, each checked against the runs' resolved ``configs``.

    A key must be an identifying config key (not seed, output, threads, device or tags) that
    can change results and takes two or more values among ``configs``, and must not be one of
    ``row_split`` (the ``split_option`` keys that give each value its own table: a treatment is
    compared within a table). Raises `ConfigError` naming ``option``, the key and what is allowed.
    """
    if isinstance(keys, str):  # one key given bare, not as a list of characters
        keys = [keys]
    varying = varying_keys(configs)
    for key in keys:
        if key in varying and distinguishes_results(key) and key not in row_split:
            continue
        if key in row_split:
            raise ConfigError(
                option,
                key,
                f"a key that is not also a {split_option} key (a treatment is compared within "
                "one table)",
            )
        raise ConfigError(option, key, _allowed(key, varying, configs))
    return list(dict.fromkeys(keys))


def _allowed(key: str, varying: Sequence[str], configs: Sequence[dict[str, Any]]) -> str:
    """What ``--treatment`` accepts, with why ``key`` is not among it."""
    if key in varying:
        why = f"{key} never changes a result"
    elif key.startswith("tags.") or key.split(".", 1)[0] in NON_IDENTIFYING:
        why = "seeds, tags, output, threads and device are no treatment"
    else:
        values = {identifying_config(config).get(key, _ABSENT) for config in configs}
        constant = len(values) == 1 and _ABSENT not in values
        close = difflib.get_close_matches(key, varying, n=3)
        if constant:
            why = f"{key} is {next(iter(values))!r} in every run"
        elif close:
            why = f"close matches: {', '.join(close)}"
        else:
            why = "no config key of the runs"
    varying = [k for k in varying if distinguishes_results(k)]
    if not varying:
        return f"a config key that varies between the runs ({why}); none varies"
    return f"a config key that varies between the runs ({why}): {', '.join(varying)}"


def stratum_key(key: str, treatment: Sequence[str]) -> str | None:
    """The treatment ``<section>.name`` whose rows ``key`` is compared within, else None: with
    ``scenario.name`` a treatment, ``scenario.kernel`` is only compared between rows of the same
    scenario (a class-incremental run has no kernel at all)."""
    owners = [
        name
        for name in treatment
        if name.endswith(".name") and key.startswith(name.removesuffix("name"))
    ]
    return max(owners, key=len) if owners else None  # the innermost section decides
