"""latent-skills: temporally-abstract skills from offline RL datasets with latent diffusion priors."""

from latent_skills.agents import LDCQ, LatentSkillAgent, TrainingDivergedError, load_agent
from latent_skills.config import AgentConfig, ConfigError, LDCQConfig

__version__ = "0.1.0.dev0"

__all__ = [
    "LDCQ",
    "AgentConfig",
    "ConfigError",
    "LDCQConfig",
    "LatentSkillAgent",
    "TrainingDivergedError",
    "__version__",
    "load_agent",
]
