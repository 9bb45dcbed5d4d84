"""Checkpoints: a folder with ``config.json`` and ``model.safetensors`` (no pickle anywhere)."""

from .checkpoint import FORMAT_VERSION, CheckpointError, read_checkpoint, write_checkpoint

__all__ = ["FORMAT_VERSION", "CheckpointError", "read_checkpoint", "write_checkpoint"]
