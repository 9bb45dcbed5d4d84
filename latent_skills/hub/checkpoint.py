"""The checkpoint format: ``config.json`` (what the agent is) + ``model.safetensors`` (its tensors).

``config.json`` holds ``format_version``, ``library_version``, ``agent_type`` and whatever the agent
needs to rebuild itself (its config, observation rule, spaces, dataset id, evaluation env). Loading is
strict: a missing or extra tensor, a wrong shape, a newer format or a damaged file is an error that
names the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

Migration = Callable[
    [dict[str, Any], dict[str, torch.Tensor]], tuple[dict[str, Any], dict[str, torch.Tensor]]
]
# Version policy: FORMAT_VERSION goes up whenever config.json or model.safetensors change in a way
# older code cannot read, and that change registers MIGRATIONS[old] = a function turning a format
# `old` checkpoint (meta, tensors) into format `old + 1`. read_checkpoint chains them, so checkpoints
# already shared (on the Hub or on disk) keep loading. Format 1 is the first: nothing to migrate yet.
MIGRATIONS: dict[int, Migration] = {}


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded as asked."""


def write_checkpoint(path: str | os.PathLike, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``meta`` (JSON-serialisable) and ``tensors`` into folder ``path``; returns the folder.

    Both files are written to temporary names and renamed, so an interrupted save never leaves a
    half-written checkpoint behind under the real names.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, **meta}
    contiguous = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    tmp_weights, tmp_config = folder / f".{WEIGHTS_NAME}.tmp", folder / f".{CONFIG_NAME}.tmp"
    save_file(contiguous, str(tmp_weights), metadata={"format_version": str(FORMAT_VERSION)})
    tmp_config.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    os.replace(tmp_weights, folder / WEIGHTS_NAME)
    os.replace(tmp_config, folder / CONFIG_NAME)
    return folder


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint folder; raise :class:`CheckpointError` naming what is wrong."""
    folder = Path(path)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise CheckpointError(
                f"{folder} is not a latent-skills checkpoint: {needed.name} is missing "
                f"(a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME})."
            )
    try:
        meta = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path} is not valid JSON ({exc}); the checkpoint is damaged.") from exc
    if not isinstance(meta, dict) or "format_version" not in meta or "agent_type" not in meta:
        raise CheckpointError(
            f"{config_path} lacks format_version/agent_type: not a latent-skills checkpoint."
        )
    version = meta["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} has checkpoint format {version!r}, newer than this latent-skills reads "
            f"({FORMAT_VERSION}): upgrade with `pip install -U latent-skills`."
        )
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path} cannot be read ({exc}); the checkpoint is damaged.") from exc
    return _migrate(folder, meta, tensors)


def _migrate(
    folder: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Bring an older-format checkpoint up to FORMAT_VERSION, one registered step at a time."""
    version = meta["format_version"]
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise CheckpointError(
                f"{folder} has checkpoint format {version}, which this latent-skills cannot read: it "
                f"reads format {FORMAT_VERSION} and migrates from {sorted(MIGRATIONS) or 'no older format'}."
            )
        meta, tensors = step(dict(meta), dict(tensors))
        version += 1
        meta["format_version"] = version
    return meta, tensors


def split_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    start = prefix + "."
    return {name[len(start) :]: t for name, t in tensors.items() if name.startswith(start)}
