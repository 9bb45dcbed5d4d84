"""Sampling from the latent diffusion prior: one entry point, three solvers, classifier-free guidance.

``sample(denoiser, schedule, cond, n, solver=...)`` draws ``n`` latents for each of the ``B``
conditioning rows, batching all ``B·n`` chains through one denoiser call per step. All solvers use
the same z0-predicting denoiser, so switching solver needs no retraining:

- ``"ddpm"``: ancestral sampling over all ``T`` steps (Ho et al. 2020) with the posterior variance
  ``β̃_t``, optionally followed by ``extra_steps`` denoising steps at the last timestep
  ("Diffusion-X", Pearce et al. 2023; LDCQ uses 10).
- ``"ddim"``: DDIM (Song et al. 2021) on ``steps`` timesteps evenly spaced in ``t``; ``eta = 0``
  is the deterministic ODE sampler, ``eta = 1`` with ``steps = T`` is DDPM.
- ``"dpm-solver++"``: DPM-Solver++(2M) (Lu et al. 2022, algorithm 2) in data-prediction form on
  ``steps`` timesteps evenly spaced in log-SNR (DPM-Solver's recommended grid: on a Gaussian the
  time-uniform grid overshoots the spread by ~15-25% at 10 steps, the log-SNR one by <5%), first
  order on the first step; the output is the final data prediction.

``energy_guidance`` tilts any solver toward ``p(z | s) · exp(E(s, z))`` (QGPO / LatentDiffuser): a
callable giving the score correction ``∇_z E_t(s, z_t)`` at every evaluation, converted to the
z0 prediction the solvers consume (see :func:`sample`).

Timesteps are 0-indexed (``0 .. T-1``). ``steps`` counts denoiser evaluations (NFE, doubled in
batch size when guidance needs both passes); every sampler's last evaluation is at ``t = 0`` and
its output is that evaluation's (guided, optionally clipped) z0 prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch

from latent_skills.diffusion.schedule import DiffusionSchedule

__all__ = [
    "SOLVERS",
    "SPACINGS",
    "Denoiser",
    "EnergyGuidance",
    "guided_prediction",
    "sample",
    "sample_with_grad",
    "timestep_subsequence",
]

SOLVERS: tuple[str, ...] = ("ddpm", "ddim", "dpm-solver++")
SPACINGS: tuple[str, ...] = ("time", "logsnr")
_DEFAULT_STEPS = 10
_Predict = Callable[[torch.Tensor, int], torch.Tensor]
# (z_t (R, D), t (R,) long, cond rows (R, C) or None) -> ∇_{z_t} E_t (R, D): a score correction
EnergyGuidance = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@runtime_checkable
class Denoiser(Protocol):
    """What the diffusion code needs from a denoiser (``LatentDenoiser`` is one).

    ``denoiser(z_t, t, cond, keep_cond) -> z0_hat`` with ``z_t: (B, D)``, ``t: (B,)`` long,
    ``cond: (B, C)`` or ``None`` and ``keep_cond: (B,)`` bool (``False`` = unconditional row).
    """

    latent_dim: int
    cond_dim: int

    def __call__(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None,
        keep_cond: torch.Tensor | None,
    ) -> torch.Tensor: ...


def guided_prediction(
    denoiser: Denoiser,
    z_t: torch.Tensor,
    t: torch.Tensor,
    cond: torch.Tensor | None,
    guidance: float = 1.0,
    *,
    clip: float | None = None,
    null_cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classifier-free-guided z0 prediction ``μ(∅) + w · (μ(s) − μ(∅))``; with ``null_cond`` the
    unconditional branch is ``μ(null_cond)`` (a partial condition) instead of the null token.

    ``w = 1`` is the conditional prediction and ``w = 0`` the unconditional one, each from a single
    denoiser pass (returned exactly, not recombined). Any other ``w`` runs both in one forward
    pass of doubled batch. With an unconditional denoiser (``cond_dim == 0``) or ``cond=None`` the
    prediction is unconditional whatever ``w``. ``clip`` clamps the result to ``[-clip, clip]``.
    """
    b = z_t.shape[0]
    conditional = cond is not None and int(getattr(denoiser, "cond_dim", 1)) > 0
    if not conditional:
        out = denoiser(z_t, t, None, None)
    elif guidance == 1.0:
        keep = torch.ones(b, dtype=torch.bool, device=z_t.device)
        out = denoiser(z_t, t, cond, keep)
    elif null_cond is not None:
        uncond_out = denoiser(z_t, t, null_cond, torch.ones(b, dtype=torch.bool, device=z_t.device))
        cond_out = (
            uncond_out if guidance == 0.0 else denoiser(z_t, t, cond, torch.ones_like(t, dtype=torch.bool))
        )
        out = uncond_out + guidance * (cond_out - uncond_out)
    elif guidance == 0.0:
        keep = torch.zeros(b, dtype=torch.bool, device=z_t.device)
        out = denoiser(z_t, t, cond, keep)
    else:
        assert cond is not None  # conditional here
        keep = torch.cat(
            [
                torch.ones(b, dtype=torch.bool, device=z_t.device),
                torch.zeros(b, dtype=torch.bool, device=z_t.device),
            ]
        )
        both = denoiser(torch.cat([z_t, z_t]), torch.cat([t, t]), torch.cat([cond, cond]), keep)
        cond_out, uncond_out = both[:b], both[b:]
        out = uncond_out + guidance * (cond_out - uncond_out)
    if clip is not None:
        out = out.clamp(-clip, clip)
    return out


