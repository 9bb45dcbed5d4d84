"""The time-dependent energy model of energy-guided latent sampling (LatentDiffuser / QGPO).

To sample ``π*(z|s) ∝ p(z|s) · exp(β Q(s, z))`` from a diffusion prior, the score of every noisy
latent needs the *intermediate* energy ``E_t(s, z_t) = log E[exp(β Q(s, z0)) | z_t, s]`` (Lu et al.
2023, "Contrastive Energy Prediction"). ``LatentEnergyModel`` is ``f(s, z_t, t)`` trained to be that
energy up to a per-state constant by :func:`contrastive_energy_loss`; its gradient in ``z_t`` is the
score correction (:meth:`LatentEnergyModel.guidance` hands it to ``diffusion.sample``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from latent_skills.diffusion.sampling import EnergyGuidance

from .denoiser import SinusoidalEmbedding

__all__ = ["LatentEnergyModel", "contrastive_energy_loss"]


class LatentEnergyModel(nn.Module):
    signal_rates: torch.Tensor

    """``f(z_t, t, cond) -> (B,)``: an MLP (SiLU) on ``[α_t z_t, time embedding, cond]``.

    QGPO's intermediate energy network (a sinusoidal embedding of the integer timestep and a linear
    layer, concatenated with the latent and the condition, then ``widths`` hidden layers and a scalar
    output) with one change: given the schedule's ``signal_rates`` α_t = sqrt(ᾱ_t), it reads
    ``α_t z_t`` (the posterior mean of a unit-variance z0) instead of ``z_t``. The exact intermediate
    energy has ``∇E_t = α_t / σ_t² · (E_π*[z0 | z_t] − E_p[z0 | z_t])``: its gradient vanishes with α_t,
    and a z0-predicting sampler multiplies it by σ_t² / α_t. Reading ``α_t z_t`` gives every learned
    ``f`` that factor α_t, so the z0 correction stays bounded at high noise. Without it the first
    step multiplies ∇f by σ_t² / α_t ≈ 180 (T = 200; ~10⁵ at T = 20), and on the toy of
    ``tests/test_latent_diffuser.py`` guided samples came out with *lower* Q than unguided ones.
    """

    def __init__(
        self,
        latent_dim: int,
        cond_dim: int,
        widths: Sequence[int] = (256, 256, 256, 256),
        time_embed_dim: int = 32,
        signal_rates: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if latent_dim < 1 or cond_dim < 0:
            raise ValueError(f"need latent_dim >= 1 and cond_dim >= 0, got {latent_dim} and {cond_dim}")
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive hidden widths, got {widths}")
        self.latent_dim, self.cond_dim, self.widths = int(latent_dim), int(cond_dim), widths
        # set from the diffusion schedule, not learned: rebuilt from the config, never saved
        rates = torch.empty(0) if signal_rates is None else torch.as_tensor(signal_rates, dtype=torch.float32)
        self.register_buffer("signal_rates", rates, persistent=False)
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(time_embed_dim), nn.Linear(time_embed_dim, time_embed_dim)
        )
        layers: list[nn.Module] = []
        n_in = latent_dim + time_embed_dim + cond_dim
        for width in widths:
            layers += [nn.Linear(n_in, width), nn.SiLU()]
            n_in = width
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``z_t (B, D)``, ``t (B,)`` long, ``cond (B, C)`` -> energies ``(B,)``."""
        if z_t.dim() != 2 or z_t.shape[1] != self.latent_dim or t.shape != (z_t.shape[0],):
            raise ValueError(
                f"expected z_t (B, {self.latent_dim}) and t (B,), got {tuple(z_t.shape)} and {tuple(t.shape)}"
            )
        if self.signal_rates.numel():
            z_t = z_t * self.signal_rates[t].to(z_t.dtype)[:, None]
        parts = [z_t, self.time_embed(t)]
        if self.cond_dim:
            if cond is None or cond.shape != (z_t.shape[0], self.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must have shape ({z_t.shape[0]}, {self.cond_dim}), got {got}")
            parts.append(cond)
        return self.net(torch.cat(parts, -1)).squeeze(-1)

    def guidance(self, scale: float = 1.0) -> EnergyGuidance:
        """The ``energy_guidance`` callable of ``diffusion.sample``: ``scale · ∇_{z_t} f(z_t, t, cond)``.

        Gradients flow to ``z_t`` only (not into the parameters), even inside ``torch.no_grad()``.
        """

        def gradient(z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
            with torch.enable_grad():
                z = z_t.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self(z, t, cond).sum(), z)
            return scale * grad

        return gradient


def contrastive_energy_loss(
    energies: torch.Tensor, q_values: torch.Tensor, beta: float, per_state_spread: bool = False
) -> torch.Tensor:
    """CEP: ``−mean_b Σ_k softmax_k(β Q_bk) · log softmax_k(f_bk)``.

    With ``per_state_spread`` the softmax reads ``β (Q_bk − mean_k Q_bk) / std_k Q_bk``: the same
    weights whatever the scale of Q (which grows with training and with the rewards), where a raw
    ``β Q`` turns one-hot as Q grows.

    ``energies (B, K)``: ``f(s_b, z_t^(k), t_b)`` of K prior samples of state ``b``, all noised at one
    ``t_b``; ``q_values (B, K)``: the critic's ``Q(s_b, z0^(k))``. At its minimum ``softmax_k(f)``
    matches ``softmax_k(β Q)`` in expectation, which makes ``f`` the intermediate energy up to a
    per-state constant (that the gradient in ``z`` ignores).
    """
    if energies.dim() != 2 or energies.shape != q_values.shape or energies.shape[1] < 2:
        raise ValueError(
            "energies and q_values must both be (B, K) with K >= 2 samples per state, got "
            f"{tuple(energies.shape)} and {tuple(q_values.shape)}"
        )
    q = q_values.detach()
    if per_state_spread:
        q = (q - q.mean(1, keepdim=True)) / (q.std(1, keepdim=True) + 1e-6)
    targets = torch.softmax(beta * q, dim=1)
    return -(targets * F.log_softmax(energies, dim=1)).sum(1).mean()
