"""Torch modules: the skill VAE, the latent denoiser, critics and the state normaliser."""

from .critics import TwinCritic, polyak_update, q_candidates
from .denoiser import LatentDenoiser, StudentDenoiser
from .dynamics import SkillWorldModel
from .energy import LatentEnergyModel, contrastive_energy_loss
from .normalization import MIN_STD, StateNormalizer
from .skill_vae import AutoregressiveDecoder, GaussianPrior, SkillEncoder, SkillVAE

__all__ = [
    "MIN_STD",
    "AutoregressiveDecoder",
    "GaussianPrior",
    "LatentDenoiser",
    "LatentEnergyModel",
    "SkillEncoder",
    "SkillVAE",
    "SkillWorldModel",
    "StateNormalizer",
    "StudentDenoiser",
    "TwinCritic",
    "contrastive_energy_loss",
    "polyak_update",
    "q_candidates",
]
