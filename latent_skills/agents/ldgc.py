"""LDGC: Latent Diffusion Goal Conditioning (paper §4.3).

The prior p(z | s0, g) is trained by supervised diffusion on hindsight goals: g is the achieved goal
of the state k steps after s0 in the same episode. Acting samples it with classifier-free guidance
toward the env's desired goal (the medoid of a few samples) and decodes it; there is no Q-function.

The condition is the flattened state with its desired-goal part replaced by g, standardised with the
*achieved*-goal statistics (g is an achieved goal in training; a dataset's own desired goals may
be constant, and their near-zero spread would blow up the test goal). So the denoiser, the
samplers and the checkpoint are the base agent's, unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from latent_skills.config import LDGCConfig

from .base import LatentSkillAgent, Stage
from .resume import NumpyGeneratorState
from .spec import AgentSpec

GOAL_PARTS = ("achieved_goal", "desired_goal")


def check_goal_observations(spec: AgentSpec) -> None:
    """LDGC needs an ``achieved_goal`` and a ``desired_goal`` of the same size in the observation."""
    flattener = spec.flattener
    if all(flattener.has(part) for part in GOAL_PARTS):
        achieved, desired = (flattener.slice_of(part) for part in GOAL_PARTS)
        if achieved.stop - achieved.start == desired.stop - desired.start:
            return
    parts = ["/".join(s.path) or "a Box" for s in flattener.segments]
    raise ValueError(
        "LDGC needs goal-conditioned observations: a Dict with 'achieved_goal' and 'desired_goal' of the "
        f"same size (as gymnasium-robotics' PointMaze, AntMaze and Kitchen have); this dataset's "
        f"observation holds {parts}. Use LDCQ for a dataset without goals."
    )


class LDGC(LatentSkillAgent):
    config_class = LDGCConfig
    config: LDGCConfig
    PRIOR_CONDITION = "state+goal"
    # the prior's shape also depends on how its hindsight goals were drawn
    STAGE_FIELDS = {
        **LatentSkillAgent.STAGE_FIELDS,
        "prior": (*LatentSkillAgent.STAGE_FIELDS["prior"], "hindsight_horizons"),
    }

    def __init__(self, config: LDGCConfig, spec: AgentSpec, device: str | torch.device = "auto") -> None:
        check_goal_observations(spec)
        self._achieved = spec.flattener.slice_of("achieved_goal")
        self._desired = spec.flattener.slice_of("desired_goal")
        super().__init__(config, spec, device)
        self._hindsight_rng = self._hindsight_stream()

    def _hindsight_stream(self) -> np.random.Generator:
        # its own stream, apart from the prior stage's batches: same seed, same goals, same weights
        return np.random.default_rng([self.config.seed, list(self.config.STAGES).index("prior"), 1])

    def _prior_stage(self) -> Stage:
        self._hindsight_rng = self._hindsight_stream()
        stage = super()._prior_stage()
        stage.resumables["hindsight"] = NumpyGeneratorState(self._hindsight_rng)
        return stage

    def hindsight_goals(self, window_idx: np.ndarray) -> np.ndarray:
        """Achieved goals k ~ Geometric(mean hindsight_horizons · H) steps after each window's first
        state, in the same episode (the episode's last state where it ends sooner), ``(n, G)``."""
        w = self.data.windows
        mean_steps = self.config.hindsight_horizons * self.config.horizon
        k = self._hindsight_rng.geometric(1.0 / mean_steps, len(window_idx))
        return w.episodes.observations[w.future_rows(window_idx, k), self._achieved]

    def _prior_condition(
        self, states: np.ndarray | torch.Tensor, window_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """The normalised state, its desired-goal part replaced by the goal: a hindsight goal in
        training (``window_idx`` given), the observation's own desired goal when acting."""
        s = self._tensor(np.asarray(states, np.float32)) if isinstance(states, np.ndarray) else states
        goals = s[:, self._desired] if window_idx is None else self._tensor(self.hindsight_goals(window_idx))
        norm = self.vae.normalizer
        cond = norm(s)
        cond[:, self._desired] = (goals - norm.mean[self._achieved]) / norm.std[self._achieved]
        return cond

    @torch.no_grad()
    def _choose_latents(
        self, states: torch.Tensor, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        """The medoid of ``act_candidates`` guided prior samples per state (1: that sample).

        No Q-function ranks them; the medoid is a typical latent of p(z | s, g), where one sample
        with the fixed noise of ``deterministic=True`` may sit in the same tail at every choice.
        """
        cond = self._prior_condition(states)
        candidates = self._sample_prior(
            cond, self.config.act_candidates, generator=generator, shared_noise=shared_noise
        )
        standardised = self.latent_norm(candidates)
        total_distance = torch.cdist(standardised, standardised).sum(-1)  # (B, n)
        best = total_distance.argmin(1)
        return candidates[torch.arange(len(states), device=states.device), best]
