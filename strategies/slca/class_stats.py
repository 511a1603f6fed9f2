"""Per-class Gaussian feature statistics and pseudo-feature sampling (SLCA's classifier alignment).

Zhang et al., ICCV 2023 (official code GengDavid/SLCA, ``models/slca.py``): when a class is
learned, the mean and covariance of its (frozen-backbone) features are stored, in float64, with
a small ridge on the diagonal (``torch.cov(F.T) + 1e-4 * I``). Later, Gaussian pseudo-features
drawn from them retrain the classifier. Memory is per class: ``d + d*d`` floats, never per
sample. Features are accumulated streaming (sum and sum of outer products), so a class's feature
matrix is never held in memory at once either.
"""

from __future__ import annotations

from typing import Any

import torch


class ClassGaussians:
    """Running per-class sums -> frozen per-class mean and covariance; samples pseudo-features.

    Use: `accumulate` feature batches (any classes, any order), then `finalize` the classes
    just learned; a finalized class is frozen (its statistics are never recomputed, as in the
    official code) and can be sampled with `sample`.
    """

    def __init__(self, dim: int, ridge: float = 1e-4) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        self.dim = dim
        self.ridge = ridge
        self.mean: dict[int, torch.Tensor] = {}  # class -> [d] float64 (CPU)
        self.cov: dict[int, torch.Tensor] = {}  # class -> [d, d] float64 (CPU), ridge included
        self.count: dict[int, int] = {}
        self._chol: dict[int, torch.Tensor] = {}  # cache of cholesky(cov)
        self._sum: dict[int, torch.Tensor] = {}
        self._outer: dict[int, torch.Tensor] = {}
        self._n: dict[int, int] = {}

    @property
    def classes(self) -> list[int]:
        """Finalized classes, sorted."""
        return sorted(self.mean)

    def accumulate(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of features ``[B, d]`` with their class ids ``[B]``."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must be [B, {self.dim}], got {tuple(features.shape)}")
        f = features.detach().to(torch.float64)
        labels = labels.detach()
        for c in torch.unique(labels).tolist():
            fc = f[labels == c]
            # sums on the features' device (GPU if any); moved to CPU once, in `finalize`
            if c not in self._sum:
                self._sum[c] = torch.zeros(self.dim, dtype=torch.float64, device=f.device)
                self._outer[c] = torch.zeros(
                    self.dim, self.dim, dtype=torch.float64, device=f.device
                )
                self._n[c] = 0
            self._sum[c] += fc.sum(0)
            self._outer[c] += fc.T @ fc
            self._n[c] += fc.shape[0]

    def finalize(self) -> list[int]:
        """Turn the accumulated sums into frozen mean/covariance; return the classes finalized.

        Covariance is the unbiased sample covariance (``torch.cov``) plus ``ridge * I``; a class
        with a single sample gets ``ridge * I``.
        """
        done = []
        for c, s in self._sum.items():
            n = self._n[c]
            mean = s / n
            if n > 1:
                cov = (self._outer[c] - n * torch.outer(mean, mean)) / (n - 1)
                cov = (cov + cov.T) / 2  # exact symmetry despite rounding
            else:
                cov = torch.zeros_like(self._outer[c])
            cov = cov + self.ridge * torch.eye(self.dim, dtype=torch.float64, device=cov.device)
            self.mean[c], self.cov[c], self.count[c] = mean.cpu(), cov.cpu(), n
            self._chol.pop(c, None)
            done.append(c)
        self._sum.clear()
        self._outer.clear()
        self._n.clear()
        return sorted(done)

    def _cholesky(self, c: int) -> torch.Tensor:
        if c not in self._chol:
            cov = self.cov[c]
            chol, info = torch.linalg.cholesky_ex(cov)
            if int(info) != 0:  # not positive definite (ridge 0, rank-deficient): jitter
                jitter = 1e-6 * float(cov.diagonal().mean().clamp_min(1e-12))
                eye = torch.eye(self.dim, dtype=cov.dtype)
                chol = torch.linalg.cholesky(cov + jitter * eye)
            self._chol[c] = chol
        return self._chol[c]

    def sample(
        self,
        classes: list[int],
        per_class: int,
        generator: torch.Generator | None = None,
        mean_scale: dict[int, float] | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``per_class`` features from N(scale_c * mu_c, Sigma_c) for each class.

        Returns float32 features ``[len(classes) * per_class, d]`` on ``device`` and their class
        ids, grouped by class (shuffle before batching). ``generator`` (CPU) makes it seeded.
        """
        feats, labels = [], []
        for c in classes:
            if c not in self.mean:
                raise KeyError(f"no statistics for class {c}")
            z = torch.randn(per_class, self.dim, generator=generator, dtype=torch.float64)
            scale = 1.0 if mean_scale is None else mean_scale.get(c, 1.0)
            feats.append(scale * self.mean[c] + z @ self._cholesky(c).T)
            labels.append(torch.full((per_class,), c, dtype=torch.long))
        x = torch.cat(feats).to(device=device, dtype=torch.float32)
        return x, torch.cat(labels).to(device)

    def nbytes(self) -> int:
        """Memory of the stored statistics (means and covariances)."""
        return sum(t.numel() * t.element_size() for d in (self.mean, self.cov) for t in d.values())

    def state_dict(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "ridge": self.ridge,
            "mean": dict(self.mean),
            "cov": dict(self.cov),
            "count": dict(self.count),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dim, self.ridge = int(state["dim"]), float(state["ridge"])
        self.mean, self.cov = dict(state["mean"]), dict(state["cov"])
        self.count = dict(state["count"])
        self._chol.clear()
