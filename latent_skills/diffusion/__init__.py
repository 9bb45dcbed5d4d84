"""The latent diffusion prior: schedule, z0 + min-SNR loss, samplers and classifier-free guidance.

The denoiser network lives in :mod:`latent_skills.nn.denoiser` (``LatentDenoiser``).
"""

from latent_skills.diffusion.loss import (
    diffusion_draws,
    diffusion_loss,
    distillation_loss,
    distillation_targets,
)
from latent_skills.diffusion.sampling import (
    SOLVERS,
    Denoiser,
    guided_prediction,
    sample,
    sample_with_grad,
    timestep_subsequence,
)
from latent_skills.diffusion.schedule import DiffusionSchedule

__all__ = [
    "SOLVERS",
    "Denoiser",
    "DiffusionSchedule",
    "diffusion_draws",
    "diffusion_loss",
    "distillation_loss",
    "distillation_targets",
    "guided_prediction",
    "sample",
    "sample_with_grad",
    "timestep_subsequence",
]
