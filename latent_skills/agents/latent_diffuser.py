"""LatentDiffuser: planning as energy-guided sampling from the latent diffusion prior (arXiv 2310.00311).

The optimal latent policy is ``π*(z | s) ∝ p(z | s) · exp(β Q(s, z))``. Skills, prior and Q are LDCQ's
(stages 1-3, the Q-function learned exactly as LDCQ learns it); stage 4 trains a time-dependent
energy model ``f(s, z_t, t)`` with the contrastive energy prediction loss of QGPO (Lu et al. 2023)
(:class:`~latent_skills.agents.stages.EnergyStage`). Sampling adds ``energy_guidance · ∇_z f`` to
the prior's score at every solver step (:class:`~latent_skills.agents.priors.EnergyGuidedPrior`);
with scale 1 and an exact ``f`` the samples follow π*.

Acting: ``act_candidates`` guided samples at s, then the argmax of min_j Q_j, as LDCQ picks. With
``act_candidates = 1`` (the paper preset) that is exactly the paper's rule, executing one sample of
π*; the quick preset keeps LDCQ's 500 candidates, now drawn from the guided prior. The Q stage's own
candidates (the target's max) stay unguided, so the critic is LDCQ's and can be reused from one.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from latent_skills.config import LatentDiffuserConfig
from latent_skills.nn import TwinCritic

from .ldcq import QLearningAgent
from .priors import EnergyGuidedPrior
from .registry import register_agent
from .selectors import QArgmax
from .stages import CandidateBank, EnergyStage, PriorStage, QStage, SkillsStage, build_energy_support


@register_agent
class LatentDiffuser(QLearningAgent):
    """LatentDiffuser (*Efficient Planning with Latent Diffusion*): LDCQ's skills, latent diffusion
    prior and Q-function, plus a time-dependent energy model trained by contrastive energy prediction,
    so that sampling the prior with energy guidance draws skills from p(z | s) · exp(β Q(s, z)); the
    best guided sample by Q is decoded into actions closed-loop.

    Stages: skills, prior, q, energy. Acting:
    :class:`~latent_skills.agents.priors.EnergyGuidedPrior`, :class:`~latent_skills.agents.selectors.QArgmax`.
    """

    config_class = LatentDiffuserConfig
    config: LatentDiffuserConfig
    stages = (SkillsStage, PriorStage, QStage, EnergyStage)
    prior = EnergyGuidedPrior
    selector = QArgmax

    def build_support(
        self, progress_bar: bool = False, chunk_states: int | None = None
    ) -> tuple[CandidateBank, np.ndarray]:
        """K unguided prior samples per window's first state, and min_j Q_j of each: ``(bank, q)``."""
        critic = cast(TwinCritic, self.modules()["critic"])
        return build_energy_support(
            self.data.windows,
            self.policy.prior.plain,
            critic,
            self.config,
            self.device,
            progress_bar,
            chunk_states,
        )


__all__ = ["LatentDiffuser"]
