"""Stage 2, ``prior``: the latent diffusion prior p(z | s0)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch
from torch import nn

from latent_skills.config import DiffusionPriorConfig
from latent_skills.diffusion import DiffusionSchedule, diffusion_draws, diffusion_loss
from latent_skills.nn import LatentDenoiser, StateNormalizer

from ..spec import AgentSpec
from .base import Shard, StageContext, StepResult, TrainingStage
from .skills import skill_window_pool

PriorConfigT = TypeVar("PriorConfigT", bound=DiffusionPriorConfig)


class PriorStage(TrainingStage[PriorConfigT]):
    """DDPM over standardised z ~ q(z | τ) conditioned on s0: x0-prediction, min-SNR weighting,
    condition dropout for classifier-free guidance."""

    name = "prior"
    creates = ("latent_norm", "denoiser")
    shaped_by: ClassVar[tuple[str, ...]] = ("diffusion_timesteps", "denoiser_widths")
    steps_field = "prior_steps"
    condition_kind = "state"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        # The prior diffuses standardised latents: the schedule assumes unit-scale data.
        latent_norm = StateNormalizer(config.latent_dim)
        denoiser = LatentDenoiser(config.latent_dim, state_dim, widths=config.denoiser_widths)
        return {"latent_norm": latent_norm, "denoiser": denoiser}

    def __init__(self, ctx: StageContext[PriorConfigT]) -> None:
        super().__init__(ctx)
        self.denoiser = cast(LatentDenoiser, ctx.modules["denoiser"])
        self.latent_norm = cast(StateNormalizer, ctx.modules["latent_norm"])
        self.schedule = DiffusionSchedule(ctx.config.diffusion_timesteps).to(ctx.device)
        self.mean, self.std = ctx.posterior()
        self.pool = skill_window_pool(ctx.windows, ctx.config)
        # standardise z ~ q: its mean and total spread (spread of means + posterior noise)
        mean, std = (
            (self.mean, self.std) if self.pool is None else (self.mean[self.pool], self.std[self.pool])
        )
        spread = np.sqrt(mean.var(0) + np.square(std).mean(0))
        self.latent_norm.set_stats(mean.mean(0), spread)
        student = ctx.modules.get("student")
        if student is not None:  # distilled from the prior this stage replaces: sample the prior
            student.ready.zero_()  # type: ignore[operator]
        self.first = ctx.windows.first_states
        self.trained = [self.denoiser]
        self.optimizer = torch.optim.Adam(self.denoiser.parameters(), lr=ctx.config.prior_lr)

    def conditions(self, idx: np.ndarray, shard: Shard) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prior's condition for windows ``idx`` (this rank's rows of ``shard``) and what
        guidance's dropout replaces it with."""
        states = self.gather(self.first, idx).float()
        prior = self.ctx.prior
        return prior.condition(states), prior.null_condition(states)

    def loss(self, step: int) -> StepResult:
        c, device = self.config, self.ctx.device
        idx, shard = self.take_shard(self.draw_windows(c.prior_batch_size, self.pool))
        eps = shard.draw(self.normal_draw(c.latent_dim))
        z = self.gather(self.mean, idx) + self.gather(self.std, idx) * eps
        cond, null_cond = self.conditions(idx, shard)
        draws = shard.draw(
            lambda n: diffusion_draws((n, c.latent_dim), self.schedule, self.generator, device)
        )
        value = diffusion_loss(
            self.denoiser,
            self.latent_norm(z),
            cond,
            self.schedule,
            snr_clip=c.prior_snr_clip,
            cond_drop=c.prior_cond_drop,
            null_cond=null_cond,
            draws=draws,
        )
        return StepResult(value, {"loss": value}, shard)
