"""latent-skills: temporally-abstract skills from offline RL datasets with latent diffusion priors."""

from latent_skills.agents import (
    BCQH,
    LDCP,
    LDCQ,
    LDGC,
    LatentDiffuser,
    LatentSkillAgent,
    TrainingDivergedError,
    TrainingInterrupted,
    load_agent,
)
from latent_skills.config import (
    AgentConfig,
    BCQHConfig,
    ConfigError,
    LatentDiffuserConfig,
    LDCPConfig,
    LDCQConfig,
    LDGCConfig,
)
from latent_skills.envs import SkillEnv, UntrustedEnvSpecError, latent_bounds

__version__ = "0.1.0.dev0"

__all__ = [
    "BCQH",
    "LDCP",
    "LDCQ",
    "LDGC",
    "AgentConfig",
    "BCQHConfig",
    "ConfigError",
    "LDCPConfig",
    "LDCQConfig",
    "LDGCConfig",
    "LatentDiffuser",
    "LatentDiffuserConfig",
    "LatentSkillAgent",
    "SkillEnv",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "UntrustedEnvSpecError",
    "__version__",
    "latent_bounds",
    "load_agent",
]
