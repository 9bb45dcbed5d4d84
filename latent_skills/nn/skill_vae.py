"""The skill β-VAE over H-step windows (stage 1): encoder q(z|τ), decoder π(a|s,z), prior p(z|s0).

Conventions shared by every module here:

- ``SkillVAE``'s methods take *raw* states; it normalises them with its own ``StateNormalizer``.
  Its sub-modules (``SkillEncoder``, ``AutoregressiveDecoder``, ``GaussianPrior``) take states that are
  *already normalised* — call them through ``SkillVAE`` unless you normalise yourself.
- Windows are ``(B, H, ·)`` padded to H, with ``mask (B, H)`` bool: True for a real step, the real
  steps a prefix (a window cut short by the episode's end). Padding never influences any output.
- Actions are not normalised (offline RL datasets keep them in a bounded box).
- Randomness comes from an optional ``generator``, which must live on the module's device
  (``torch.Generator(device)``); without one the global RNG is used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .normalization import MIN_STD, StateNormalizer

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, std²)."""
    return -0.5 * ((x - mean) / std).square() - std.log() - _HALF_LOG_2PI


def gaussian_kl(
    mean_q: torch.Tensor, std_q: torch.Tensor, mean_p: torch.Tensor, std_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean_q, std_q²) ‖ N(mean_p, std_p²)) of diagonal Gaussians, summed over the last axis."""
    var_ratio = (std_q / std_p).square()
    term = ((mean_q - mean_p) / std_p).square()
    return 0.5 * (var_ratio + term - 1.0 - var_ratio.log()).sum(-1)


def check_mask(mask: torch.Tensor | None, batch: int, length: int, device: Any) -> torch.Tensor:
    """Validate a ``(B, T)`` window mask (None = every step real) and return it as bool."""
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    mask = torch.as_tensor(mask, device=device).bool()
    if mask.shape != (batch, length):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {(batch, length)}.")
    lengths = mask.sum(1)
    if (lengths == 0).any():
        raise ValueError("Every window needs at least one real step (a row of mask is all False).")
    prefix = torch.arange(length, device=mask.device) < lengths[:, None]
    if not torch.equal(prefix, mask):
        raise ValueError("mask must mark a prefix of each window as real (True...True False...).")
    return mask


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _bounds(values: Any, dim: int, fill: float, name: str) -> torch.Tensor:
    if values is None:
        return torch.full((dim,), fill)
    tensor = torch.as_tensor(np.asarray(values, np.float32) if not torch.is_tensor(values) else values)
    tensor = tensor.detach().float().cpu().reshape(-1)
    if tensor.numel() == 1:
        tensor = tensor.expand(dim).clone()
    if tensor.numel() != dim:
        raise ValueError(f"{name} has {tensor.numel()} entries, the action space {dim}.")
    return tensor


class SkillEncoder(nn.Module):
    """q(z|τ): per-step state MLP, ``[emb(s_t), a_t]`` into a bidirectional GRU, both directions'
    final states (of the top layer) pooled, then 2-layer mean and softplus-std heads.

    The sequence is packed by the mask's lengths, so the forward direction ends at the last *real*
    step and the backward direction starts there and ends at step 0: padding never enters the GRU.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        latent_dim: int,
        hidden: int = 256,
        num_layers: int = 2,
        min_std: float = 1e-4,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.min_std = float(min_std)
        self.state_mlp = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.gru = nn.GRU(
            hidden + action_dim, hidden, num_layers=num_layers, batch_first=True, bidirectional=True
        )
        self.mean_head = _mlp([2 * hidden, hidden, latent_dim])
        self.std_head = _mlp([2 * hidden, hidden, latent_dim])

    def features(
        self, states: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled ``(B, 2·hidden)``: [forward final state, backward final state] of the top layer.

        Full-length windows (nearly all of them) run through the GRU as one dense batch, the short
        ones packed: on a CPU the packed GRU costs up to 1.6× the dense one (BENCHMARKS.md), and on
        full windows the two compute the same thing."""
        batch, length = states.shape[:2]
        mask = check_mask(mask, batch, length, states.device)
        lengths = mask.sum(1).cpu()
        full = lengths == length
        if bool(full.all()):
            return self._dense_features(states, actions)
        if not bool(full.any()):
            return self._packed_features(states, actions, lengths)
        full_rows, short_rows = full.nonzero().squeeze(1), (~full).nonzero().squeeze(1)
        dense = self._dense_features(states[full_rows], actions[full_rows])
        packed = self._packed_features(states[short_rows], actions[short_rows], lengths[short_rows])
        out = dense.new_zeros(batch, dense.shape[-1])
        rows = full_rows.to(states.device), short_rows.to(states.device)
        return out.index_copy(0, rows[0], dense).index_copy(0, rows[1], packed)

    def _dense_features(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        _, h_n = self.gru(torch.cat([self.state_mlp(states), actions], -1))
        return torch.cat([h_n[-2], h_n[-1]], -1)

    def _packed_features(
        self, states: torch.Tensor, actions: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        # Pack the raw inputs first and embed only the real steps: padded values are never read.
        packed = pack_padded_sequence(
            torch.cat([states, actions], -1), lengths, batch_first=True, enforce_sorted=False
        )
        s, a = packed.data.split([states.shape[-1], actions.shape[-1]], -1)
        packed = packed._replace(data=torch.cat([self.state_mlp(s), a], -1))
        _, h_n = self.gru(packed)  # (num_layers·2, B, hidden), in the batch's original order
        return torch.cat([h_n[-2], h_n[-1]], -1)

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, each ``(B, latent_dim)``."""
        feats = self.features(states, actions, mask)
        return self.mean_head(feats), F.softplus(self.std_head(feats)) + self.min_std


class _StackedLinear(nn.Module):
    """``n`` independent ``Linear(in, out)`` layers run in parallel: ``(..., n, in) -> (..., n, out)``.

    Layer ``i`` is initialised like ``nn.Linear`` with fan-in ``fan_in[i]`` (default ``in``).
    """

    def __init__(self, n: int, in_features: int, out_features: int, fan_in: list[int] | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n, out_features))
        bounds = torch.tensor([1.0 / math.sqrt(f) for f in (fan_in or [in_features] * n)])
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0).mul_(bounds[:, None, None])
            self.bias.uniform_(-1.0, 1.0).mul_(bounds[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ni,nio->...no", x, self.weight) + self.bias

    def one(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Layer ``i`` alone on ``(..., in)``."""
        return x @ self.weight[i] + self.bias[i]


class AutoregressiveDecoder(nn.Module):
    """π(a|s,z) = Π_i N(a_i; μ_i(s, z, a_<i), σ_i(s, z, a_<i)²), one MLP per action dimension.

    MLP ``i`` (input ``[s, z, a_<i]``): 2 × ``hidden`` ReLU layers, then a mean head and a softplus
    std head (each ``hidden`` ReLU + linear). The A MLPs are stored stacked and evaluated together:
    the first layer's weights on ``a`` are masked strictly lower-triangular (dim i sees a_j, j < i),
    which is exactly A separate MLPs on inputs of widths S + D + i — teacher forcing costs one
    batched pass, sampling A small passes.

    ``action_low``/``action_high`` (buffers, default ∓inf) bound the actions ``act`` returns; each
    sampled dimension is clipped before the next dimensions condition on it.
    """

    action_low: torch.Tensor
    action_high: torch.Tensor
    action_mask: torch.Tensor

    def __init__(
        self,
        state_dim: int,
        latent_dim: int,
        action_dim: int,
        hidden: int = 256,
        min_std: float = 1e-3,
        action_low: Any = None,
        action_high: Any = None,
    ) -> None:
        super().__init__()
        self.state_dim, self.latent_dim, self.action_dim = state_dim, latent_dim, action_dim
        self.hidden = hidden
        self.min_std = float(min_std)
        fan_in = [state_dim + latent_dim + i for i in range(action_dim)]
        # first layer: [s, z] part (all dims at once) + masked a_<i part
        self.context = nn.Linear(state_dim + latent_dim, action_dim * hidden)
        self.action_weight = nn.Parameter(torch.empty(action_dim, action_dim, hidden))
        with torch.no_grad():
            bounds = torch.tensor([1.0 / math.sqrt(f) for f in fan_in])
            self.context.weight.view(action_dim, hidden, -1).uniform_(-1, 1).mul_(bounds[:, None, None])
            self.context.bias.view(action_dim, hidden).uniform_(-1, 1).mul_(bounds[:, None])
            self.action_weight.uniform_(-1, 1).mul_(bounds[:, None, None])
        self.register_buffer(
            "action_mask",
            torch.ones(action_dim, action_dim).tril(-1)[..., None],  # [i, j] = 1 iff j < i
            persistent=False,
        )
        self.layer2 = _StackedLinear(action_dim, hidden, hidden)
        self.mean_hidden = _StackedLinear(action_dim, hidden, hidden)
        self.mean_out = _StackedLinear(action_dim, hidden, 1)
        self.std_hidden = _StackedLinear(action_dim, hidden, hidden)
        self.std_out = _StackedLinear(action_dim, hidden, 1)
        low = _bounds(action_low, action_dim, -math.inf, "action_low")
        high = _bounds(action_high, action_dim, math.inf, "action_high")
        if (low > high).any():
            raise ValueError("action_low exceeds action_high.")
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    def _heads(self, h1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h2 = F.relu(self.layer2(F.relu(h1)))
        mean = self.mean_out(F.relu(self.mean_hidden(h2))).squeeze(-1)
        std = F.softplus(self.std_out(F.relu(self.std_hidden(h2))).squeeze(-1)) + self.min_std
        return mean, std

    def forward(
        self, states: torch.Tensor, z: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced ``(mean, std)``, each ``(..., A)``: entry i from ``[s, z, actions_<i]``.

        ``states (..., S)``, ``z (..., D)``, ``actions (..., A)`` with equal leading shapes.
        """
        context = self.context(torch.cat([states, z], -1))
        context = context.unflatten(-1, (self.action_dim, self.hidden))
        weight = self.action_weight * self.action_mask
        h1 = context + torch.einsum("...j,ijh->...ih", actions, weight)
        return self._heads(h1)

    def log_prob(self, states: torch.Tensor, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π(a|s,z) summed over action dimensions.

        ``states (B, H, S)``, ``z (B, D)`` (one latent per window) or ``(B, H, D)``,
        ``actions (B, H, A)`` -> ``(B, H)``; any leading shape works when ``z`` matches it.
        """
        if z.dim() == states.dim() - 1:
            z = z.unsqueeze(-2).expand(*states.shape[:-1], z.shape[-1])
        mean, std = self(states, z, actions)
        return gaussian_log_prob(actions, mean, std).sum(-1)

    def act(
        self,
        states: torch.Tensor,
        z: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``states (B, S)``, ``z (B, D)`` -> actions ``(B, A)``, one dimension after the other.

        Deterministic: each dimension is its mean given the earlier (clipped) means.
        """
        context = self.context(torch.cat([states, z], -1))
        context = context.unflatten(-1, (self.action_dim, self.hidden))
        previous: list[torch.Tensor] = []
        for i in range(self.action_dim):
            h = context[..., i, :]
            if i:
                h = h + torch.stack(previous, -1) @ self.action_weight[i, :i]
            h = F.relu(self.layer2.one(F.relu(h), i))
            mean = self.mean_out.one(F.relu(self.mean_hidden.one(h, i)), i).squeeze(-1)
            if deterministic:
                a_i = mean
            else:
                std = F.softplus(self.std_out.one(F.relu(self.std_hidden.one(h, i)), i)).squeeze(-1)
                std = std + self.min_std
                noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
                a_i = mean + std * noise
            previous.append(a_i.clamp(self.action_low[i], self.action_high[i]))
        return torch.stack(previous, -1)


class GaussianPrior(nn.Module):
    """p(z|s0) = N(μ(s0), σ(s0)²): 2-layer ReLU MLP, linear mean head, softplus std head."""

    def __init__(self, state_dim: int, latent_dim: int, hidden: int = 256, min_std: float = 1e-4) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.min_std = float(min_std)
        self.trunk = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.mean_head = nn.Linear(hidden, latent_dim)
        self.std_head = nn.Linear(hidden, latent_dim)

    def forward(self, s0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s0 (..., S)`` -> ``(mean, std)``, each ``(..., D)``."""
        h = self.trunk(s0)
        return self.mean_head(h), F.softplus(self.std_head(h)) + self.min_std

    def sample(self, s0: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``s0 (B, S)`` -> ``n`` latents per state, ``(B, n, D)``."""
        mean, std = self(s0)
        noise = torch.randn(
            (*mean.shape[:-1], n, mean.shape[-1]),
            generator=generator,
            device=mean.device,
            dtype=mean.dtype,
        )
        return mean.unsqueeze(-2) + std.unsqueeze(-2) * noise


class SkillVAE(nn.Module):
    """The skill β-VAE: ``normalizer``, ``encoder`` q(z|τ), ``decoder`` π(a|s,z), ``prior`` p(z|s0).

    Every method takes raw (unnormalised) states. Paper settings: ``latent_dim=16``, ``hidden=256``,
    two stacked bidirectional GRU layers, β = 0.05, lr 5e-5, batch 128.

    Std floors: posterior and prior stds are ``softplus(·) + 1e-4`` (keeps the KL finite when a
    weakly-penalised posterior collapses); decoder stds ``softplus(·) + 1e-3`` (caps the per-dimension
    log-likelihood at ≈ 6 nats, so near-deterministic actions cannot drive the NLL gradient to
    infinity, and is still far below any meaningful action noise for actions in [-1, 1]).
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        horizon: int,
        latent_dim: int = 16,
        hidden: int = 256,
        gru_layers: int = 2,
        encoder_min_std: float = 1e-4,
        decoder_min_std: float = 1e-3,
        prior_min_std: float = 1e-4,
        action_low: Any = None,
        action_high: Any = None,
        state_mean: Any = None,
        state_std: Any = None,
        state_min_std: float = MIN_STD,
    ) -> None:
        super().__init__()
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}.")
        self.state_dim, self.action_dim, self.latent_dim = state_dim, action_dim, latent_dim
        self.horizon, self.hidden = horizon, hidden
        self.normalizer = StateNormalizer(state_dim, mean=state_mean, std=state_std, min_std=state_min_std)
        self.encoder = SkillEncoder(state_dim, action_dim, latent_dim, hidden, gru_layers, encoder_min_std)
        self.decoder = AutoregressiveDecoder(
            state_dim, latent_dim, action_dim, hidden, decoder_min_std, action_low, action_high
        )
        self.prior = GaussianPrior(state_dim, latent_dim, hidden, prior_min_std)

    def _check(self, states: torch.Tensor, actions: torch.Tensor) -> None:
        if states.dim() != 3 or actions.dim() != 3 or states.shape[:2] != actions.shape[:2]:
            raise ValueError(
                f"Expected states (B, H, {self.state_dim}) and actions (B, H, {self.action_dim}), "
                f"got {tuple(states.shape)} and {tuple(actions.shape)}."
            )
        if states.shape[-1] != self.state_dim or actions.shape[-1] != self.action_dim:
            raise ValueError(
                f"Expected state dim {self.state_dim} and action dim {self.action_dim}, got "
                f"{states.shape[-1]} and {actions.shape[-1]}."
            )

    def encode(
        self, states: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mean, std)``, each ``(B, D)``, of windows ``(B, H, ·)`` with ``mask (B, H)``."""
        self._check(states, actions)
        mask = check_mask(mask, states.shape[0], states.shape[1], states.device)
        return self.encoder(self.normalizer(states), actions, mask)

    def log_prob(self, states: torch.Tensor, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π(a_t|s_t, z) for every step: ``(B, H, S)``, ``(B, D)``, ``(B, H, A)`` -> ``(B, H)``."""
        return self.decoder.log_prob(self.normalizer(states), z, actions)

    def act(
        self,
        states: torch.Tensor,
        z: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One low-level action per state: ``(B, S)``, ``(B, D)`` -> ``(B, A)`` (clipped to bounds)."""
        return self.decoder.act(self.normalizer(states), z, deterministic, generator)

    def prior_params(self, s0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z|s0) as ``(mean, std)``, each ``(..., D)``."""
        return self.prior(self.normalizer(s0))

    def sample_prior(
        self, s0: torch.Tensor, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` latents from p(z|s0) per state: ``(B, S)`` -> ``(B, n, D)``."""
        return self.prior.sample(self.normalizer(s0), n, generator)

    def loss(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        mask: torch.Tensor | None = None,
        beta: float = 0.05,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The negative β-ELBO of a batch of windows.

        ``loss = (Σ_windows Σ_real steps −log π(a_t|s_t,z) + β Σ_windows KL(q(z|τ) ‖ p(z|s0))) / n``
        with ``n`` the number of real steps in the batch and ``z ~ q`` reparameterised (noise from
        ``generator``). Dividing the whole per-window ELBO by the step count keeps the paper's
        relative weighting of the two terms (β = 0.05 means what it meant there; with full windows
        this is the reference's per-step scale, −Σ log π / (B·H) + β·ΣKL / (B·H)), keeps the loss
        scale independent of H, and lets a short window weigh in proportion to its real steps.

        Returns ``loss`` (to minimise), ``nll`` (−log π per real step, summed over action dims) and
        ``kl`` (per window), all scalars; only ``loss`` needs gradients. ``noise`` ``(B, D)``: the
        reparameterisation's standard normal draws, given instead of drawn from ``generator``.
        """
        self._check(states, actions)
        mask = check_mask(mask, states.shape[0], states.shape[1], states.device)
        # Padded entries are never read below; zero them anyway so that even NaN padding cannot
        # leak through a 0·NaN product in a backward pass.
        states = states.masked_fill(~mask[..., None], 0.0)
        actions = actions.masked_fill(~mask[..., None], 0.0)
        norm_states = self.normalizer(states)
        mean_q, std_q = self.encoder(norm_states, actions, mask)
        if noise is None:
            noise = torch.randn(mean_q.shape, generator=generator, device=mean_q.device, dtype=mean_q.dtype)
        z = mean_q + std_q * noise
        mean_p, std_p = self.prior(norm_states[:, 0])
        kl = gaussian_kl(mean_q, std_q, mean_p, std_p)  # (B,)
        # decoder on the real steps only
        z_steps = z.unsqueeze(1).expand(-1, states.shape[1], -1)[mask]
        nll_sum = -self.decoder.log_prob(norm_states[mask], z_steps, actions[mask]).sum()
        n_steps = mask.sum()
        return {
            "loss": (nll_sum + beta * kl.sum()) / n_steps,
            "nll": nll_sum.detach() / n_steps,
            "kl": kl.detach().mean(),
        }
