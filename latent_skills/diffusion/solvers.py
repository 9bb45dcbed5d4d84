"""Solvers of the reverse diffusion chain, one small class each, in one registry.

A solver turns starting noise ``z_T`` into a latent through the denoiser's z0 predictions. Every
solver here reads the same z0-predicting denoiser, so switching solver needs no retraining.
:data:`SOLVERS` maps each name to its class; it is the only list of valid names (the config's
``sampler`` choices read it), and :func:`register_solver` adds one. Timesteps are 0-indexed
(``0 .. T-1``); every solver's last evaluation is at ``t = 0`` and its output is that evaluation's z0
prediction.

- :class:`DDPM` (``"ddpm"``): ancestral sampling over all ``T`` steps (Ho et al. 2020).
- :class:`DDIM` (``"ddim"``): DDIM (Song et al. 2021) on ``steps`` timesteps evenly spaced in ``t``.
- :class:`DPMSolverPP` (``"dpm-solver++"``): DPM-Solver++(2M) (Lu et al. 2022) on ``steps``
  timesteps evenly spaced in log-SNR.

This module imports no heavy library (the config reads the registry): the solvers only call methods
of the tensors and schedule they are given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    import torch

    from latent_skills.diffusion.schedule import DiffusionSchedule

    Predict = Callable[[torch.Tensor, int], torch.Tensor]  # (z_t, t) -> guided z0 prediction
    Noise = Callable[[], torch.Tensor]  # fresh standard-normal draws shaped like z_t

SPACINGS: tuple[str, ...] = ("time", "logsnr")
DEFAULT_STEPS = 10  # a few-step solver's steps when none are given


class Solver:
    """One way of running the reverse chain. Subclasses set ``name``, ``default_spacing`` (the grid
    of timesteps; ``None``: every timestep, so ``steps`` is always ``T``) and implement :meth:`run`;
    ``options`` names the keyword settings their constructor takes beyond ``steps`` and ``spacing``."""

    name: ClassVar[str]
    default_spacing: ClassVar[str | None] = "time"
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, steps: int | None = None, *, spacing: str | None = None) -> None:
        if steps is not None and (isinstance(steps, bool) or not hasattr(steps, "__index__")):
            raise TypeError(f"steps must be an int or None, got {steps!r}")
        if spacing is not None and spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {spacing!r}; valid spacings are {', '.join(SPACINGS)}")
        self.steps = None if steps is None else steps.__index__()
        self.spacing = spacing or self.default_spacing

    def num_steps(self, num_timesteps: int) -> int:
        """The denoiser evaluations this solver makes on a ``num_timesteps`` chain (checked)."""
        if self.default_spacing is None:
            if self.steps is not None and self.steps != num_timesteps:
                raise ValueError(
                    f"solver={self.name!r} runs all T={num_timesteps} steps (got steps={self.steps}); pass "
                    "steps=None, or use solver='ddim' or 'dpm-solver++' for fewer steps"
                )
            return num_timesteps
        steps = min(DEFAULT_STEPS, num_timesteps) if self.steps is None else self.steps
        if not 1 <= steps <= num_timesteps:
            raise ValueError(
                f"steps must be in [1, T={num_timesteps}] for solver={self.name!r}, got {self.steps}"
            )
        return steps

    def timesteps(self, schedule: DiffusionSchedule) -> list[int]:
        """The decreasing timesteps the chain evaluates, ``T-1 .. 0``."""
        steps = self.num_steps(schedule.num_timesteps)
        return timestep_subsequence(schedule, steps, self.spacing or "time")

    def run(
        self, predict: Predict, schedule: DiffusionSchedule, z: torch.Tensor, noise: Noise
    ) -> torch.Tensor:
        """The chain from ``z`` (noise at ``T-1``) to the last z0 prediction."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.steps}, spacing={self.spacing!r})"


SolverClass = TypeVar("SolverClass", bound=type[Solver])

#: Every solver by name, in the order registered.
SOLVERS: dict[str, type[Solver]] = {}


