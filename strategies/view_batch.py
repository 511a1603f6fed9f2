"""View-Batch Model (VBM): recall-interval replay and one-to-many self-supervision.

Kang et al., "Do Your Best and Get Enough Rest for Continual Learning", CVPR 2025
(arXiv:2503.18371; official code hankyul2/ViewBatchModel@ed83f71, iCaRL only). A plugin over any
strategy that routes its batches, memory draws and loss through the strategy API (``er``,
``naive``, ``joint``, ...; the paper wraps ER, DER++, iCaRL and LwF, Table 1); two independent
parts:

- **replay interval** (`replay_interval`): every batch holds B/V unique samples, each repeated as V
  adjacent views, so a sample recurs every B·T·V samples instead of B·T (paper Eq. 2). As in the
  official sampler (``ViewBatchReplay`` in `datasets/utils/continual_dataset.py`), the epoch count
  is unchanged: a *cycle* of V epochs draws one permutation of the phase's N samples and each epoch
  of the cycle takes the next N/V of them, so each unique sample is visited once per V epochs, as V
  views, and every epoch has the strategy's number of batches and (when V divides N) samples.
  Replay draws of a strategy with a memory (`Strategy.sample_memory`) are view-batched too
  (``apply_to``; Table 7 "both").
- **self-supervision** (`ssl`): views 2..V are strongly augmented (`clbench.data.augment`) and
  ``ssl_weight · mean_j KL(p¹ ‖ pʲ)`` (Eq. 3-4) is added to the strategy's loss as a plugin loss
  term, with the first (weak) view as a detached target (official code).

Views are grouped by sample index (runs of equal indices), not by the official code's "same label as
the previous sample" heuristic (`utils/training.py`), so the anchor is always the sample's first
view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from clbench.data.augment import build_augment, noise_views
from clbench.data.batches import PhaseBatches
from clbench.data.stream import Batch
from clbench.errors import ConfigError
from clbench.registry import PLUGINS
from clbench.scenario.plan import PhasePart
from clbench.strategies.specs.view_batch import ViewBatchSpec
from clbench.strategy import (
    LOSS_TERMS,
    MEMORY_DRAWS,
    TRAIN_BATCHES,
    LoopState,
    Plugin,
    Strategy,
    StrategyContext,
)

if TYPE_CHECKING:
    pass


class ViewBatches:
    """``(indices, task ids)`` batches of B/V unique samples, each repeated V times adjacently.

    A cycle of V epochs draws one permutation of the N samples (from ``generator``); epoch j of
    the cycle takes permutation slice ``[j·N//V, (j+1)·N//V)``, so every sample appears in exactly
    one epoch per cycle. Each epoch yields ``len(self)`` batches, the base `PhaseBatches` count:
    full batches of ``batch_size // V`` groups, with the remainder spread so that no batch is
    empty (dropped instead with ``drop_last``, like the default batches' partial one).
    """

    def __init__(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool,
        views: int,
    ) -> None:
        if batch_size % views:
            raise ConfigError(
                "train.batch_size", batch_size, f"a multiple of plugins.view_batch.views ({views})"
            )
        base = PhaseBatches(parts, batch_size, generator, drop_last)
        self.index, self.task, self._len = base.index, base.task, len(base)
        self.views, self.groups = views, batch_size // views
        self.generator, self.drop_last = generator, drop_last
        self.epochs_started = 0
        self._perm = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self._len

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, v = self.index.shape[0], self.views
        j = self.epochs_started % v
        if j == 0:  # a new cycle of V epochs
            self._perm = torch.randperm(n, generator=self.generator)
        self.epochs_started += 1
        unique = self._perm[j * n // v : (j + 1) * n // v]
        b = torch.arange(1, self._len + 1)
        if self.drop_last:
            ends = b * self.groups
        else:  # full batches first; the last batches keep at least one group each
            ends = torch.minimum(b * self.groups, unique.shape[0] - (self._len - b)).clamp_min(0)
        start = 0
        for end in ends.tolist():
            if end > start:
                sel = unique[start:end]
                yield self.index[sel].repeat_interleave(v), self.task[sel].repeat_interleave(v)
            start = max(start, end)


def view_groups(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(is_first_view, group id, view number within the group) of runs of equal indices."""
    first = torch.ones_like(index, dtype=torch.bool)
    first[1:] = index[1:] != index[:-1]
    group = first.long().cumsum(0) - 1
    starts = first.nonzero().flatten()
    level = torch.arange(index.shape[0], device=index.device) - starts[group]
    return first, group, level


@PLUGINS.register("view_batch")
class ViewBatch(ViewBatchSpec, Plugin):
    def __init__(self, config: ViewBatchSpec.Config) -> None:
        super().__init__(config)
        self._ssl_sum = torch.zeros(())
        self._ssl_updates = 0

    def _active(self) -> tuple[bool, bool, bool]:
        """(views differ, KL term on at some epoch, replay draws view-batched)."""
        cfg = self.config
        views = cfg.views > 1
        ssl = views and cfg.ssl and cfg.ssl_weight > 0
        return views, ssl, views and cfg.replay_interval and cfg.apply_to != "current"

    def needs(self, strategy: Strategy) -> frozenset[str]:
        views, ssl, draws = self._active()
        needs = {TRAIN_BATCHES} if views else set()
        if ssl:
            needs.add(LOSS_TERMS)
        if draws and strategy.capabilities.uses_buffer:
            needs.add(MEMORY_DRAWS)
        return frozenset(needs)

    def setup(self, ctx: StrategyContext, strategy: Strategy) -> None:
        super().setup(ctx, strategy)
        ds, policy = ctx.data.dataset, self.config.augment_policy
        if policy in ("autoaugment", "light") and len(ds.input_shape) != 3:
            raise ConfigError(
                "plugins.view_batch.augment_policy",
                policy,
                f"auto or vector for data {ds.name!r}: its inputs are vectors of shape "
                f"{list(ds.input_shape)}, and {policy} augments [C, H, W] images",
            )
        self._augment = build_augment(policy, ds.input_shape, ds.mean, ds.std)
        self._seen = ctx.loop.seen_outputs

    # --- batch composition ---------------------------------------------------------------------
    def phase_batches(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool,
        batches: Any,
    ) -> Any:
        cfg = self.config
        if cfg.replay_interval and cfg.apply_to != "buffer" and cfg.views > 1:
            return ViewBatches(parts, batch_size, generator, drop_last, cfg.views)
        return batches

    def memory_draw(self, memory: Any, n: int, generator: torch.Generator) -> torch.Tensor | None:
        if not self._active()[2]:
            return None
        v = self.config.views
        return memory.sample(max(1, n // v), generator).repeat_interleave(v)

    def before_phase(self, loop: LoopState) -> None:
        self._seen = loop.seen_outputs

    def train_batch(self, batch: Batch) -> Batch:
        return self.augment_views(batch)

    def loss_term(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor | None:
        if not self._active()[1] or self.ctx.loop.epoch < self.config.ssl_start_epoch:
            return None
        return self.ssl_loss(logits, batch)

    # --- reporting and state -------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        cfg = self.config
        n = self._ssl_updates
        return {
            "views": cfg.views,
            "replay_interval": cfg.replay_interval,
            "ssl": cfg.ssl,
            "ssl_terms": n,
            "ssl_mean": float(self._ssl_sum) / n if n else None,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"ssl_sum": self._ssl_sum, "ssl_updates": self._ssl_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._ssl_sum, self._ssl_updates = state["ssl_sum"], state["ssl_updates"]

    # --- the views and the KL term -------------------------------------------------------------
    def _view_positions(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(is weak/first view, view number) per position."""
        if self.config.replay_interval:
            first, _, level = view_groups(batch.index)
            return first, level
        level = torch.arange(len(batch), device=batch.index.device) % self.config.views
        return level == 0, level

    def augment_views(self, batch: Batch) -> Batch:
        """Views 2..V of each sample get the ``view_aug`` augmentation; first views stay as is."""
        cfg = self.config
        if cfg.view_aug == "none" or cfg.views == 1:
            return batch
        first, level = self._view_positions(batch)
        rows = (~first).nonzero().flatten()
        if rows.numel() == 0:
            return batch
        gen = self.ctx.generator
        x_views = batch.x.index_select(0, rows)
        if cfg.view_aug == "strong":
            x_views = self._augment(x_views, gen)
        else:
            x_views = noise_views(x_views, level[rows].float() / (cfg.views - 1), gen)
        x = batch.x.index_copy(0, rows, x_views.to(batch.x.dtype))
        return Batch(x=x, y=batch.y, task=batch.task, index=batch.index)

    def ssl_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``ssl_weight · mean over views j ≥ 2 of KL(p¹ ‖ pʲ)``, p¹ detached (Eq. 3)."""
        cfg = self.config
        first, group, _ = view_groups(batch.index)
        if bool(first.all()):
            return logits.sum() * 0.0
        z = self.ctx.data.mask_logits(logits, batch.task).float()
        if cfg.kl_normalisation == "official_seen_classes":
            z = z[:, self._seen]
        z = torch.where(torch.isfinite(z), z, torch.full_like(z, -1e4))  # task-IL masks: p = 0
        logp = F.log_softmax(z, dim=-1)
        anchor_pos = first.nonzero().flatten()[group]
        target = logp.detach()[anchor_pos]
        kl = (target.exp() * (target - logp)).sum(-1)[~first]
        term = kl.mean()
        if cfg.kl_normalisation == "official_seen_classes":
            term = term / z.shape[1]
        self._ssl_sum = self._ssl_sum.to(term.device) + term.detach()  # no per-step sync
        self._ssl_updates += 1
        return cfg.ssl_weight * term
