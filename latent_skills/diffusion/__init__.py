"""The latent diffusion prior: schedule, z0 + min-SNR loss, solvers and classifier-free guidance.

The denoiser network lives in :mod:`latent_skills.nn.denoiser` (``LatentDenoiser``). The names load
their modules (and torch) on first use, so the config can read the solvers' registry
(:mod:`latent_skills.diffusion.solvers`, torch-free) cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from latent_skills.diffusion.loss import (
        diffusion_draws,
        diffusion_loss,
        distillation_loss,
        distillation_targets,
    )
    from latent_skills.diffusion.sampling import (
        Denoiser,
        Sampler,
        guided_prediction,
        sample,
        sample_with_grad,
    )
    from latent_skills.diffusion.schedule import DiffusionSchedule
    from latent_skills.diffusion.solvers import (
        SOLVERS,
        Solver,
        make_solver,
        register_solver,
        timestep_subsequence,
    )

_EXPORTS = {
    **dict.fromkeys(
        ("diffusion_draws", "diffusion_loss", "distillation_loss", "distillation_targets"), ".loss"
    ),
    **dict.fromkeys(("Denoiser", "Sampler", "guided_prediction", "sample", "sample_with_grad"), ".sampling"),
    "DiffusionSchedule": ".schedule",
    **dict.fromkeys(
        ("SOLVERS", "Solver", "make_solver", "register_solver", "timestep_subsequence"), ".solvers"
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "SOLVERS",
    "Denoiser",
    "DiffusionSchedule",
    "Sampler",
    "Solver",
    "diffusion_draws",
    "diffusion_loss",
    "distillation_loss",
    "distillation_targets",
    "guided_prediction",
    "make_solver",
    "register_solver",
    "sample",
    "sample_with_grad",
    "timestep_subsequence",
]
