"""BCQ-H: batch-constrained Q-learning over temporally abstract skills (LDCQ paper §5.3, ablation).

The same skill VAE and the same Q-learning as :class:`~latent_skills.agents.ldcq.LDCQ`, but every
candidate latent (the target's max, acting, ``sample_latents``) comes from the VAE's conditional
Gaussian prior p(z | s0) instead of the diffusion prior: it isolates what diffusion adds. The paper
fits a separate Gaussian prior as large as its diffusion model; here it is the VAE's own prior, trained
with the skills by the KL term (only that term reaches it, so it fits the posteriors per state).
There is no diffusion prior, so no prior stage and no denoiser in the checkpoint.
"""

from __future__ import annotations

from latent_skills.config import BCQHConfig

from .ldcq import QLearningAgent
from .priors import SkillVAEPrior
from .registry import register_agent
from .selectors import QArgmax
from .stages import QStage, SkillsStage


@register_agent
class BCQH(QLearningAgent):
    """Batch-constrained Q-learning over skills (BCQ-H, the ablation of *Reasoning with Latent
    Diffusion in Offline Reinforcement Learning*, §5.3): LDCQ's skills and Q-learning, with every
    candidate skill drawn from the skill VAE's conditional Gaussian prior p(z | s) instead of a
    diffusion model, which isolates what latent diffusion adds.

    Stages: skills, q. Acting: :class:`~latent_skills.agents.priors.GaussianPrior`,
    :class:`~latent_skills.agents.selectors.QArgmax`.
    """

    config_class = BCQHConfig
    config: BCQHConfig
    stages = (SkillsStage, QStage)
    prior = SkillVAEPrior
    selector = QArgmax


__all__ = ["BCQH"]
