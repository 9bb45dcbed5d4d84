"""Typed agent configs, presets, and their JSON form.

- :mod:`~latent_skills.config.fields` — how a field is declared (:func:`setting`) and checked.
- :mod:`~latent_skills.config.settings` — every field, once, grouped by the part that reads it.
- :mod:`~latent_skills.config.base` — ``AgentConfig``: presets, checks, the JSON round trip.
- :mod:`~latent_skills.config.agents` — each agent's config, made of the groups of its parts.
- :mod:`~latent_skills.config.presets` — the ``quick`` preset's shared values, the paper's H per task.

Importing it loads no heavy library (the solvers' registry it reads is torch-free).
"""

from latent_skills.diffusion.solvers import SOLVERS

from .agents import (
    ACTING_FIELDS,
    BCQHConfig,
    DiffusionPriorConfig,
    LatentDiffuserConfig,
    LDCPConfig,
    LDCQConfig,
    LDGCConfig,
)
from .base import AgentConfig, config_fields
from .fields import (
    FIELD_CHOICES,
    FIELD_RANGES,
    NON_NEGATIVE,
    POSITIVE,
    SETTINGS,
    UNIT_OPEN_TOP,
    ConfigError,
    Range,
    Setting,
    field_range,
    setting,
)
from .presets import QUICK, default_horizon, quick_preset
from .settings import CANDIDATE_SOURCES, DDPM_VARIANCES

__all__ = [
    "ACTING_FIELDS",
    "CANDIDATE_SOURCES",
    "DDPM_VARIANCES",
    "FIELD_CHOICES",
    "FIELD_RANGES",
    "NON_NEGATIVE",
    "POSITIVE",
    "QUICK",
    "SETTINGS",
    "SOLVERS",
    "UNIT_OPEN_TOP",
    "AgentConfig",
    "BCQHConfig",
    "ConfigError",
    "DiffusionPriorConfig",
    "LDCPConfig",
    "LDCQConfig",
    "LDGCConfig",
    "LatentDiffuserConfig",
    "Range",
    "Setting",
    "config_fields",
    "default_horizon",
    "field_range",
    "quick_preset",
    "setting",
]
