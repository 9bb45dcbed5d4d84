"""Torch modules: observation encoders, the skill VAE, the latent denoiser, critics, the world model,
the energy model and the state normaliser."""

from .critics import TwinCritic, polyak_update, q_candidates
from .denoiser import LatentDenoiser, StudentDenoiser
from .dynamics import SkillWorldModel
from .encoders import FlatEncoder, ObservationEncoder, PartEncoder, encoder_kinds, register_encoder
from .energy import LatentEnergyModel, contrastive_energy_loss
from .image_encoder import ImageVAE  # registers the "image" observation encoder
from .normalization import MIN_STD, StateNormalizer
from .skill_vae import AutoregressiveDecoder, GaussianPrior, SkillEncoder, SkillVAE

__all__ = [
    "MIN_STD",
    "AutoregressiveDecoder",
    "FlatEncoder",
    "GaussianPrior",
    "ImageVAE",
    "LatentDenoiser",
    "LatentEnergyModel",
    "ObservationEncoder",
    "PartEncoder",
    "SkillEncoder",
    "SkillVAE",
    "SkillWorldModel",
    "StateNormalizer",
    "StudentDenoiser",
    "TwinCritic",
    "contrastive_energy_loss",
    "encoder_kinds",
    "polyak_update",
    "q_candidates",
    "register_encoder",
]
