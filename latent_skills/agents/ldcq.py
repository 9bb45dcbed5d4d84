"""LDCQ: Latent Diffusion-Constrained Q-learning (paper §4.2, Algorithm 1).

Skills, the latent diffusion prior p(z | s), and clipped double Q(s, z) learned with targets

    y = r + γ^length · (1 − done) · max_{z_i ~ p(z | s')} min_j Q'_j(s', z_i)

(:class:`~latent_skills.agents.stages.QStage`). With ``distill_steps`` > 0 a few-step student of the
prior (:class:`~latent_skills.agents.stages.DistillStage`) samples the bank and acting's
candidates. Acting samples ``act_candidates`` latents from the
prior at s and takes the argmax of min_j Q_j (:class:`~latent_skills.agents.selectors.QArgmax`).
"""

from __future__ import annotations

from latent_skills.config import BCQHConfig, LatentDiffuserConfig, LDCQConfig

from .base import LatentSkillAgent
from .priors import DiffusionPrior
from .registry import register_agent
from .selectors import QArgmax
from .stages import CandidateBank, DistillStage, PriorStage, QStage, SkillsStage, build_candidate_bank


class QLearningAgent(LatentSkillAgent):
    """What every agent with a Q stage shares: its candidate bank, public for inspection."""

    config: LDCQConfig | BCQHConfig | LatentDiffuserConfig

    def build_bank(self, progress_bar: bool = True, chunk_states: int | None = None) -> CandidateBank:
        """Sample ``q_candidates`` latents from the prior for every distinct next state."""
        prior = self.policy.prior.for_targets
        return build_candidate_bank(
            self.data.windows, prior, self.config, self.device, progress_bar, chunk_states
        )


@register_agent
class LDCQ(QLearningAgent):
    """Latent Diffusion-Constrained Q-learning (LDCQ, *Reasoning with Latent Diffusion in Offline
    Reinforcement Learning*): a β-VAE learns H-step skills, a latent diffusion prior learns which skills
    the data supports in each state, and a clipped double Q-function over (state, skill) picks the best
    of the skills sampled from that prior; the chosen skill is decoded into actions closed-loop.

    Stages: skills, prior, (distill), q. Acting: :class:`~latent_skills.agents.priors.DiffusionPrior`
    proposes ``act_candidates`` latents, :class:`~latent_skills.agents.selectors.QArgmax` picks one.
    """

    config_class = LDCQConfig
    config: LDCQConfig
    stages = (SkillsStage, PriorStage, DistillStage, QStage)
    prior = DiffusionPrior
    selector = QArgmax


__all__ = ["LDCQ", "CandidateBank", "QLearningAgent"]
