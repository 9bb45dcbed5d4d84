"""Torch modules: the skill VAE, the latent denoiser, critics and the state normaliser."""

from .critics import TwinCritic, polyak_update, q_candidates
from .denoiser import LatentDenoiser
from .normalization import MIN_STD, StateNormalizer
from .skill_vae import AutoregressiveDecoder, GaussianPrior, SkillEncoder, SkillVAE

__all__ = [
    "MIN_STD",
    "AutoregressiveDecoder",
    "GaussianPrior",
    "LatentDenoiser",
    "SkillEncoder",
    "SkillVAE",
    "StateNormalizer",
    "TwinCritic",
    "polyak_update",
    "q_candidates",
]
