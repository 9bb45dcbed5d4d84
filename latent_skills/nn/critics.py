"""Twin latent critics Q_j(s, z) for LDCQ (stage 3), Polyak averaging and batched candidate scoring."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .normalization import MIN_STD, StateNormalizer


class _QNetwork(nn.Module):
    """MLP on ``[s, z]``: Linear → LayerNorm → GELU per hidden layer, then a linear output.

    The first layer is applied as ``W_s s + W_z z + b`` so the leading shapes of ``s`` and ``z``
    only need to broadcast (``s (B, 1, S)`` against ``z (B, K, D)`` costs no copy of ``s``).
    """

    def __init__(self, state_dim: int, latent_dim: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.input = nn.Linear(state_dim + latent_dim, widths[0])
        self.input_norm = nn.LayerNorm(widths[0])
        hidden: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            hidden += [nn.Linear(n_in, n_out), nn.LayerNorm(n_out), nn.GELU()]
        self.hidden = nn.Sequential(*hidden)
        self.output = nn.Linear(widths[-1], 1)

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        w = self.input.weight
        h = F.linear(s, w[:, : self.state_dim], self.input.bias) + F.linear(z, w[:, self.state_dim :])
        h = self.hidden(F.gelu(self.input_norm(h)))
        return self.output(h).squeeze(-1)


class TwinCritic(nn.Module):
    """Two independent Q-networks Q_j(s, z) (clipped double Q) with a ``StateNormalizer`` inside.

    Each network: ``[normalise(s), z]`` → widths 256-256-256-32 (Linear, LayerNorm, GELU) → 1.
    ``forward`` and ``min_q`` take raw states; the leading shapes of ``s`` and ``z`` broadcast.
    """

    def __init__(
        self,
        state_dim: int,
        latent_dim: int,
        widths: Sequence[int] = (256, 256, 256, 32),
        state_mean: Any = None,
        state_std: Any = None,
        state_min_std: float = MIN_STD,
    ) -> None:
        super().__init__()
        if len(widths) < 1:
            raise ValueError("TwinCritic needs at least one hidden width.")
        self.state_dim, self.latent_dim = state_dim, latent_dim
        self.widths = tuple(int(w) for w in widths)
        self.normalizer = StateNormalizer(state_dim, mean=state_mean, std=state_std, min_std=state_min_std)
        self.q1 = _QNetwork(state_dim, latent_dim, self.widths)
        self.q2 = _QNetwork(state_dim, latent_dim, self.widths)

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``s (..., S)``, ``z (..., D)`` -> both heads' values ``(..., 2)``."""
        s = self.normalizer(s)
        return torch.stack([self.q1(s, z), self.q2(s, z)], -1)

    def min_q(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """min_j Q_j(s, z): ``(..., S)``, ``(..., D)`` -> ``(...)``."""
        return self(s, z).amin(-1)


def q_candidates(critic: TwinCritic, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Score ``K`` candidate latents per state: ``s (B, S)``, ``z (B, K, D)`` -> min_j Q_j ``(B, K)``.

    One batched pass (the state is broadcast over the candidates, not copied); use
    ``scores.argmax(1)`` to pick a latent, or ``scores.amax(1)`` for a max-over-candidates target.
    """
    if s.dim() != 2 or z.dim() != 3 or z.shape[0] != s.shape[0]:
        raise ValueError(f"Expected s (B, S) and z (B, K, D), got {tuple(s.shape)} and {tuple(z.shape)}.")
    return critic.min_q(s.unsqueeze(1), z)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, polyak: float) -> None:
    """Polyak averaging in place: ``target ← polyak · target + (1 − polyak) · source``.

    ``polyak`` is the weight *kept on the target* (the paper's ρ = 0.995; SB3's ``tau`` is
    ``1 − polyak``). Parameters are averaged; buffers (normaliser statistics) are copied, since they
    are set, not learned. Both modules must have the same parameter and buffer names and shapes.
    """
    if not 0.0 <= polyak <= 1.0:
        raise ValueError(f"polyak must be in [0, 1] (the weight kept on the target), got {polyak}.")
    target_params = dict(target.named_parameters())
    source_params = dict(source.named_parameters())
    if target_params.keys() != source_params.keys():
        raise ValueError("polyak_update: target and source have different parameters.")
    for name, p_target in target_params.items():
        p_target.lerp_(source_params[name], 1.0 - polyak)
    target_buffers = dict(target.named_buffers())
    source_buffers = dict(source.named_buffers())
    if target_buffers.keys() != source_buffers.keys():
        raise ValueError("polyak_update: target and source have different buffers.")
    for name, b_target in target_buffers.items():
        b_target.copy_(source_buffers[name])
