"""The ``[CONFIG] key.sub=value ...`` arguments of every command that builds a run config.

`clbench run` and `clbench pretrain` (`clbench.cli`) and `clbench plot --schedule`
(`clbench.plotting.command`) take them alike; each command's module lives in its own package, so
what they share lives here, below all of them (argparse only).
"""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """CONFIG (optional YAML; default: the embedded default) and ``key.sub=value`` overrides."""
    parser.add_argument("config", nargs="?", help="YAML config file (optional)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides")


def config_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The optional CONFIG positional may be the first override (`clbench run a.b=1`)."""
    config_path, overrides = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:
        return None, [config_path, *overrides]
    return config_path, overrides