def register_solver(cls: SolverClass) -> SolverClass:
    """Add a solver class to :data:`SOLVERS` under its ``name`` (a class decorator)."""
    if cls.name in SOLVERS:
        raise ValueError(f"a solver named {cls.name!r} is already registered ({SOLVERS[cls.name].__name__})")
    SOLVERS[cls.name] = cls
    return cls


def solver_class(name: str) -> type[Solver]:
    try:
        return SOLVERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown solver {name!r}; valid solvers are {', '.join(SOLVERS)}") from None


def make_solver(
    name: str,
    steps: int | None = None,
    *,
    eta: float = 0.0,
    variance: str = "beta",
    spacing: str | None = None,
) -> Solver:
    """The solver ``name`` with the settings it takes: ``eta`` only where the solver has it (and 0
    elsewhere), ``variance`` passed to the solvers that have it."""
    cls = solver_class(name)
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0.0):
        raise ValueError(f"eta must be a finite number >= 0, got {eta}")
    if eta != 0.0 and "eta" not in cls.options:
        with_eta = " or ".join(repr(n) for n, c in SOLVERS.items() if "eta" in c.options)
        raise ValueError(f"eta applies only to solver={with_eta} (got solver={name!r}, eta={eta})")
    settings: dict[str, object] = {"eta": eta, "variance": variance}
    chosen = {key: value for key, value in settings.items() if key in cls.options}
    if spacing is not None:
        if cls.default_spacing is None:
            grids = " or ".join(repr(n) for n, c in SOLVERS.items() if c.default_spacing is not None)
            raise ValueError(f"spacing applies only to solver={grids}")
        chosen["spacing"] = spacing
    return cls(steps, **chosen)  # type: ignore[arg-type]


@register_solver
class DDPM(Solver):
    """Ancestral sampling over all ``T`` timesteps: ``z_{t-1} = μ̃_t(ẑ0, z_t) + σ_t ε`` with
    ``σ_t² = β_t`` (``variance="beta"``, the LDCQ paper's Algorithm 1) or the true posterior's
    ``β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)`` (``"posterior"``, a little narrower; Ho et al. found
    both give similar samples). The output is the t = 0 prediction (β̃_0 = 0)."""

    name = "ddpm"
    default_spacing = None
    options = ("variance",)

    def __init__(self, steps: int | None = None, *, variance: str = "beta") -> None:
        super().__init__(steps)
        self.variance = variance

    def run(
        self, predict: Predict, schedule: DiffusionSchedule, z: torch.Tensor, noise: Noise
    ) -> torch.Tensor:
        coef1 = schedule.posterior_mean_coef1.double().cpu().tolist()
        coef2 = schedule.posterior_mean_coef2.double().cpu().tolist()
        variances = {"beta": schedule.betas, "posterior": schedule.posterior_variance}
        if self.variance not in variances:
            raise ValueError(f"ddpm_variance must be one of {sorted(variances)}, got {self.variance!r}")
        std = variances[self.variance].double().sqrt().cpu().tolist()
        z0 = z
        for t in range(schedule.num_timesteps - 1, -1, -1):
            z0 = predict(z, t)
            if t == 0:
                break  # β̃_0 = 0 and the posterior mean at t=0 is exactly z0_hat
            z = coef1[t] * z0 + coef2[t] * z
            z = z + std[t] * noise()
        return z0


