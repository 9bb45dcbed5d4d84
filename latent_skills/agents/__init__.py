"""Agents that learn latent skills from offline data and act with them.

An agent is a composition (see :class:`LatentSkillAgent`): the skill VAE, a prior that proposes latent
skills (:mod:`.priors`), a selector that picks one (:mod:`.selectors`) and the stages that train them
(:mod:`.stages`). ``LDCQ``, ``LDGC``, ``LDCP``, ``BCQH`` and ``LatentDiffuser`` are the named ones; a
new one is a subclass that sets these four, decorated with :func:`register_agent`.
"""

from .base import LatentSkillAgent, TrainingDivergedError
from .bcqh import BCQH
from .latent_diffuser import LatentDiffuser
from .ldcp import LDCP
from .ldcq import LDCQ
from .ldgc import LDGC
from .policy import SkillPolicy
from .priors import DiffusionPrior, EnergyGuidedPrior, GaussianPrior, GoalDiffusionPrior, LatentPrior
from .registry import agent_class, agent_names, register_agent
from .resume import TrainingInterrupted
from .selectors import First, LatentSelector, Medoid, QArgmax, TreeSearch
from .stages import DynamicsStage, EnergyStage, GoalPriorStage, PriorStage, QStage, SkillsStage, TrainingStage

__all__ = [
    "BCQH",
    "LDCP",
    "LDCQ",
    "LDGC",
    "DiffusionPrior",
    "DynamicsStage",
    "EnergyGuidedPrior",
    "EnergyStage",
    "First",
    "GaussianPrior",
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


def load_agent(path_or_repo_id: str, device: str = "auto", **hub_kwargs) -> LatentSkillAgent:
    """Load any latent-skills checkpoint (a folder or a Hub repo id) as the class it was saved from."""
    return LatentSkillAgent.from_pretrained(path_or_repo_id, device=device, **hub_kwargs)
