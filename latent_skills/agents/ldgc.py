"""LDGC: Latent Diffusion Goal Conditioning (paper §4.3).

The prior p(z | s0, g) is trained by supervised diffusion on hindsight goals: g is the achieved goal
of the state k steps after s0 in the same episode (:class:`~latent_skills.agents.stages.GoalPriorStage`).
Acting samples it with classifier-free guidance toward the env's desired goal, takes the medoid of a
few samples and decodes it; there is no Q-function.

The condition is the flattened state with its desired-goal part replaced by g, standardised with the
*achieved*-goal statistics (:class:`~latent_skills.agents.priors.GoalDiffusionPrior`), so the
denoiser, the samplers and the checkpoint are the base agent's, unchanged.
"""

from __future__ import annotations

import numpy as np

from latent_skills.config import LDGCConfig

from .base import LatentSkillAgent
from .priors import GoalDiffusionPrior
from .registry import register_agent
from .selectors import Medoid
from .stages import GoalPriorStage, SkillsStage, hindsight_goals


@register_agent
class LDGC(LatentSkillAgent):
    """Latent Diffusion Goal Conditioning (LDGC, *Reasoning with Latent Diffusion in Offline
    Reinforcement Learning*, §4.3): a β-VAE learns H-step skills and a latent diffusion prior
    p(z | s, g) learns, from hindsight goals, which skills lead from a state toward a goal; acting
    samples it with classifier-free guidance toward the env's desired goal and decodes the medoid of
    the samples. No Q-function: it needs observations with ``achieved_goal`` and ``desired_goal``.

    Stages: skills, prior (goal-conditioned). Acting:
    :class:`~latent_skills.agents.priors.GoalDiffusionPrior`, :class:`~latent_skills.agents.selectors.Medoid`.
    """

    config_class = LDGCConfig
    config: LDGCConfig
    stages = (SkillsStage, GoalPriorStage)
    prior = GoalDiffusionPrior
    selector = Medoid

    def hindsight_goals(self, window_idx: np.ndarray, seed: int = 0) -> np.ndarray:
        """Achieved goals k ~ Geometric(mean hindsight_horizons · H) steps after each window's first
        state, in the same episode (the episode's last state where it ends sooner), ``(n, G)``."""
        c, achieved = self.config, self.spec.state_layout.slice_of("achieved_goal")
        mean_steps = c.hindsight_horizons * c.horizon
        return hindsight_goals(
            self.data.windows, achieved, mean_steps, window_idx, np.random.default_rng(seed)
        )


__all__ = ["LDGC"]