@register_solver
class DDIM(Solver):
    """DDIM from ``T-1`` to 0 on ``steps`` timesteps (default: even in ``t``): with
    ``ε̂ = (z_t − √ᾱ_t ẑ0) / √(1 − ᾱ_t)``, ``z_s = √ᾱ_s ẑ0 + √(1 − ᾱ_s − σ²) ε̂ + σ ε``.
    ``eta = 0`` is the deterministic ODE sampler; ``eta = 1`` with ``steps = T`` is DDPM."""

    name = "ddim"
    default_spacing = "time"
    options = ("eta",)

    def __init__(self, steps: int | None = None, *, spacing: str | None = None, eta: float = 0.0) -> None:
        super().__init__(steps, spacing=spacing)
        self.eta = eta

    def run(
        self, predict: Predict, schedule: DiffusionSchedule, z: torch.Tensor, noise: Noise
    ) -> torch.Tensor:
        ac, ts = schedule.alphas_cumprod_f64, self.timesteps(schedule)
        z0 = z
        for i, t in enumerate(ts):
            z0 = predict(z, t)
            if i == len(ts) - 1:
                break  # next ᾱ is 1: the DDIM update returns z0_hat exactly
            s = ts[i + 1]
            a_t, a_s = float(ac[t]), float(ac[s])
            eps = (z - math.sqrt(a_t) * z0) / math.sqrt(1.0 - a_t)
            sigma = self.eta * math.sqrt(max((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s), 0.0))
            dir_coef = math.sqrt(max(1.0 - a_s - sigma**2, 0.0))
            z = math.sqrt(a_s) * z0 + dir_coef * eps
            if sigma > 0.0:
                z = z + sigma * noise()
        return z0


@register_solver
class DPMSolverPP(Solver):
    """DPM-Solver++(2M), Lu et al. 2022 algorithm 2, in data-prediction form, with
    ``α_t = √ᾱ_t``, ``σ_t = √(1 − ᾱ_t)``, ``λ_t = log(α_t / σ_t)``, ``h = λ_s − λ_t``:
    ``z_s = (σ_s / σ_t) z_t − α_s (e^{−h} − 1) D`` with ``D = ẑ0`` on the first step and
    ``(1 + 1/2r) ẑ0 − (1/2r) ẑ0_prev`` after (``r = h_prev / h``). Its default grid is even in
    log-SNR (DPM-Solver's recommendation: on a Gaussian the time-uniform grid overshoots the spread
    by ~15-25% at 10 steps, the log-SNR one by <5%)."""

    name = "dpm-solver++"
    default_spacing = "logsnr"

    def run(
        self, predict: Predict, schedule: DiffusionSchedule, z: torch.Tensor, noise: Noise
    ) -> torch.Tensor:
        ac, ts = schedule.alphas_cumprod_f64, self.timesteps(schedule)
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


def timestep_subsequence(schedule: DiffusionSchedule | int, steps: int, spacing: str = "time") -> list[int]:
    """``steps`` distinct timesteps, strictly decreasing from ``T-1`` to ``0`` (both included when
    ``steps >= 2``; ``steps = T`` gives every timestep).

    ``spacing="time"`` spaces them evenly in ``t`` (DDIM's usual grid); ``spacing="logsnr"``
    evenly in ``λ_t = log(sqrt(ᾱ_t) / sqrt(1 - ᾱ_t))`` (DPM-Solver's recommended grid; needs a
    :class:`DiffusionSchedule`), rounded to the nearest timestep and kept distinct.
    """
    import numpy as np  # here, so that reading the registry loads nothing heavy

    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; valid spacings are {', '.join(SPACINGS)}")
    given_t = not hasattr(schedule, "num_timesteps")  # T alone (an int)
    num_timesteps = int(schedule) if given_t else schedule.num_timesteps  # type: ignore[arg-type,union-attr]
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in [1, T={num_timesteps}], got {steps}")
    if spacing == "time" or steps == 1:
        # Points at least 1 apart stay distinct after rounding.
        grid = np.round(np.linspace(num_timesteps - 1, 0, steps)).astype(np.int64)
        return [int(t) for t in grid]
    if given_t:
        raise TypeError("spacing='logsnr' needs the DiffusionSchedule, not just T")
    assert not isinstance(schedule, int)  # given_t is False
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


__all__ = [
    "DDIM",
    "DDPM",
    "DEFAULT_STEPS",
    "SOLVERS",
    "SPACINGS",
    "DPMSolverPP",
    "Solver",
    "make_solver",
    "register_solver",
    "solver_class",
    "timestep_subsequence",
]
