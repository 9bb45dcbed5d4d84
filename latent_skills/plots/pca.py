"""Principal component analysis in a few lines of numpy (no scikit-learn dependency)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCA:
    """A linear projection onto the directions of largest variance of the data it was fitted on.

    ``components`` holds one unit direction per row, by decreasing variance; each is signed so that its
    largest-magnitude entry is positive, so the same data always gives the same axes.
    """

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D)
    explained_variance_ratio: np.ndarray  # (k,)

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int = 2) -> PCA:
        """Fit on ``x (N, D)``. Where ``D < n_components`` the missing axes are zero (they project to 0)."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"PCA needs at least 2 points as an (N, D) array, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("PCA input holds NaN or inf")
        mean = x.mean(0)
        _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(n_components, vt.shape[0])
        components = np.zeros((n_components, x.shape[1]))
        components[:k] = vt[:k]
        signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(1)])
        components *= np.where(signs == 0, 1.0, signs)[:, None]
        variance = np.square(singular)
        ratio = np.zeros(n_components)
        ratio[:k] = variance[:k] / variance.sum() if variance.sum() > 0 else 0.0
        return cls(mean, components, ratio)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project ``x (..., D)`` onto the components: ``(..., k)``."""
        x = np.asarray(x, np.float64)
        if x.shape[-1] != len(self.mean):
            raise ValueError(f"PCA was fitted on {len(self.mean)}-dim data, got shape {x.shape}")
        return (x - self.mean) @ self.components.T
