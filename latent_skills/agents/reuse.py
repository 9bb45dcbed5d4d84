"""Reusing trained stages of one agent in another (``LatentSkillAgent.reuse_stages``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .training_data import set_state_stats

if TYPE_CHECKING:
    from .base import LatentSkillAgent
    from .stages import TrainingStage


def reuse_stages(
    agent: LatentSkillAgent, source: LatentSkillAgent, stages: tuple[str, ...] | list[str]
) -> LatentSkillAgent:
    """Copy the modules of ``source``'s trained ``stages`` into ``agent`` (see the method)."""
    if agent.spec != source.spec:
        raise ValueError("reuse_stages needs agents built on the same dataset and env")
    if agent.spec.learned_encoder and "images" not in stages and set(stages) - set(agent.skipped_stages()):
        raise ValueError(
            "these stages learned from the states of the source's image encoder: reuse it with them, "
            f"reuse_stages(source, {['images', *stages]})"
        )
    for stage in stages:
        ours = shared_stage(agent, source, stage)
        if stage not in source.stages_completed:
            raise ValueError(f"{type(source).__name__} has not trained stage {stage!r}")
        differ = [f for f in ours.shaped_by if getattr(agent.config, f) != getattr(source.config, f)]
        if differ:
            raise ValueError(f"stage {stage!r}: the configs differ in {differ}")
        for name in ours.creates:
            try:
                agent._modules[name].load_state_dict(source.modules()[name].state_dict())
            except RuntimeError as exc:
                raise ValueError(f"stage {stage!r}: {name} does not fit this agent: {exc}") from exc
        if stage not in agent.stages_completed:
            agent.stages_completed = [s for s in agent.stage_names() if s in {*agent.stages_completed, stage}]
    if source._data is not None and "skills" in stages:
        # same windows, and the encoder is the same: its posterior cache is valid here too
        agent._data = source._data.sharing_windows(agent._data)
    if "images" in stages and "images" not in agent.skipped_stages():
        # the states are the source's encoder's: so are their statistics, in every normaliser
        set_state_stats(
            agent.modules(), agent.data.rebuild() if "skills" not in stages else agent.data.windows
        )
    return agent


def shared_stage(agent: LatentSkillAgent, source: LatentSkillAgent, stage: str) -> type[TrainingStage]:
    """The stage class both agents train ``stage`` with, or a ValueError saying why it is not shared."""
    mine = {s.name: s for s in agent.stages}.get(stage)
    theirs = {s.name: s for s in source.stages}.get(stage)
    if mine is None or theirs is None:
        raise ValueError(
            f"stage {stage!r} is not shared by {type(agent).__name__} and {type(source).__name__}"
        )
    if mine.condition_kind != theirs.condition_kind:
        raise ValueError(
            f"stage {stage!r}: {type(source).__name__}'s prior conditions on {theirs.condition_kind}, "
            f"{type(agent).__name__}'s on {mine.condition_kind}: reuse only 'skills' and train the prior"
        )
    if mine is not theirs:
        raise ValueError(
            f"stage {stage!r} is trained differently by {type(agent).__name__} ({mine.__name__}) and "
            f"{type(source).__name__} ({theirs.__name__})"
        )
    return mine
