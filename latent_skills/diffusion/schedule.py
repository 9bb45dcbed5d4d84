"""The forward (noising) process of the latent diffusion prior: a linear β schedule.

Timesteps are 0-indexed: ``t = 0 .. T-1`` is the paper's ``t = 1 .. T``. The schedule's constants
are computed in float64 and stored as float32 tensors (the float64 ``alphas_cumprod`` stays
available as :attr:`DiffusionSchedule.alphas_cumprod_f64` for samplers that want exact scalars).
"""

from __future__ import annotations

import torch

__all__ = ["DiffusionSchedule"]

_MAX_BETA = 0.999


class DiffusionSchedule:
    """Linear variance schedule ``β_t`` for ``t = 0 .. T-1`` and every derived constant.

    Args:
        num_timesteps: ``T``; the paper (§5.4) uses 200.
        beta_start, beta_end: the end points of the linear schedule *for T = 1000*.
        scale_to_T: rescale the end points by ``1000 / T`` (Nichol & Dhariwal 2021) so that the
            chain ends at (nearly) pure noise for any ``T``: unscaled, ``T = 200`` would leave
            ``sqrt(ᾱ_T) ≈ 0.37`` of the signal. β is clipped at 0.999.

    Attributes (float32 tensors of shape ``(T,)``): ``betas``, ``alphas``, ``alphas_cumprod``,
    ``alphas_cumprod_prev`` (``ᾱ_{t-1}``, 1 at ``t = 0``), ``sqrt_alphas_cumprod``,
    ``sqrt_one_minus_alphas_cumprod``, ``sqrt_recip_alphas_cumprod``,
    ``sqrt_recipm1_alphas_cumprod``, ``posterior_variance`` (``β̃_t``),
    ``posterior_log_variance_clipped``, ``posterior_mean_coef1`` (on ``z0``),
    ``posterior_mean_coef2`` (on ``z_t``), ``snr_values`` (``ᾱ_t / (1 - ᾱ_t)``).
    """

    _TENSORS = (
        "betas",
        "alphas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "snr_values",
    )

    def __init__(
        self,
        num_timesteps: int = 200,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        *,
        scale_to_T: bool = True,
    ) -> None:
        if isinstance(num_timesteps, bool) or int(num_timesteps) != num_timesteps:
            raise TypeError(f"num_timesteps must be an int, got {num_timesteps!r}")
        if num_timesteps < 2:
            raise ValueError(f"num_timesteps (T) must be >= 2, got {num_timesteps}")
        if not 0.0 < beta_start <= beta_end < 1.0:
            raise ValueError(
                f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}"
            )
        self.num_timesteps = int(num_timesteps)
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.scale_to_T = bool(scale_to_T)

        T = self.num_timesteps
        scale = 1000.0 / T if scale_to_T else 1.0
        f64 = torch.float64
        betas = torch.linspace(beta_start * scale, beta_end * scale, T, dtype=f64)
        betas = betas.clamp(max=_MAX_BETA)
        alphas = 1.0 - betas
        ac = torch.cumprod(alphas, dim=0)
        ac_prev = torch.cat([torch.ones(1, dtype=f64), ac[:-1]])
        post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
        # β̃_0 = 0: clip the log like Ho et al. (use β̃_1 in its place).
        post_log_var = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
        values = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": ac,
            "alphas_cumprod_prev": ac_prev,
            "sqrt_alphas_cumprod": ac.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - ac).sqrt(),
            "sqrt_recip_alphas_cumprod": (1.0 / ac).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / ac - 1.0).sqrt(),
            "posterior_variance": post_var,
            "posterior_log_variance_clipped": post_log_var,
            "posterior_mean_coef1": betas * ac_prev.sqrt() / (1.0 - ac),
            "posterior_mean_coef2": (1.0 - ac_prev) * alphas.sqrt() / (1.0 - ac),
            "snr_values": ac / (1.0 - ac),
        }
        self.alphas_cumprod_f64: torch.Tensor = ac
        self.betas: torch.Tensor
        self.alphas: torch.Tensor
        self.alphas_cumprod: torch.Tensor
        self.alphas_cumprod_prev: torch.Tensor
        self.sqrt_alphas_cumprod: torch.Tensor
        self.sqrt_one_minus_alphas_cumprod: torch.Tensor
        self.sqrt_recip_alphas_cumprod: torch.Tensor
        self.sqrt_recipm1_alphas_cumprod: torch.Tensor
        self.posterior_variance: torch.Tensor
        self.posterior_log_variance_clipped: torch.Tensor
        self.posterior_mean_coef1: torch.Tensor
        self.posterior_mean_coef2: torch.Tensor
        self.snr_values: torch.Tensor
        for name in self._TENSORS:
            setattr(self, name, values[name].float())

    # ------------------------------------------------------------------ basics
    @property
    def T(self) -> int:  # noqa: N802 - the paper's name
        """The number of diffusion steps (alias of ``num_timesteps``)."""
        return self.num_timesteps

    @property
    def device(self) -> torch.device:
        """The device the schedule's tensors live on."""
        return self.betas.device

    def to(self, device: torch.device | str) -> DiffusionSchedule:
        """Move every tensor to ``device`` (in place); returns ``self``."""
        for name in self._TENSORS:
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __repr__(self) -> str:
        return (
            f"DiffusionSchedule(num_timesteps={self.num_timesteps}, beta_start={self.beta_start}, "
            f"beta_end={self.beta_end}, scale_to_T={self.scale_to_T})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DiffusionSchedule):
            return NotImplemented
        return (self.num_timesteps, self.beta_start, self.beta_end, self.scale_to_T) == (
            other.num_timesteps,
            other.beta_start,
            other.beta_end,
            other.scale_to_T,
        )

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ helpers
    def _check_t(self, t: torch.Tensor) -> torch.Tensor:
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise TypeError(f"timesteps must be an integer tensor, got {t.dtype}")
        # Range check only on CPU: on an accelerator it would force a device synchronisation.
        if t.device.type == "cpu" and t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(
                f"timesteps must lie in [0, {self.num_timesteps}), got range [{int(t.min())}, {int(t.max())}]"
            )
        return t

    def extract(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` reshaped to broadcast against ``like`` (shape ``(B, ...)``)."""
        self._check_t(t)
        out = values[t.to(values.device)].to(device=like.device, dtype=like.dtype)
        return out.reshape(t.shape[0], *([1] * (like.dim() - 1)))

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ``ᾱ_t / (1 - ᾱ_t)`` at integer timesteps ``t`` (float32)."""
        self._check_t(t)
        return self.snr_values[t.to(self.device)].to(t.device)

    def q_sample(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``z_t ~ q(z_t | z0) = N(sqrt(ᾱ_t) z0, (1 - ᾱ_t) I)`` with the given ``noise``."""
        if noise is None:
            noise = torch.randn_like(z0)
        if noise.shape != z0.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} != z0 shape {tuple(z0.shape)}")
        if t.shape != (z0.shape[0],):
            raise ValueError(f"t must have shape ({z0.shape[0]},), got {tuple(t.shape)}")
        return (
            self.extract(self.sqrt_alphas_cumprod, t, z0) * z0
            + self.extract(self.sqrt_one_minus_alphas_cumprod, t, z0) * noise
        )

    def posterior_mean(self, z0: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of ``q(z_{t-1} | z_t, z0)``."""
        return (
            self.extract(self.posterior_mean_coef1, t, z_t) * z0
            + self.extract(self.posterior_mean_coef2, t, z_t) * z_t
        )
