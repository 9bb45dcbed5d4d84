"""latent-skills: temporally-abstract skills from offline RL datasets with latent diffusion priors.

Importing the package is cheap: the agents, ``SkillEnv`` and the rest load (torch, Stable-Baselines3
and Minari with them) the first time one of their names is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports
from latent_skills.config import (
    AgentConfig,
    BCQHConfig,
    ConfigError,
    DiffusionPriorConfig,
    LatentDiffuserConfig,
    LDCPConfig,
    LDCQConfig,
    LDGCConfig,
)

if TYPE_CHECKING:
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
    from latent_skills.envs import SkillEnv, UntrustedEnvSpecError, latent_bounds

__version__ = "0.1.0.dev0"

_EXPORTS = {
    **dict.fromkeys(
        (
            "BCQH",
            "LDCP",
            "LDCQ",
            "LDGC",
            "LatentDiffuser",
            "LatentSkillAgent",
            "TrainingDivergedError",
            "TrainingInterrupted",
            "load_agent",
        ),
        ".agents",
    ),
    **dict.fromkeys(("SkillEnv", "UntrustedEnvSpecError", "latent_bounds"), ".envs"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "BCQH",
    "LDCP",
    "LDCQ",
    "LDGC",
    "AgentConfig",
    "BCQHConfig",
    "ConfigError",
    "DiffusionPriorConfig",
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
