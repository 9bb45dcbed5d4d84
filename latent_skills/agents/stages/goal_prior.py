"""Stage 2 of LDGC, ``prior``: the goal-conditioned diffusion prior p(z | s0, g), on hindsight goals."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from latent_skills.config import LDGCConfig
from latent_skills.nn import LatentDenoiser, StateNormalizer

from ..resume import NumpyGeneratorState
from ..spec import AgentSpec
from .base import Shard, StageContext
from .prior import PriorStage

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows


def hindsight_goals(
    windows: SkillWindows,
    achieved: slice,
    mean_steps: float,
    window_idx: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Achieved goals (the ``achieved`` part of the flat state) k ~ Geometric(mean ``mean_steps``)
    steps after each window's first state, in the same episode (the episode's last state where it
    ends sooner), ``(n, G)``."""
    k = rng.geometric(1.0 / mean_steps, len(window_idx))
    return windows.episodes.observations[windows.future_rows(window_idx, k), achieved]


class GoalPriorStage(PriorStage[LDGCConfig]):
    """p(z | s0, g) with hindsight goals: g is the achieved goal k ~ Geometric(mean
    ``hindsight_horizons`` · H) steps after s0 in the same episode (its last state where it ends sooner)."""

    shaped_by: ClassVar[tuple[str, ...]] = (*PriorStage.shaped_by, "hindsight_horizons", "goal_dropout")
    condition_kind = "state+goal"

    @classmethod
    def build_modules(cls, config: LDGCConfig, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        # "goal" dropout: the condition ends in a goal-present flag (see GoalDiffusionPrior)
        cond_dim = state_dim + (1 if config.goal_dropout == "goal" else 0)
        latent_norm = StateNormalizer(config.latent_dim)
        denoiser = LatentDenoiser(config.latent_dim, cond_dim, widths=config.denoiser_widths)
        return {"latent_norm": latent_norm, "denoiser": denoiser}

    def __init__(self, ctx: StageContext[LDGCConfig]) -> None:
        super().__init__(ctx)
        # its own stream, apart from the batches: same seed, same goals, same weights
        self.hindsight_rng = np.random.default_rng([ctx.streams.seed, ctx.streams.index, 1])
        self.resumables["hindsight"] = NumpyGeneratorState(self.hindsight_rng)
        self.achieved = ctx.spec.state_layout.slice_of("achieved_goal")

    def hindsight_goals(self, window_idx: np.ndarray) -> np.ndarray:
        c = self.config
        return hindsight_goals(
            self.ctx.windows, self.achieved, c.hindsight_horizons * c.horizon, window_idx, self.hindsight_rng
        )

    def conditions(self, idx: np.ndarray, shard: Shard) -> tuple[torch.Tensor, torch.Tensor | None]:
        states = self.gather(self.first, idx).float()
        prior = self.ctx.prior
        # the goals of the global batch, as one process draws them
        goals = self.tensor(shard.take(self.hindsight_goals(shard.batch)))
        return prior.condition(states, goals=goals), prior.null_condition(states)
