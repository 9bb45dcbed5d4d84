"""Stage 1, ``skills``: the skill β-VAE over H-step windows."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from latent_skills.config import AgentConfig
from latent_skills.nn import SkillVAE

from ..spec import AgentSpec
from .base import StageContext, StepResult, TrainingStage

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows


def skill_window_pool(windows: SkillWindows, config: AgentConfig) -> np.ndarray | None:
    """The windows the skill VAE and the prior learn from: every one (None), or with
    ``skill_windows="full"`` the indices of those H steps long (an episode's last windows are shorter;
    Q still learns their returns)."""
    if config.skill_windows == "all":
        return None
    full = np.flatnonzero(windows.lengths == config.horizon)
    if len(full) == 0:
        raise ValueError(
            f"skill_windows='full' but no window is {config.horizon} steps long (every episode is "
            "shorter): lower horizon or use skill_windows='all'"
        )
    return full


class SkillsStage(TrainingStage[AgentConfig]):
    """β-VAE over H-step windows: −Σ log π(a | s, z) + β · KL(q(z | τ) ‖ p(z | s0))."""

    name = "skills"
    creates = ("vae",)
    shaped_by = ("horizon", "latent_dim", "vae_hidden", "vae_gru_layers", "gamma")
    steps_field = "skills_steps"

    @classmethod
    def build_modules(cls, config: AgentConfig, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        vae = SkillVAE(
            state_dim,
            spec.action_dim,
            config.horizon,
            latent_dim=config.latent_dim,
            hidden=config.vae_hidden,
            gru_layers=config.vae_gru_layers,
            action_low=list(spec.action_low),
            action_high=list(spec.action_high),
        )
        return {"vae": vae}

    def __init__(self, ctx: StageContext[AgentConfig]) -> None:
        super().__init__(ctx)
        self.vae = cast(SkillVAE, ctx.modules["vae"])
        self.pool = skill_window_pool(ctx.windows, ctx.config)
        ctx.data.posterior = None  # the encoder changes: cached posteriors are stale
        self.trained = [self.vae]
        self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=ctx.config.skills_lr)

    def loss(self, step: int) -> StepResult:
        c, w = self.config, self.ctx.windows
        idx, shard = self.take_shard(self.draw_windows(c.skills_batch_size, self.pool))
        if self.world > 1:  # the loss is a mean over the batch's real steps: weigh by them
            shard = replace(shard, weight=float(w.mask[idx].sum() / w.mask[shard.batch].sum()))
        noise = shard.draw(self.normal_draw(c.latent_dim))
        out = self.vae.loss(
            self.gather(w.states, idx),
            self.gather(w.actions, idx),
            self.gather(w.mask, idx),
            beta=c.vae_beta,
            noise=noise,
        )
        metrics = {"loss": out["loss"], "nll": out["nll"], "kl": out["kl"]}
        return StepResult(out["loss"], metrics, shard)
