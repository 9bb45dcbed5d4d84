"""The temporally abstract world model p(s_{t+H} | s_t, z) of LDCP (Venkatraman et al. 2023, appendix B).

A Gaussian MLP on ``[normalise(s_t), z]`` that predicts the change from ``s_t`` to ``s_{t+H}`` in
normalised-state units, itself standardised by per-dimension statistics of the dataset's changes
(``delta_mean``, ``delta_std``): an H-step change is often far smaller than the spread of the states,
and a unit-scale target trains the mean and the std heads alike. Every statistic is a buffer, so it
is saved with the weights. Methods take and return *raw* states.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .normalization import MIN_STD, StateNormalizer
from .skill_vae import gaussian_log_prob


class SkillWorldModel(nn.Module):
    """p(s_{t+H} | s_t, z) = N(s_t + change mean, change std²), in normalised-state units.

    Hidden layers: Linear → LayerNorm → GELU per width; then a linear mean head and a softplus
    std head (``+ min_std``, keeps the NLL finite on dimensions that never change). The leading
    shapes of ``s`` and ``z`` broadcast (``s (B, 1, S)`` against ``z (B, n, D)``).
    """

    delta_mean: torch.Tensor
    delta_std: torch.Tensor

    def __init__(
        self,
        state_dim: int,
        latent_dim: int,
        widths: Sequence[int] = (256, 256, 256),
        min_std: float = 1e-3,
    ) -> None:
        super().__init__()
        if len(widths) < 1:
            raise ValueError("SkillWorldModel needs at least one hidden width.")
        self.state_dim, self.latent_dim = state_dim, latent_dim
        self.widths = tuple(int(w) for w in widths)
        self.min_std = float(min_std)
        self.normalizer = StateNormalizer(state_dim)
        self.register_buffer("delta_mean", torch.zeros(state_dim))
        self.register_buffer("delta_std", torch.ones(state_dim))
        layers: list[nn.Module] = []
        for n_in, n_out in zip((state_dim + latent_dim, *self.widths[:-1]), self.widths, strict=True):
            layers += [nn.Linear(n_in, n_out), nn.LayerNorm(n_out), nn.GELU()]
        self.body = nn.Sequential(*layers)
        self.mean_head = nn.Linear(self.widths[-1], state_dim)
        self.std_head = nn.Linear(self.widths[-1], state_dim)

    @torch.no_grad()
    def set_delta_stats(self, start: torch.Tensor, end: torch.Tensor) -> None:
        """Standardise the targets with the changes ``normalise(end) − normalise(start)`` of ``(N, S)`` pairs."""
        delta = self.normalizer(end) - self.normalizer(start)
        self.delta_mean.copy_(delta.mean(0))
        self.delta_std.copy_(delta.std(0, unbiased=False).clamp_min(MIN_STD))

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the *standardised change*: ``s (..., S)``, ``z (..., D)`` → two ``(..., S)``."""
        s_norm = self.normalizer(s)
        lead = torch.broadcast_shapes(s_norm.shape[:-1], z.shape[:-1])
        x = torch.cat([s_norm.expand(*lead, -1), z.expand(*lead, -1)], -1)
        h = self.body(x)
        return self.mean_head(h), F.softplus(self.std_head(h)) + self.min_std

    def predict(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The mean end state, raw: ``s (..., S)``, ``z (..., D)`` → ``(..., S)``."""
        change, _ = self(s, z)
        s_norm = self.normalizer(s) + change * self.delta_std + self.delta_mean
        return self.normalizer.inverse(s_norm)

    def loss(self, s: torch.Tensor, z: torch.Tensor, s_end: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gaussian NLL of ``s_end`` (mean over the batch, summed over dimensions) and, to watch,
        the squared error of the mean in normalised-state units (mean over batch and dimensions)."""
        mean, std = self(s, z)
        change = self.normalizer(s_end) - self.normalizer(s)
        target = (change - self.delta_mean) / self.delta_std
        nll = -gaussian_log_prob(target, mean, std).sum(-1).mean()
        mse = ((mean - target) * self.delta_std).square().mean()
        return {"loss": nll, "nll": nll, "mse": mse}
