"""Training losses of the latent diffusion prior: z0 prediction with min-SNR-γ weighting and
condition dropout for classifier-free guidance (LDCQ paper, eq. 5); and the distillation of its
solver into a few-step student."""

from __future__ import annotations

import torch

from latent_skills.diffusion.sampling import Denoiser, sample, sample_with_grad
from latent_skills.diffusion.schedule import DiffusionSchedule

__all__ = ["diffusion_draws", "diffusion_loss", "distillation_loss", "distillation_targets"]


def diffusion_draws(
    shape: torch.Size | tuple[int, int],
    schedule: DiffusionSchedule,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random parts of :func:`diffusion_loss` for a ``(B, D)`` batch, in the order it draws them:
    timesteps ``t``, noise ``ε`` and the dropout uniforms ``u`` (on the generator's device)."""
    b = shape[0]
    gen_device = generator.device if generator is not None else device
    t = torch.randint(0, schedule.num_timesteps, (b,), generator=generator, device=gen_device)
    noise = torch.randn(tuple(shape), generator=generator, device=gen_device)
    u = torch.rand((b,), generator=generator, device=gen_device)
    return t, noise, u


def diffusion_loss(
    denoiser: Denoiser,
    z0: torch.Tensor,
    cond: torch.Tensor | None,
    schedule: DiffusionSchedule,
    *,
    snr_clip: float | None = 5.0,
    cond_drop: float = 0.1,
    generator: torch.Generator | None = None,
    null_cond: torch.Tensor | None = None,
    draws: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Min-SNR-γ weighted z0-prediction loss, averaged over the batch.

    For each row: ``t ~ U{0, .., T-1}``, ``ε ~ N(0, I)``, ``z_t = sqrt(ᾱ_t) z0 + sqrt(1-ᾱ_t) ε``,
    ``keep ~ Bernoulli(1 - cond_drop)``; the loss is
    ``mean_rows[min(SNR(t), snr_clip) · mean_dims (denoiser(z_t, t, cond, keep) - z0)²]``.
    For x0 prediction the min-SNR-γ weight (Hang et al. 2023) is ``min(SNR, γ)`` itself (for ε
    prediction it would be ``min(SNR, γ) / SNR``). ``snr_clip=None`` gives the plain x0 MSE.

    Args:
        denoiser: the z0-predicting :class:`~latent_skills.diffusion.sampling.Denoiser`.
        z0: ``(B, D)`` clean latents.
        cond: ``(B, C)`` conditioning (``None`` for an unconditional denoiser).
        schedule: the diffusion schedule.
        snr_clip: γ of min-SNR-γ (paper: 5).
        cond_drop: probability of replacing the condition by the null token (paper: 0.1);
            it trains the unconditional model used by classifier-free guidance.
        generator: source of ``t``, ``ε`` and the dropout mask (on its own device).
        null_cond: ``(B, C)``: what a dropped row is conditioned on instead of the learned null
            token (a partial condition, e.g. the state without its goal, so that guidance
            contrasts p(z | s, g) with p(z | s)). ``None``: the null token.
        draws: ``(t, ε, u)`` as :func:`diffusion_draws` makes them, instead of drawing here (a
            data-parallel rank passes its rows of the global batch's draws).
    """
    if z0.dim() != 2:
        raise ValueError(f"z0 must have shape (B, D), got {tuple(z0.shape)}")
    if cond is not None and (cond.dim() != 2 or cond.shape[0] != z0.shape[0]):
        raise ValueError(f"cond must have shape ({z0.shape[0]}, C) to match z0, got {tuple(cond.shape)}")
    if not 0.0 <= cond_drop <= 1.0:
        raise ValueError(f"cond_drop must be a probability in [0, 1], got {cond_drop}")
    if snr_clip is not None and not snr_clip > 0:
        raise ValueError(f"snr_clip must be > 0 or None, got {snr_clip}")
    device = z0.device
    t, noise, u = draws if draws is not None else diffusion_draws(z0.shape, schedule, generator, device)
    t, noise, keep = t.to(device), noise.to(device, z0.dtype), (u >= cond_drop).to(device)

    z_t = schedule.q_sample(z0, t, noise)
    if cond is not None and null_cond is not None:
        cond, keep = torch.where(keep[:, None], cond, null_cond), torch.ones_like(keep)
    z0_hat = denoiser(z_t, t, cond, keep if cond is not None else None)
    per_sample = (z0_hat - z0).pow(2).mean(dim=1)
    if snr_clip is None:
        return per_sample.mean()
    weight = schedule.snr(t).to(device=device, dtype=per_sample.dtype).clamp(max=snr_clip)
    return (weight * per_sample).mean()


@torch.no_grad()
def distillation_targets(
    teacher: Denoiser,
    schedule: DiffusionSchedule,
    cond: torch.Tensor | None,
    noise: torch.Tensor,
    *,
    solver: str,
    steps: int,
    guidance: float = 1.0,
    null_cond: torch.Tensor | None = None,
    chains: int = 1,
) -> torch.Tensor:
    """Where the teacher's deterministic ``solver`` (``steps`` evaluations, guidance ``guidance``) lands
    from each row of ``noise`` ``(B·chains, D)``, ``chains`` per condition row (rows ``i·chains …``
    belong to row ``i``, which the denoiser then embeds once): ``(B·chains, D)``."""
    out = sample(
        teacher,
        schedule,
        cond,
        chains,
        solver=solver,
        steps=steps,
        guidance=guidance,
        null_cond=null_cond,
        initial_noise=noise,
    )
    return out.flatten(0, 1)


def distillation_loss(
    student: Denoiser,
    schedule: DiffusionSchedule,
    cond: torch.Tensor | None,
    noise: torch.Tensor,
    target: torch.Tensor,
    *,
    student_steps: int,
) -> torch.Tensor:
    """Mean squared distance between the student's ``student_steps``-step DDIM chain from ``noise``
    ``(B, D)`` and the teacher's latents from the same noise (:func:`distillation_targets`)."""
    out = sample_with_grad(
        student, schedule, cond, 1, solver="ddim", steps=student_steps, initial_noise=noise
    )
    return (out[:, 0] - target).pow(2).mean()
