"""Supervised pretraining of a timm backbone on a disjoint source, saved as a local checkpoint.

SLCA and its baselines need a pretrained backbone; offline, there are no timm hub weights. This
trains an ordinary run config (usually: a ``class_incremental`` scenario with one experience over
the source classes, e.g. ``class_order: [0, 1, 2, 3, 4]``, strategy ``naive``) with the normal
engine and writes the backbone with `clbench.models.timm_model.save_backbone_checkpoint`, so
``model.pretrained: <out>`` loads it through timm's local-file path. Continual evaluation is
switched off (only the phase-end evaluation on the source test set runs, as a sanity check).

    clbench pretrain configs/slca/pretrain_fmnist04.yaml --out backbones/r18_fmnist04.pth
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clbench.config import RunConfig
from clbench.engine.observer import LOG
from clbench.errors import ConfigError


def pretrain(config: RunConfig, out: str | Path, progress: bool = False) -> dict[str, Any]:
    """Train ``config`` (model ``timm``, random init), save its backbone to ``out``.

    Returns ``{"path", "source_test_acc", "train_s", "updates"}``. Everything is validated
    (config, data, weights suffix) before training starts. ``progress``: a progress bar on
    stderr; without it, a `logging` line (logger ``clbench``) at every tenth of the updates.
    """
    from clbench.engine.runner import Experiment, prepare
    from clbench.models.timm_model import WEIGHT_SUFFIXES, save_backbone_checkpoint

    if config.model.get("name") != "timm":
        raise ConfigError(
            "model.name", config.model.get("name"), "timm (pretrain saves a timm backbone)"
        )
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES or suffix == ".npz":
        raise ConfigError("--out", str(out), "a path ending in .pth, .pt, .bin or .safetensors")
    # no per-update evaluation: only the phase-end full evaluation (source test accuracy)
    config = config.model_copy(
        update={"eval": config.eval.model_copy(update={"every": 10**12, "track_forward": False})}
    )
    exp = Experiment(prepare(config))
    total = exp.total_updates()
    if progress:
        from clbench.engine.progress import ProgressBar

        with ProgressBar(total, f"pretrain {out.name}") as bar:
            exp.run(on_update=lambda _step: bar.advance())
    else:
        tenth = max(1, total // 10)

        def log_progress(step: int) -> None:
            if step % tenth == 0 or step == total:
                LOG.info("pretrain %s: update %d of %d", out.name, step, total)

        exp.run(on_update=log_progress)
    path = save_backbone_checkpoint(exp.model, out)
    frame = exp.log.frame()
    full = frame[(frame["kind"] == "full") & (frame["step"] == frame["step"].max())]
    acc = float(full["correct"].sum() / full["n"].sum()) if len(full) else None
    return {
        "path": str(path),
        "source_test_acc": acc,
        "train_s": exp.timing.train_s,
        "updates": exp.timing.updates,
    }
