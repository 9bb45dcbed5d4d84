"""An agent as a checkpoint folder and back (the format itself: :mod:`latent_skills.hub.checkpoint`).

Loading picks the class from the registry by the name ``config.json`` gives; nothing the checkpoint
names is imported or called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from latent_skills.config import ConfigError
from latent_skills.hub.checkpoint import CheckpointError, read_checkpoint, split_state, write_checkpoint

from .registry import agent_class
from .spec import AgentSpec
from .stages import TrainingState

if TYPE_CHECKING:
    from .base import LatentSkillAgent


def write_agent(
    agent: LatentSkillAgent, path: str | Path, run: dict[str, Any] | None, state: TrainingState | None
) -> Path:
    """``config.json`` + ``model.safetensors`` (+ the training state of an unfinished ``run``)."""
    tensors = {
        f"{prefix}.{name}": value
        for prefix, module in agent._modules.items()
        for name, value in module.state_dict().items()
    }
    meta = {
        "agent_type": type(agent).__name__,
        "library_version": _library_version(),
        "config": agent.config.to_dict(),
        "spec": agent.spec.to_dict(),
        "stages_completed": list(agent.stages_completed),
        "num_timesteps": agent.num_timesteps,
        "world_size": agent.world_size,
    }
    training_tensors = None
    if run is not None:
        meta["training_state"] = {**run, "stage_state": None if state is None else state[0]}
        training_tensors = {} if state is None else {f"stage.{k}": v for k, v in state[1].items()}
    return write_checkpoint(path, meta, tensors, training_tensors)


def read_agent(
    cls: type[LatentSkillAgent], base: type[LatentSkillAgent], path: str | Path, device: str | torch.device
) -> LatentSkillAgent:
    """The agent saved in ``path``, as ``cls`` (``base``: any registered class)."""
    meta, tensors = read_checkpoint(path, training_state=True)
    training_tensors = split_state(tensors, "training_state")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("training_state.")}
    kind = meta["agent_type"]
    try:
        target = agent_class(kind)
    except ValueError as exc:
        raise CheckpointError(f"{path} holds an agent of unknown type {kind!r}: {exc}") from exc
    if cls is not base and target is not cls:
        raise CheckpointError(
            f"{path} holds a {kind} agent, not a {cls.__name__}: load it with {kind}.load(...) "
            "or latent_skills.load_agent(...)"
        )
    try:
        config = target.config_class.from_saved(meta["config"], source=f"{path}/config.json")
        spec = AgentSpec.from_dict(meta["spec"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}/config.json does not describe a valid {kind}: {exc}") from exc
    agent = target(config, spec, device)
    stray = sorted({name.split(".", 1)[0] for name in tensors} - set(agent._modules))
    if stray:
        raise CheckpointError(f"{path}/model.safetensors has tensors for unknown modules {stray}")
    for prefix, module in agent._modules.items():
        try:
            module.load_state_dict(split_state(tensors, prefix), strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}/model.safetensors does not fit this {kind} ({prefix}): {exc}"
            ) from exc
    agent.stages_completed = list(meta.get("stages_completed", []))
    agent.num_timesteps = int(meta.get("num_timesteps", 0))
    agent.world_size = int(meta.get("world_size", 1))
    if isinstance(meta.get("training_state"), dict):
        agent._resume_state = (meta["training_state"], training_tensors)
    return agent


def _library_version() -> str:
    # the source's own version (the one place it is written), also right for a source checkout or an
    # editable install whose installed metadata is older than the code
    from latent_skills import __version__

    return __version__
