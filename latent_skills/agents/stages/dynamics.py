"""Stage 3 of LDCP, ``dynamics``: the abstract world model p(s_{t+H} | s_t, z)."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn

from latent_skills.config import LDCPConfig
from latent_skills.nn import SkillWorldModel

from ..spec import AgentSpec
from .base import StageContext, StepResult, TrainingStage

# Windows used to standardise the world model's targets (a sample, so huge datasets cost no memory).
DELTA_STATS_WINDOWS = 200_000


class DynamicsStage(TrainingStage[LDCPConfig]):
    """The abstract world model p(s_{t+H} | s_t, z) on (s_t, z ~ q(z|τ), s_{t+H}), the latents
    detached (the VAE is not trained by it)."""

    name = "dynamics"
    creates = ("dynamics",)
    shaped_by = ("horizon", "latent_dim", "dynamics_widths")
    steps_field = "dynamics_steps"

    @classmethod
    def build_modules(cls, config: LDCPConfig, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        return {"dynamics": SkillWorldModel(state_dim, config.latent_dim, widths=config.dynamics_widths)}

    def __init__(self, ctx: StageContext[LDCPConfig]) -> None:
        super().__init__(ctx)
        c, w = ctx.config, ctx.windows
        self.dynamics = cast(SkillWorldModel, ctx.modules["dynamics"])
        self.mean, self.std = ctx.posterior()
        # Windows whose end state is what a skill reaches: H steps later, or a termination. A
        # truncated episode's short tail windows stop early and would teach shorter skills.
        self.usable = np.flatnonzero((w.lengths == c.horizon) | w.dones)
        if len(self.usable) == 0:
            raise ValueError(
                f"No window of the dataset runs horizon={c.horizon} steps or ends in a termination, so "
                "the world model has no skill outcome to learn; choose a smaller horizon"
            )
        self.first, self.end = w.first_states, w.next_states
        sample = self.usable
        if len(self.usable) > DELTA_STATS_WINDOWS:
            sample = np.sort(self.rng.choice(self.usable, DELTA_STATS_WINDOWS, replace=False))
        self.dynamics.set_delta_stats(self.tensor(self.first[sample]), self.tensor(self.end[sample]))
        self.trained = [self.dynamics]
        self.optimizer = torch.optim.Adam(self.dynamics.parameters(), lr=c.dynamics_lr)

    def loss(self, step: int) -> StepResult:
        c = self.config
        idx, shard = self.take_shard(
            self.usable[self.rng.integers(0, len(self.usable), c.dynamics_batch_size)]
        )
        eps = shard.draw(self.normal_draw(c.latent_dim))
        z = self.gather(self.mean, idx) + self.gather(self.std, idx) * eps  # a fresh z ~ q(z|τ), no gradient
        out = self.dynamics.loss(self.gather(self.first, idx), z, self.gather(self.end, idx))
        return StepResult(out["loss"], {"loss": out["loss"], "mse": out["mse"]}, shard)
