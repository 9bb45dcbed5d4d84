"""The agents' configs, each made of the settings groups of the parts it has
(:mod:`latent_skills.config.settings`), with the defaults and quick-preset values it changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import AgentConfig
from .settings import (
    DiffusionPriorSettings,
    DistillSettings,
    EnergySettings,
    GoalSettings,
    PlanningSettings,
    QSettings,
    SamplingSettings,
)


@dataclass
class DiffusionPriorConfig(AgentConfig, DiffusionPriorSettings, SamplingSettings):
    """Skills (stage 1) and the latent diffusion prior (stage 2) with its sampler: the base agent
    ``LatentSkillAgent`` (diffusion behaviour cloning) and every agent with a diffusion prior."""


@dataclass
class LDCQConfig(DiffusionPriorConfig, QSettings, DistillSettings):
    """LDCQ adds stage 3, diffusion-constrained clipped double Q-learning over (s, z), and an
    optional few-step student of the prior's solver (stage "distill")."""


@dataclass
class LDGCConfig(DiffusionPriorConfig, GoalSettings):
    """LDGC: the prior p(z | s0, goal) learns from hindsight goals; no Q-function. (How w, the
    candidates and hindsight_horizons were chosen: BENCHMARKS.md, "Settings chosen by measurement".)"""

    # classifier-free guidance toward the goal: w > 1 sharpens p(z | s, g) beyond the conditional
    guidance: float = 2.0
    # acting takes the medoid of this many guided samples: one fixed-noise sample (deterministic=True)
    # can sit in a tail of p(z | s, g) at every choice
    act_candidates: int = 16


@dataclass
class LDCPConfig(DiffusionPriorConfig, PlanningSettings):
    """LDCP adds stage 3, a temporally abstract world model p(s_{t+H} | s_t, z), and plans with it:
    ``plan_candidates`` prior samples per state, searched ``plan_depth`` skills deep."""

    # quick plans one skill deep: a briefly trained world model compounds its error from predicted
    # states (BENCHMARKS.md, "Settings chosen by measurement")
    quick_values: ClassVar[dict[str, Any]] = {
        "dynamics_widths": (128, 128),
        "dynamics_lr": 1e-3,
        "dynamics_steps": 3000,
        "plan_candidates": 16,
        "plan_depth": 1,
    }


# What BCQH never reads: it has no diffusion prior, so no prior stage, no solver and no student.
_PRIOR_FIELDS = tuple(sorted(set(DiffusionPriorConfig.field_names()) - set(AgentConfig.field_names())))
_DISTILL_FIELDS = ("distill_steps", "distill_nfe", "distill_batch_size", "distill_lr", "distilled_for")


@dataclass
class BCQHConfig(AgentConfig, QSettings):
    """BCQ-H (paper §5.3): LDCQ's Q-learning with candidates from the skill VAE's Gaussian prior
    p(z | s0) instead of the diffusion prior, so it has no prior, sampler or distillation fields.
    They are its ``retired_fields``: values for them (older checkpoints carried them; a recipe or
    sweep may set them for every agent) are checked and dropped."""

    retired_fields: ClassVar[tuple[str, ...]] = (*_PRIOR_FIELDS, *_DISTILL_FIELDS)


@dataclass
class LatentDiffuserConfig(DiffusionPriorConfig, QSettings, EnergySettings):
    """LatentDiffuser adds stage 4, a time-dependent energy model trained by contrastive energy
    prediction, and samples latents from p(z | s) · exp(β Q(s, z)) by energy-guided diffusion.
    LDCQ's Q-learning, without its distillation (whose fields are ``retired_fields``, as BCQH's).

    The paper text here (papers/001) gives no numbers for the energy model; the defaults are QGPO's
    (Lu et al. 2023), whose contrastive energy prediction it uses: β = 3, K = 16 support samples
    per state (32 on AntMaze), lr 3e-4, batch 256, four 256-wide SiLU layers, 100 epochs of 10k steps,
    guidance scale 1.
    """

    # the paper executes one sample of the guided prior; more candidates take the argmax of Q
    act_candidates: int = 1

    # quick: LDCQ's argmax over 500 candidates, now guided ones, and an energy model sized like its critic
    quick_values: ClassVar[dict[str, Any]] = {
        "act_candidates": 500,
        "energy_widths": (128, 128),
        "energy_lr": 1e-3,
        "energy_steps": 3000,
    }
    retired_fields: ClassVar[tuple[str, ...]] = _DISTILL_FIELDS


#: The acting fields of every agent with a diffusion prior (variants add their own).
ACTING_FIELDS: tuple[str, ...] = DiffusionPriorConfig.ACTING

__all__ = [
    "ACTING_FIELDS",
    "BCQHConfig",
    "DiffusionPriorConfig",
    "LDCPConfig",
    "LDCQConfig",
    "LDGCConfig",
    "LatentDiffuserConfig",
]