def timestep_subsequence(schedule: DiffusionSchedule | int, steps: int, spacing: str = "time") -> list[int]:
    """``steps`` distinct timesteps, strictly decreasing from ``T-1`` to ``0`` (both included when
    ``steps >= 2``; ``steps = T`` gives every timestep).

    ``spacing="time"`` spaces them evenly in ``t`` (DDIM's usual grid); ``spacing="logsnr"``
    evenly in ``λ_t = log(sqrt(ᾱ_t) / sqrt(1 - ᾱ_t))`` (DPM-Solver's recommended grid; needs a
    :class:`DiffusionSchedule`), rounded to the nearest timestep and kept distinct.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; valid spacings are {', '.join(SPACINGS)}")
    num_timesteps = schedule.num_timesteps if isinstance(schedule, DiffusionSchedule) else schedule
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in [1, T={num_timesteps}], got {steps}")
    if spacing == "time" or steps == 1:
        # Points at least 1 apart stay distinct after rounding.
        grid = np.round(np.linspace(num_timesteps - 1, 0, steps)).astype(np.int64)
        return [int(t) for t in grid]
    if not isinstance(schedule, DiffusionSchedule):
        raise TypeError("spacing='logsnr' needs the DiffusionSchedule, not just T")
    ac = schedule.alphas_cumprod_f64.cpu().numpy()
    lam = 0.5 * (np.log(ac) - np.log1p(-ac))  # decreasing in t
    targets = np.linspace(lam[-1], lam[0], steps)
    # λ is decreasing, so interpolate t over the reversed (increasing) λ.
    t_of_lam = np.interp(targets, lam[::-1], np.arange(num_timesteps - 1, -1, -1, dtype=np.float64))
    ts = [int(t) for t in np.round(t_of_lam)]
    # Make the sequence strictly decreasing within [0, T-1] (rounding can merge neighbours).
    for i in range(steps - 2, -1, -1):
        ts[i] = max(ts[i], ts[i + 1] + 1)
    return [min(t, num_timesteps - 1 - i) for i, t in enumerate(ts)]


def _randn(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Standard normal draws from ``generator`` (on its own device), moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def _validate(
    denoiser: Denoiser,
    schedule: DiffusionSchedule,
    n: int,
    solver: str,
    steps: int | None,
    guidance: float,
    extra_steps: int,
    eta: float,
    clip: float | None,
) -> int:
    """Check the arguments of :func:`sample`; returns the number of steps to run."""
    if not isinstance(schedule, DiffusionSchedule):
        raise TypeError(f"schedule must be a DiffusionSchedule, got {type(schedule).__name__}")
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid solvers are {', '.join(SOLVERS)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (samples per condition) must be a positive int, got {n!r}")
    T = schedule.num_timesteps
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))):
        raise TypeError(f"steps must be an int or None, got {steps!r}")
    if solver == "ddpm":
        if steps is not None and steps != T:
            raise ValueError(
                f"solver='ddpm' runs all T={T} steps (got steps={steps}); pass steps=None, "
                "or use solver='ddim' or 'dpm-solver++' for fewer steps"
            )
        n_steps = T
    else:
        n_steps = min(_DEFAULT_STEPS, T) if steps is None else int(steps)
        if not 1 <= n_steps <= T:
            raise ValueError(f"steps must be in [1, T={T}] for solver={solver!r}, got {steps}")
    if not math.isfinite(guidance):
        raise ValueError(f"guidance must be finite, got {guidance}")
    if isinstance(extra_steps, bool) or not isinstance(extra_steps, (int, np.integer)):
        raise TypeError(f"extra_steps must be an int, got {extra_steps!r}")
    if extra_steps < 0:
        raise ValueError(f"extra_steps must be >= 0, got {extra_steps}")
    if not (math.isfinite(eta) and eta >= 0.0):
        raise ValueError(f"eta must be a finite number >= 0, got {eta}")
    if eta != 0.0 and solver != "ddim":
        raise ValueError(f"eta applies only to solver='ddim' (got solver={solver!r}, eta={eta})")
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a positive number or None, got {clip}")
    if not isinstance(getattr(denoiser, "latent_dim", None), int):
        raise TypeError("denoiser must expose an int `latent_dim` attribute (see Denoiser)")
    return n_steps


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    schedule: DiffusionSchedule,
    cond: torch.Tensor | None,
    n: int,
    *,
    solver: str = "ddpm",
    steps: int | None = None,
    guidance: float = 1.0,
    extra_steps: int = 0,
    eta: float = 0.0,
    ddpm_variance: str = "beta",
    generator: torch.Generator | None = None,
    clip: float | None = None,
    spacing: str | None = None,
    shared_noise: bool = False,
    energy_guidance: EnergyGuidance | None = None,
    null_cond: torch.Tensor | None = None,
    initial_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``n`` latents per conditioning row from the diffusion prior.

    Args:
        denoiser: a z0-predicting :class:`Denoiser` (e.g. ``LatentDenoiser``).
        schedule: the :class:`DiffusionSchedule` the denoiser was trained with.
        cond: ``(B, C)`` conditioning rows (normalised states). ``None`` for an unconditional
            denoiser (``cond_dim == 0``), which gives ``B = 1``.
        n: samples per row.
        solver: ``"ddpm"``, ``"ddim"`` or ``"dpm-solver++"``.
        steps: denoiser evaluations; ``ddpm`` needs ``None`` or ``T``, the others default to 10.
        guidance: classifier-free guidance weight ``w`` in ``μ(∅) + w (μ(s) − μ(∅))``; 1 is the
            plain conditional prior, 0 the unconditional one.
        extra_steps: additional denoising steps at ``t = 0`` after the chain ("Diffusion-X";
            the paper's DDPM uses 10): ``z ← μ̂(z, t=0)``, without noise. Allowed with every solver.
        eta: DDIM's stochasticity (0 deterministic, 1 = DDPM's variance); ``ddim`` only.
        ddpm_variance: the variance of each ``ddpm`` step: ``"beta"`` (σ_t² = β_t, the LDCQ paper's
            Algorithm 1) or ``"posterior"`` (σ_t² = β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), the true
            posterior's, a little narrower). Ho et al. found both give similar samples.
        generator: the source of randomness (initial noise and, for ``ddpm`` / ``ddim`` with
            ``eta > 0``, the per-step noise); seeded generators give reproducible samples.
        shared_noise: give every conditioning row the same noise, so a row's samples do not
            depend on which other rows are in the batch (a deterministic policy needs this).
        clip: clamp every z0 prediction to ``[-clip, clip]`` (useful with large guidance).
        spacing: the timestep grid of ``ddim`` / ``dpm-solver++`` (see
            :func:`timestep_subsequence`): ``"time"`` (even in t, DDIM's default) or ``"logsnr"``
            (even in log-SNR, DPM-Solver++'s default, much more accurate at 10-20 steps).
        energy_guidance: sample ``p(z | s) · exp(E(s, z))`` instead (energy-guided diffusion,
            Lu et al. 2023): ``energy_guidance(z_t, t, cond_rows)`` returns ``∇_{z_t} E_t`` for
            the ``B·n`` rows (``cond_rows`` repeats each condition ``n`` times; ``None`` when
            ``cond`` is), ``E_t`` being the intermediate energy ``log E[exp(E) | z_t]``. It runs
            under ``torch.no_grad()``: enable gradients inside. Every evaluation of every solver
            (and the ``extra_steps``) adds it to the score. ``None`` leaves sampling unchanged.
        null_cond: ``(B, C)``, the condition of guidance's unconditional branch (e.g. the state
            without its goal); ``None``: the learned null token.
        initial_noise: ``(B·n, D)``, the chains' starting noise ``z_T`` (rows ``i·n … i·n + n − 1``
            belong to condition row ``i``); ``None`` draws it from ``generator``. With a
            deterministic solver the output is then a function of it (what distillation learns).

    Returns:
        ``(B, n, D)`` latents, on ``cond``'s device (or the denoiser's) and in its dtype.
    """
    n_steps = _validate(denoiser, schedule, n, solver, steps, guidance, extra_steps, eta, clip)
    if spacing is not None:
        if spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {spacing!r}; valid spacings are {', '.join(SPACINGS)}")
        if solver == "ddpm":
            raise ValueError("spacing applies only to solver='ddim' or 'dpm-solver++'")
    if energy_guidance is not None and not callable(energy_guidance):
        raise TypeError(
            f"energy_guidance must be a callable (z_t, t, cond_rows) -> ∇E, got {energy_guidance!r}"
        )
    latent_dim = int(denoiser.latent_dim)
    cond_dim = int(getattr(denoiser, "cond_dim", 0))

    if cond is None:
        if cond_dim > 0:
            raise ValueError(
                f"this denoiser is conditional (cond_dim={cond_dim}): pass cond of shape "
                f"(B, {cond_dim}); use guidance=0 for unconditional samples"
            )
        batch = 1
        device, dtype = _module_device_dtype(denoiser)
        cond_rows = None
    else:
        if cond.dim() != 2:
            raise ValueError(f"cond must have shape (B, C), got {tuple(cond.shape)}")
        if cond_dim > 0 and cond.shape[1] != cond_dim:
            raise ValueError(
                f"cond has {cond.shape[1]} features but the denoiser expects cond_dim={cond_dim}"
            )
        if not cond.dtype.is_floating_point:
            raise TypeError(f"cond must be a floating-point tensor, got {cond.dtype}")
        batch = cond.shape[0]
        device, dtype = cond.device, cond.dtype
        cond_rows = cond.repeat_interleave(n, dim=0) if cond_dim > 0 else None
    null_rows = None if null_cond is None or cond_rows is None else null_cond.repeat_interleave(n, dim=0)
    # the energy sees the condition even where the denoiser ignores it
    energy_rows = cond_rows if cond is None or cond_rows is not None else cond.repeat_interleave(n, dim=0)

    rows = batch * n
    ac = schedule.alphas_cumprod_f64  # float64 scalars for the update coefficients

    def predict(z: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((rows,), t, dtype=torch.long, device=device)
        if energy_guidance is None:
            return guided_prediction(denoiser, z, tt, cond_rows, guidance, clip=clip, null_cond=null_rows)
        z0 = guided_prediction(denoiser, z, tt, cond_rows, guidance, null_cond=null_rows)
        # The solvers read the score through the z0 prediction: with z_t = α_t z0 + σ_t ε
        # (α_t² = ᾱ_t, σ_t² = 1 − ᾱ_t), Tweedie gives ẑ0 = (z_t + σ_t² ∇log p_t(z_t)) / α_t, so adding
        # g = ∇E_t to the score adds σ_t² / α_t · g to ẑ0 (and −σ_t g to the implied ε).
        a_t = float(ac[t])
        z0 = z0 + ((1.0 - a_t) / math.sqrt(a_t)) * energy_guidance(z, tt, energy_rows).to(z0.dtype)
        return z0 if clip is None else z0.clamp(-clip, clip)

    def noise() -> torch.Tensor:
        if shared_noise:
            return _randn((n, latent_dim), generator, device, dtype).repeat(batch, 1)
        return _randn((rows, latent_dim), generator, device, dtype)

    if initial_noise is None:
        z = noise()
    elif initial_noise.shape != (rows, latent_dim):
        raise ValueError(
            f"initial_noise must have shape ({rows}, {latent_dim}), got {tuple(initial_noise.shape)}"
        )
    else:
        z = initial_noise.to(device=device, dtype=dtype)

    if solver == "ddpm":
        z0 = _ddpm(predict, schedule, z, noise, ddpm_variance)
    elif solver == "ddim":
        ts = timestep_subsequence(schedule, n_steps, spacing or "time")
        z0 = _ddim(predict, ac, ts, z, eta, noise)
    else:
        ts = timestep_subsequence(schedule, n_steps, spacing or "logsnr")
        z0 = _dpm_solver_pp_2m(predict, ac, ts, z)

    for _ in range(extra_steps):
        z0 = predict(z0, 0)
    return z0.reshape(batch, n, latent_dim)


def sample_with_grad(*args: Any, **kwargs: Any) -> torch.Tensor:
    """:func:`sample` with autograd on: a loss can train the denoiser through its chain (what
    distilling a few-step student does)."""
    return cast(Callable[..., torch.Tensor], sample.__wrapped__)(*args, **kwargs)  # type: ignore[attr-defined]


def _module_device_dtype(module: object) -> tuple[torch.device, torch.dtype]:
    params = getattr(module, "parameters", None)
    if callable(params):
        for p in params():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def _ddpm(
    predict: _Predict,
    schedule: DiffusionSchedule,
    z: torch.Tensor,
    noise: Callable[[], torch.Tensor],
    variance: str,
) -> torch.Tensor:
    """Ancestral sampling ``T-1 .. 0``; returns the last z0 prediction (= the t=0 step's mean)."""
    coef1 = schedule.posterior_mean_coef1.double().cpu().tolist()
    coef2 = schedule.posterior_mean_coef2.double().cpu().tolist()
    variances = {"beta": schedule.betas, "posterior": schedule.posterior_variance}
    if variance not in variances:
        raise ValueError(f"ddpm_variance must be one of {sorted(variances)}, got {variance!r}")
    std = variances[variance].double().sqrt().cpu().tolist()
    z0 = z
    for t in range(schedule.num_timesteps - 1, -1, -1):
        z0 = predict(z, t)
        if t == 0:
            break  # β̃_0 = 0 and the posterior mean at t=0 is exactly z0_hat
        z = coef1[t] * z0 + coef2[t] * z
        z = z + std[t] * noise()
    return z0


def _ddim(
    predict: _Predict,
    ac: torch.Tensor,
    ts: list[int],
    z: torch.Tensor,
    eta: float,
    noise: Callable[[], torch.Tensor],
) -> torch.Tensor:
    """DDIM from ``ts[0]`` down to ``ts[-1] = 0``, then to the clean latent."""
    z0 = z
    for i, t in enumerate(ts):
        z0 = predict(z, t)
        if i == len(ts) - 1:
            break  # next ᾱ is 1: the DDIM update returns z0_hat exactly
        s = ts[i + 1]
        a_t, a_s = float(ac[t]), float(ac[s])
        eps = (z - math.sqrt(a_t) * z0) / math.sqrt(1.0 - a_t)
        sigma = eta * math.sqrt(max((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s), 0.0))
        dir_coef = math.sqrt(max(1.0 - a_s - sigma**2, 0.0))
        z = math.sqrt(a_s) * z0 + dir_coef * eps
        if sigma > 0.0:
            z = z + sigma * noise()
    return z0


def _dpm_solver_pp_2m(predict: _Predict, ac: torch.Tensor, ts: list[int], z: torch.Tensor) -> torch.Tensor:
    """DPM-Solver++(2M), Lu et al. 2022 algorithm 2, with ``α_t = sqrt(ᾱ_t)``,
    ``σ_t = sqrt(1 − ᾱ_t)``, ``λ_t = log(α_t / σ_t)``; first step first order; returns the data
    prediction at the last timestep."""
    z0_prev: torch.Tensor | None = None
    h_prev = 0.0
    z0 = z
    for i, t in enumerate(ts):
        z0 = predict(z, t)
        if i == len(ts) - 1:
            break
        s = ts[i + 1]
        a_t, a_s = float(ac[t]), float(ac[s])
        alpha_s, sigma_t, sigma_s = math.sqrt(a_s), math.sqrt(1.0 - a_t), math.sqrt(1.0 - a_s)
        lam_t = 0.5 * (math.log(a_t) - math.log(1.0 - a_t))
        lam_s = 0.5 * (math.log(a_s) - math.log(1.0 - a_s))
        h = lam_s - lam_t
        if z0_prev is None:
            d = z0
        else:
            r = h_prev / h
            d = (1.0 + 0.5 / r) * z0 - (0.5 / r) * z0_prev
        z = (sigma_s / sigma_t) * z - alpha_s * math.expm1(-h) * d
        z0_prev, h_prev = z0, h
    return z0
