"""Checkpoints (a folder with ``config.json`` and ``model.safetensors``, no pickle anywhere) and
sharing them on the Hugging Face Hub (``push_to_hub``, ``from_pretrained``, the model card; the
replay video is :mod:`latent_skills.envs.video`, the model zoo :mod:`latent_skills.zoo`)."""

from .card import card_data, default_reproduce, model_card
from .checkpoint import FORMAT_VERSION, MIGRATIONS, CheckpointError, read_checkpoint, write_checkpoint
from .hub import from_pretrained, push_to_hub, write_learning_curve

__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "CheckpointError",
    "card_data",
    "default_reproduce",
    "from_pretrained",
    "model_card",
    "push_to_hub",
    "read_checkpoint",
    "write_checkpoint",
    "write_learning_curve",
]
