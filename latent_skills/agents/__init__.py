"""Agents that learn latent skills from offline data and act with them."""

from .base import LatentSkillAgent, TrainingDivergedError
from .ldcq import LDCQ

__all__ = ["LDCQ", "LatentSkillAgent", "TrainingDivergedError", "load_agent"]


def load_agent(path: str, device: str = "auto") -> LatentSkillAgent:
    """Load any latent-skills checkpoint folder as the agent class it was saved from."""
    return LatentSkillAgent.load(path, device=device)
