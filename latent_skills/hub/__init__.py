"""Checkpoints (a folder with ``config.json`` and ``model.safetensors``, no pickle anywhere) and
sharing them on the Hugging Face Hub (``push_to_hub``, ``from_pretrained``, the model card; the
replay video is :mod:`latent_skills.envs.video`, the model zoo :mod:`latent_skills.zoo`).

The names load on first use (the checkpoint format imports torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from .card import card_data, default_reproduce, model_card
    from .checkpoint import FORMAT_VERSION, MIGRATIONS, CheckpointError, read_checkpoint, write_checkpoint
    from .hub import from_pretrained, push_to_hub, write_learning_curve

_EXPORTS = {
    **dict.fromkeys(("card_data", "default_reproduce", "model_card"), ".card"),
    **dict.fromkeys(
        ("FORMAT_VERSION", "MIGRATIONS", "CheckpointError", "read_checkpoint", "write_checkpoint"),
        ".checkpoint",
    ),
    **dict.fromkeys(("from_pretrained", "push_to_hub", "write_learning_curve"), ".hub"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

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
