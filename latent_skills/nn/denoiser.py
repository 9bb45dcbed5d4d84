"""The latent diffusion prior's denoiser: a residual MLP U-Net that predicts ``z0``.

The network follows the LDCQ paper (appendix A.2.2): residual MLP blocks of widths
``128-32-16-8-16-32-128`` whose second half receives the matching first-half block's output
(U-Net skips), a sinusoidal time embedding followed by a 2-layer MLP, and a 2-layer MLP state
embedding, both fed to every block.

Classifier-free guidance needs an unconditional model inside the same network. Here the state
embedding of every row whose ``keep_cond`` is ``False`` is replaced by a *learned* null embedding
(an ``nn.Parameter``), so the mask changes the prediction and guidance acts. (The public reference
code passed the mask but the network ignored it, so its guidance was inert.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["LatentDenoiser", "SinusoidalEmbedding", "StudentDenoiser", "make_activation"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}

Activation = str | Callable[[], nn.Module]


def make_activation(activation: Activation) -> nn.Module:
    """Build an activation module from a name (``relu``, ``gelu``, ``silu``, ``mish``, ``tanh``,
    ``elu``) or from a zero-argument factory such as ``nn.ReLU``."""
    if isinstance(activation, str):
        try:
            return _ACTIVATIONS[activation.lower()]()
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)} "
                "or pass a factory such as torch.nn.ReLU"
            ) from None
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory returned {type(module).__name__}, not nn.Module")
        return module
    raise TypeError(f"activation must be a name or an nn.Module factory, got {activation!r}")


class SinusoidalEmbedding(nn.Module):
    freqs: torch.Tensor

    """Transformer-style sinusoidal embedding of (integer) diffusion timesteps.

    ``forward(t: (B,)) -> (B, dim)``: ``[sin(t * f_k), cos(t * f_k)]`` with frequencies
    ``f_k = max_period ** (-k / (dim / 2))``.
    """

    def __init__(self, dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"time embedding dim must be an even number >= 2, got {dim}")
        self.dim = dim
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
        self.register_buffer("freqs", freqs.float(), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class _ResidualBlock(nn.Module):
    """``x -> act(LN(W1 x + P e)) -> W2 -> + skip(x)``, with ``e`` the time/state embedding."""

    def __init__(self, in_dim: int, out_dim: int, embed_dim: int, activation: Activation) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_dim, out_dim)
        self.embed = nn.Linear(embed_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)
        self.act = make_activation(activation)
        self.linear2 = nn.Linear(out_dim, out_dim)
        self.skip: nn.Module = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, emb_proj: torch.Tensor) -> torch.Tensor:
        """``emb_proj = self.embed(emb)``: the embedding already projected to the block width."""
        h = self.act(self.norm(self.linear1(x) + emb_proj))
        return self.linear2(h) + self.skip(x)


class LatentDenoiser(nn.Module):
    """State-conditioned z0-predicting denoiser for the latent diffusion prior.

    Args:
        latent_dim: dimension ``D`` of the latent skill ``z``.
        cond_dim: dimension ``C`` of the conditioning vector (the normalised state ``s0``, or
            state and goal); ``0`` makes the network unconditional.
        widths: widths of the residual blocks; an odd-length sequence. The first half are "down"
            blocks, the middle one the bottleneck, and up block ``k`` receives, concatenated to
            its input, the output of its mirror down block ``len(widths) - 1 - k``.
        time_embed_dim: size of the sinusoidal timestep embedding and of its 2-layer MLP.
        cond_embed_dim: size of the 2-layer state-embedding MLP and of the null embedding.
        activation: activation name or ``nn.Module`` factory used throughout.

    ``forward(z_t, t, cond, keep_cond) -> z0_hat`` with ``z_t: (B, D)``, ``t: (B,)`` long,
    ``cond: (B, C)`` float (may be ``None`` when ``cond_dim == 0``), ``keep_cond: (B,)`` bool
    (``None`` means all ``True``). Rows where ``keep_cond`` is ``False`` use the learned null
    embedding instead of the state, i.e. they are predictions of the unconditional model.
    """

    def __init__(
        self,
        latent_dim: int,
        cond_dim: int,
        widths: Sequence[int] = (128, 32, 16, 8, 16, 32, 128),
        time_embed_dim: int = 256,
        cond_embed_dim: int = 128,
        activation: Activation = "silu",
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if cond_dim < 0:
            raise ValueError(f"cond_dim must be >= 0 (0 = unconditional), got {cond_dim}")
        if not widths or len(widths) % 2 == 0 or min(widths) < 1:
            raise ValueError(
                "widths must be an odd-length sequence of positive ints "
                f"(down blocks, bottleneck, up blocks), got {widths}"
            )
        if cond_dim > 0 and cond_embed_dim < 1:
            raise ValueError(f"cond_embed_dim must be >= 1, got {cond_embed_dim}")
        self.latent_dim = int(latent_dim)
        self.cond_dim = int(cond_dim)
        self.widths = widths
        self.time_embed_dim = int(time_embed_dim)
        self.cond_embed_dim = int(cond_embed_dim) if cond_dim > 0 else 0
        self.activation = activation if isinstance(activation, str) else repr(activation)

        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(self.time_embed_dim),
            nn.Linear(self.time_embed_dim, self.time_embed_dim),
            make_activation(activation),
            nn.Linear(self.time_embed_dim, self.time_embed_dim),
        )
        self.cond_embed: nn.Module | None
        self.null_cond: nn.Parameter | None
        if self.cond_dim > 0:
            self.cond_embed = nn.Sequential(
                nn.Linear(self.cond_dim, self.cond_embed_dim),
                make_activation(activation),
                nn.Linear(self.cond_embed_dim, self.cond_embed_dim),
            )
            self.null_cond = nn.Parameter(torch.randn(self.cond_embed_dim) * 0.1)
        else:
            self.cond_embed = None
            self.null_cond = None
        embed_dim = self.time_embed_dim + self.cond_embed_dim
        self.embed_act = make_activation(activation)

        n = len(widths)
        self._n_down = n // 2
        blocks = []
        prev = self.latent_dim
        for k, width in enumerate(widths):
            in_dim = prev
            if k > self._n_down:  # up block: concatenate the mirror down block's output
                in_dim += widths[n - 1 - k]
            blocks.append(_ResidualBlock(in_dim, width, embed_dim, activation))
            prev = width
        self.blocks = nn.ModuleList(blocks)
        self.out_act = make_activation(activation)
        self.out = nn.Linear(prev, self.latent_dim)
        # Start from a zero prediction (the data mean after normalisation).
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def embed(
        self, t: torch.Tensor, cond: torch.Tensor | None, keep_cond: torch.Tensor | None
    ) -> torch.Tensor:
        """The joint time/state embedding ``(B, time_embed_dim + cond_embed_dim)``, activated."""
        emb = self.time_embed(t)
        if self.cond_embed is None:
            return self.embed_act(emb)
        if cond is None:
            raise ValueError(f"this denoiser is conditional (cond_dim={self.cond_dim}); pass cond")
        if cond.dim() != 2 or cond.shape[1] != self.cond_dim or cond.shape[0] != t.shape[0]:
            raise ValueError(f"cond must have shape ({t.shape[0]}, {self.cond_dim}), got {tuple(cond.shape)}")
        if keep_cond is None:
            c = self.cond_embed(cond)
        else:
            keep = keep_cond.to(device=cond.device, dtype=torch.bool)[:, None]
            # Zero the dropped rows first so non-finite placeholders cannot leak into gradients.
            c = self.cond_embed(torch.where(keep, cond, torch.zeros_like(cond)))
            assert self.null_cond is not None  # a conditional denoiser has one
            c = torch.where(keep, c, self.null_cond.to(c.dtype).expand_as(c))
        return self.embed_act(torch.cat([emb, c], dim=-1))

    def _dedupe(
        self, t: torch.Tensor, cond: torch.Tensor | None, keep_cond: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor] | None:
        """Collapse runs of consecutive rows with equal ``(t, keep_cond, cond)``.

        A sampler evaluates ``B·n`` rows that share ``t`` and repeat each condition ``n`` times,
        so the embedding path only needs one row per run. Returns the run representatives and
        the index mapping rows to runs, or ``None`` when nothing collapses.
        """
        b = t.shape[0]
        if b < 2:
            return None
        same = t[1:] == t[:-1]
        if self.cond_embed is not None and cond is not None:
            same = same & (cond[1:] == cond[:-1]).all(dim=1)
            if keep_cond is not None:
                same = same & (keep_cond[1:] == keep_cond[:-1])
        change = torch.cat([same.new_ones(1), ~same])
        starts = change.nonzero().squeeze(1)
        if starts.shape[0] == b:
            return None
        inverse = torch.cumsum(change.long(), dim=0) - 1
        return (
            t[starts],
            None if cond is None else cond[starts],
            None if keep_cond is None else keep_cond[starts],
            inverse,
        )

    def forward(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        keep_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict ``z0`` from the noisy latent ``z_t`` at timestep ``t`` (see class docstring)."""
        if z_t.dim() != 2 or z_t.shape[1] != self.latent_dim:
            raise ValueError(f"z_t must have shape (B, {self.latent_dim}), got {tuple(z_t.shape)}")
        if t.shape != (z_t.shape[0],):
            raise ValueError(f"t must have shape ({z_t.shape[0]},), got {tuple(t.shape)}")
        # Inference on CPU: embed each run of identical (t, cond) rows once (exact, just cheaper;
        # skipped on accelerators, where finding the runs would force a synchronisation).
        runs = None
        if not torch.is_grad_enabled() and z_t.device.type == "cpu":
            runs = self._dedupe(t, cond, keep_cond)
        if runs is None:
            emb, inverse = self.embed(t, cond, keep_cond), None
        else:
            emb, inverse = self.embed(*runs[:3]), runs[3]
        h = z_t
        skips: list[torch.Tensor] = []
        n = len(self.blocks)
        for k, block in enumerate(self.blocks):
            if k > self._n_down:
                h = torch.cat([h, skips[n - 1 - k]], dim=-1)
            proj = block.embed(emb)  # type: ignore[operator]  # a _ResidualBlock's Linear
            h = block(h, proj if inverse is None else proj[inverse])
            if k < self._n_down:
                skips.append(h)
        return self.out(self.out_act(h))


class StudentDenoiser(nn.Module):
    """A few-step sampler distilled from a trained :class:`LatentDenoiser`: a denoiser of the same
    shape whose ``nfe``-step DDIM chain from noise ``z_T`` is trained to land where the teacher's
    full solver lands from the same ``z_T`` (knowledge distillation of the deterministic sampler,
    Luhman & Luhman 2021; Meng et al. 2023 for a guided teacher).

    ``ready`` (a saved buffer) is 1 once distillation finished: until then, and after the teacher
    is retrained, sampling uses the teacher."""

    ready: torch.Tensor

    def __init__(self, latent_dim: int, cond_dim: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.net = LatentDenoiser(latent_dim, cond_dim, widths=widths)
        self.latent_dim, self.cond_dim = self.net.latent_dim, self.net.cond_dim
        self.register_buffer("ready", torch.zeros(()))

    @property
    def is_ready(self) -> bool:
        return bool(self.ready.item() == 1.0)

    def forward(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        keep_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.net(z_t, t, cond, keep_cond)
