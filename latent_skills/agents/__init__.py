"""Agents that learn latent skills from offline data and act with them."""

from .base import LatentSkillAgent, TrainingDivergedError
from .bcqh import BCQH
from .latent_diffuser import LatentDiffuser
from .ldcp import LDCP
from .ldcq import LDCQ
from .ldgc import LDGC
from .resume import TrainingInterrupted

__all__ = [
    "BCQH",
    "LDCP",
    "LDCQ",
    "LDGC",
    "LatentDiffuser",
    "LatentSkillAgent",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "load_agent",
]


def load_agent(path_or_repo_id: str, device: str = "auto", **hub_kwargs) -> LatentSkillAgent:
    """Load any latent-skills checkpoint (a folder or a Hub repo id) as the class it was saved from."""
    return LatentSkillAgent.from_pretrained(path_or_repo_id, device=device, **hub_kwargs)
