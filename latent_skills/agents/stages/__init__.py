"""Training stages, one module each. A stage declares its name, the modules it creates and trains,
the config fields that shape them (two agents may share a trained stage only if these agree) and its
steps field; an instance is built from a :class:`StageContext` (the narrow view of its agent it
needs, not the agent), holds its optimiser and whatever it keeps between steps, and computes one
step's :class:`StepResult`, which is also all that its ``after_step`` reads.

- :class:`ImagesStage` — the image encoder, a β-VAE on single frames (first; skipped without images).
- :class:`SkillsStage` — the skill β-VAE over H-step windows (paper stage 1).
- :class:`PriorStage` — the latent diffusion prior p(z | s0) (stage 2); :class:`GoalPriorStage`
  trains p(z | s0, g) on hindsight goals (LDGC).
- :class:`DistillStage` — a few-step student of the prior's solver (LDCQ, optional).
- :class:`QStage` — diffusion-constrained clipped double Q-learning (LDCQ's stage 3), its candidates
  from a :class:`CandidateBank`.
- :class:`DynamicsStage` — the abstract world model p(s_{t+H} | s_t, z) (LDCP).
- :class:`EnergyStage` — LatentDiffuser's time-dependent energy model (contrastive energy prediction).
"""

from __future__ import annotations

from .base import Shard, StageContext, StageStreams, StepResult, TrainingStage, TrainingState
from .candidate_bank import CandidateBank, build_candidate_bank, sampling_chunk
from .distill import DistillStage
from .dynamics import DynamicsStage
from .energy import EnergyStage, build_energy_support
from .goal_prior import GoalPriorStage, hindsight_goals
from .images import ImagesStage
from .prior import PriorStage
from .q import QStage, q_target_terms
from .skills import SkillsStage, skill_window_pool

__all__ = [
    "CandidateBank",
    "DistillStage",
    "DynamicsStage",
    "EnergyStage",
    "GoalPriorStage",
    "ImagesStage",
    "PriorStage",
    "QStage",
    "Shard",
    "SkillsStage",
    "StageContext",
    "StageStreams",
    "StepResult",
    "TrainingStage",
    "TrainingState",
    "build_candidate_bank",
    "build_energy_support",
    "hindsight_goals",
    "q_target_terms",
    "sampling_chunk",
    "skill_window_pool",
]
