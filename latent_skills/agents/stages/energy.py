"""Stage 4 of LatentDiffuser, ``energy``: the time-dependent energy model, by contrastive energy
prediction on prior samples scored by the critic."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from latent_skills._progress import progress
from latent_skills.config import LatentDiffuserConfig
from latent_skills.diffusion import DiffusionSchedule
from latent_skills.nn import LatentEnergyModel, TwinCritic, contrastive_energy_loss, q_candidates

from ..spec import AgentSpec
from .base import StageContext, StepResult, TrainingStage
from .candidate_bank import CandidateBank, sampling_chunk

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows

    from ..priors import LatentPrior


class EnergyStage(TrainingStage[LatentDiffuserConfig]):
    """The time-dependent energy model f(s, z_t, t) by contrastive energy prediction (QGPO): for
    states s_b with K prior samples each, w_bk = softmax_k(β · min_j Q_j(s_b, z^(k))) and
    loss = −mean_b Σ_k w_bk · log softmax_k f(s_b, z_t^(k), t_b), one t_b per state."""

    name = "energy"
    creates = ("energy",)
    shaped_by = ("energy_widths", "energy_beta", "energy_q_scale")
    steps_field = "energy_steps"

    @classmethod
    def build_modules(
        cls, config: LatentDiffuserConfig, spec: AgentSpec, state_dim: int
    ) -> dict[str, nn.Module]:
        rates = DiffusionSchedule(config.diffusion_timesteps).sqrt_alphas_cumprod
        energy = LatentEnergyModel(config.latent_dim, state_dim, config.energy_widths, signal_rates=rates)
        return {"energy": energy}

    def __init__(self, ctx: StageContext[LatentDiffuserConfig]) -> None:
        super().__init__(ctx)
        c = ctx.config
        self.energy = cast(LatentEnergyModel, ctx.modules["energy"])
        self.schedule = DiffusionSchedule(c.diffusion_timesteps).to(ctx.device)
        critic = cast(TwinCritic, ctx.modules["critic"])
        self.bank, self.q = build_energy_support(
            ctx.windows, ctx.prior.plain, critic, c, ctx.device, ctx.progress
        )
        self.observations = ctx.windows.episodes.observations
        self.trained = [self.energy]
        self.optimizer = torch.optim.Adam(self.energy.parameters(), lr=c.energy_lr)

    def loss(self, step: int) -> StepResult:
        c, prior = self.config, self.ctx.prior
        k, gen, device = c.energy_samples, self.generator, self.ctx.device
        rows, shard = self.take_shard(self.rng.integers(0, len(self.bank.unique_rows), c.energy_batch_size))
        states = self.tensor(np.asarray(self.observations[self.bank.unique_rows[rows]], np.float32))
        cond = prior.condition(states)
        z0 = prior.standardise(self.tensor(self.bank.values[rows].astype(np.float32)))
        # one noise level per state, shared by its K samples: the softmax compares like with like
        steps = self.schedule.num_timesteps
        t = shard.draw(lambda n: torch.randint(0, steps, (n,), generator=gen, device=gen.device))
        t = t.to(device).repeat_interleave(k)
        noise = shard.draw(lambda n: torch.randn((n, *z0.shape[1:]), generator=gen, device=gen.device))
        noise = noise.to(device)
        z_t = self.schedule.q_sample(z0.flatten(0, 1), t, noise.flatten(0, 1))
        f = self.energy(z_t, t, cond.repeat_interleave(k, dim=0)).view(len(rows), k)
        spread = c.energy_q_scale == "spread"
        value = contrastive_energy_loss(f, self.tensor(self.q[rows]), c.energy_beta, spread)
        return StepResult(value, {"loss": value}, shard)


@torch.no_grad()
def build_energy_support(
    windows: SkillWindows,
    prior: LatentPrior,
    critic: TwinCritic,
    config: LatentDiffuserConfig,
    device: torch.device,
    progress_bar: bool = False,
    chunk_states: int | None = None,
) -> tuple[CandidateBank, np.ndarray]:
    """K samples of ``prior`` (unguided: ``agent.policy.prior.plain``) per window's first state, and
    min_j Q_j of each under ``critic``: ``(bank, q)`` with ``q`` of shape ``(distinct states, K)`` in
    the bank's row order."""
    c, w = config, windows
    chunk_states = chunk_states or sampling_chunk(device)
    bank = CandidateBank(
        w.first_states.rows(np.arange(len(w))), c.energy_samples, c.latent_dim, c.bank_ram_gb
    )
    q = np.empty((len(bank.unique_rows), c.energy_samples), np.float32)
    observations = w.episodes.observations
    gen = torch.Generator(device).manual_seed(c.seed + 11)
    for lo in progress(
        range(0, len(bank.unique_rows), chunk_states), desc="energy support", disable=not progress_bar
    ):
        states = torch.as_tensor(
            np.asarray(observations[bank.unique_rows[lo : lo + chunk_states]], np.float32), device=device
        )
        z = prior.sample(states, c.energy_samples, generator=gen)
        bank.values[lo : lo + len(states)] = z.cpu().numpy()
        # score what is stored (float16), so the weights belong to the latents the loss sees
        stored = torch.as_tensor(bank.values[lo : lo + len(states)].astype(np.float32), device=device)
        q[lo : lo + len(states)] = q_candidates(critic, states, stored).cpu().numpy()
    return bank, q
