"""Agents that learn latent skills from offline data and act with them.

An agent is a composition (see :class:`LatentSkillAgent`): the skill VAE, a prior that proposes latent
skills (:mod:`.priors`), a selector that picks one (:mod:`.selectors`) and the stages that train them
(:mod:`.stages`). ``LDCQ``, ``LDGC``, ``LDCP``, ``BCQH`` and ``LatentDiffuser`` are the named ones; a
new one is a subclass that sets these four, decorated with :func:`register_agent`.

The names below load on first use (torch and Stable-Baselines3 with them); the registry
(:mod:`.registry`) loads a library agent's module when its name is looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from latent_skills._lazy import lazy_exports

from .registry import agent_class, agent_names, register_agent

if TYPE_CHECKING:
    from .base import LatentSkillAgent
    from .bcqh import BCQH
    from .divergence import TrainingDivergedError
    from .latent_diffuser import LatentDiffuser
    from .ldcp import LDCP
    from .ldcq import LDCQ
    from .ldgc import LDGC
    from .policy import SkillPolicy
    from .priors import DiffusionPrior, EnergyGuidedPrior, GoalDiffusionPrior, LatentPrior, SkillVAEPrior
    from .resume import TrainingInterrupted
    from .selectors import First, LatentSelector, Medoid, QArgmax, TreeSearch
    from .stages import (
        DistillStage,
        DynamicsStage,
        EnergyStage,
        GoalPriorStage,
        PriorStage,
        QStage,
        SkillsStage,
        TrainingStage,
    )

_EXPORTS = {
    "LatentSkillAgent": ".base",
    "BCQH": ".bcqh",
    "TrainingDivergedError": ".divergence",
    "LatentDiffuser": ".latent_diffuser",
    "LDCP": ".ldcp",
    "LDCQ": ".ldcq",
    "LDGC": ".ldgc",
    "SkillPolicy": ".policy",
    **dict.fromkeys(
        ("DiffusionPrior", "EnergyGuidedPrior", "GoalDiffusionPrior", "LatentPrior", "SkillVAEPrior"),
        ".priors",
    ),
    "TrainingInterrupted": ".resume",
    **dict.fromkeys(("First", "LatentSelector", "Medoid", "QArgmax", "TreeSearch"), ".selectors"),
    **dict.fromkeys(
        (
            "DistillStage",
            "DynamicsStage",
            "EnergyStage",
            "GoalPriorStage",
            "PriorStage",
            "QStage",
            "SkillsStage",
            "TrainingStage",
        ),
        ".stages",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "BCQH",
    "LDCP",
    "LDCQ",
    "LDGC",
    "DiffusionPrior",
    "DistillStage",
    "DynamicsStage",
    "EnergyGuidedPrior",
    "EnergyStage",
    "First",
    "GoalDiffusionPrior",
    "GoalPriorStage",
    "LatentDiffuser",
    "LatentPrior",
    "LatentSelector",
    "LatentSkillAgent",
    "Medoid",
    "PriorStage",
    "QArgmax",
    "QStage",
    "SkillPolicy",
    "SkillVAEPrior",
    "SkillsStage",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "TrainingStage",
    "TreeSearch",
    "agent_class",
    "agent_names",
    "load_agent",
    "register_agent",
]


def load_agent(path_or_repo_id: str, device: str = "auto", **hub_kwargs: Any) -> LatentSkillAgent:
    """Load any latent-skills checkpoint (a folder or a Hub repo id) as the class it was saved from."""
    from .base import LatentSkillAgent

    return LatentSkillAgent.from_pretrained(path_or_repo_id, device=device, **hub_kwargs)
