"""Format versions and the migrations that bring an older checkpoint up to the current one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .format import CheckpointError

FORMAT_VERSION = 7

Migration = Callable[
    [dict[str, Any], dict[str, torch.Tensor]], tuple[dict[str, Any], dict[str, torch.Tensor]]
]
# Version policy: FORMAT_VERSION goes up whenever config.json or model.safetensors change in a way
# older code cannot read, and that change registers MIGRATIONS[old] = a function turning a format
# `old` checkpoint (meta, tensors) into format `old + 1`. read_checkpoint chains them, so checkpoints
# already shared (on the Hub or on disk) keep loading. A migration is also run on the tensor files'
# headers (the same dict with TensorInfo values) before any tensor is read: it may rename or drop
# keys freely, and must pass values it does not make through untouched.
MIGRATIONS: dict[int, Migration] = {}


def _format_1_to_2(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 2 stores the evaluation env as ``{"id", "kwargs", "max_episode_steps"}`` and records file
    hashes; format 1's full EnvSpec JSON is still read (and checked against the registry when the env
    is built), and it has no hashes to check. Older readers refuse format 2 with "upgrade" instead of
    failing on the new env form."""
    return meta, tensors


def _format_2_to_3(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 3 adds ``ddpm_variance``, ``goal_dropout`` (goal-conditioned priors) and
    ``energy_q_scale`` (LatentDiffuser). Agents saved before sampled DDPM with β̃_t, dropped the whole
    condition for guidance and weighted raw β·Q, so that is what they keep."""
    config = meta.get("config")
    if isinstance(config, dict):
        config = {**config}
        config.setdefault("ddpm_variance", "posterior")
        if "hindsight_horizons" in config:
            config.setdefault("goal_dropout", "condition")
        if "energy_beta" in config:
            config.setdefault("energy_q_scale", "raw")
        meta["config"] = config
    return meta, tensors


def _format_3_to_4(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 4 adds ``per_beta_schedule`` and ``success_cut`` (Q-learning agents). Agents saved
    before grew PER's β by a fixed step rule and bootstrapped at success cuts, so they keep that."""
    config = meta.get("config")
    if isinstance(config, dict) and "per_alpha" in config:
        config = {**config}
        config.setdefault("per_beta_schedule", "steps")
        config.setdefault("success_cut", "bootstrap")
        meta["config"] = config
    return meta, tensors


def _format_4_to_5(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 5 adds ``skill_windows``; agents saved before learned skills from every window."""
    config = meta.get("config")
    if isinstance(config, dict):
        meta["config"] = {**config, "skill_windows": config.get("skill_windows", "all")}
    return meta, tensors


def _format_5_to_6(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 6 adds ``config_sha256`` (config.json's own hash). Older checkpoints have none, so their
    config.json is checked only for what it must hold (file hashes from format 2 on); loading them
    otherwise changes nothing."""
    return meta, tensors


def _format_6_to_7(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 7 adds the image encoder's fields (``image_steps``, ``image_lr``, ``image_batch_size``,
    ``image_beta``) and, for image observations, its weights (``observation_encoder.*``). Older agents
    observed flat vectors only, which never read these fields: they get today's defaults."""
    config = meta.get("config")
    if isinstance(config, dict):
        defaults = {"image_steps": 50_000, "image_lr": 1e-4, "image_batch_size": 128, "image_beta": 1.0}
        meta["config"] = {**defaults, **config}
    return meta, tensors


MIGRATIONS[1] = _format_1_to_2
MIGRATIONS[2] = _format_2_to_3
MIGRATIONS[3] = _format_3_to_4
MIGRATIONS[4] = _format_4_to_5
MIGRATIONS[5] = _format_5_to_6
MIGRATIONS[6] = _format_6_to_7


def migrate(
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
