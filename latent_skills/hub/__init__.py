"""Sharing checkpoints on the Hugging Face Hub: ``push_to_hub`` uploads a checkpoint (with the files its
owner adds, such as a model card) in one commit; ``from_pretrained`` loads a local folder or a Hub repo
(through the Hub's cache, so it works offline once downloaded). :class:`HubMixin` gives a class with
``save``/``load`` both; it knows nothing of agents (an agent's card, evaluation and replay video are
:mod:`latent_skills.agents.sharing`'s). The checkpoint format itself is :mod:`latent_skills.checkpoint`;
its names are here too.

The names load on first use (the checkpoint format imports torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from latent_skills.checkpoint import (
        FORMAT_VERSION,
        MIGRATIONS,
        CheckpointError,
        read_checkpoint,
        write_checkpoint,
    )

    from .mixin import (
        HubFiles,
        HubMixin,
        HubTarget,
        from_pretrained,
        load_pretrained,
        push_to_hub,
        upload_checkpoint,
        write_learning_curve,
    )

_EXPORTS = {
    **dict.fromkeys(
        ("FORMAT_VERSION", "MIGRATIONS", "CheckpointError", "read_checkpoint", "write_checkpoint"),
        "latent_skills.checkpoint",
    ),
    **dict.fromkeys(
        (
            "HubFiles",
            "HubMixin",
            "HubTarget",
            "from_pretrained",
            "load_pretrained",
            "push_to_hub",
            "upload_checkpoint",
            "write_learning_curve",
        ),
        ".mixin",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "CheckpointError",
    "HubFiles",
    "HubMixin",
    "HubTarget",
    "from_pretrained",
    "load_pretrained",
    "push_to_hub",
    "read_checkpoint",
    "upload_checkpoint",
    "write_checkpoint",
    "write_learning_curve",
]
