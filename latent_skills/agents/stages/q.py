"""Stage 3 of LDCQ, ``q``: diffusion-constrained clipped double Q-learning over (s, z)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from latent_skills.config import LDCQConfig
from latent_skills.nn import TwinCritic, polyak_update, q_candidates

from .. import distributed
from ..device_data import fits_on_device
from ..replay import DevicePrioritizedSampler, PrioritizedSampler
from ..spec import AgentSpec
from .base import StageContext, StepResult, TrainingStage
from .candidate_bank import CandidateBank, build_candidate_bank

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows


def q_target_terms(windows: SkillWindows, success_cut: str) -> tuple[np.ndarray, np.ndarray]:
    """Per window, the two terms of Q's target ``r + c · max Q'(s', ·)``: the window's return ``r``
    plus, at a success cut held forever, ``γ^length · r_T / (1 − γ)``; and ``c = γ^length`` unless
    the window terminates or (``success_cut`` "terminal" or "hold") ends at a success cut."""
    rewards = windows.rewards.copy()
    not_done_discount = windows.discounts * (1.0 - windows.dones)
    if success_cut != "bootstrap":
        cut = windows.ends_at_success_cut()
        not_done_discount[cut] = 0.0
        if success_cut == "hold":
            held = windows.last_rewards()[cut] / (1.0 - windows.gamma)
            rewards[cut] += windows.discounts[cut] * held
    return rewards.astype(np.float32), not_done_discount.astype(np.float32)


class QStage(TrainingStage[LDCQConfig]):
    """Clipped double Q over (s, z) with targets

        y = r + γ^length · (1 − done) · max_{z_i ~ p(z | s')} min_j Q'_j(s', z_i)

    r the window's discounted return, s' = s_{t+H} (or the episode's last state for a short window at
    its end), the candidates z_i from the prior: a bank sampled once per next state, or on the fly."""

    name = "q"
    creates = ("critic", "critic_target")
    shaped_by = ("q_widths", "gamma")
    steps_field = "q_steps"

    @classmethod
    def build_modules(cls, config: LDCQConfig, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        critic = TwinCritic(state_dim, config.latent_dim, widths=config.q_widths)
        return {"critic": critic, "critic_target": copy.deepcopy(critic).requires_grad_(False)}

    def __init__(self, ctx: StageContext[LDCQConfig]) -> None:
        super().__init__(ctx)
        c, w = ctx.config, ctx.windows
        self.critic = cast(TwinCritic, ctx.modules["critic"])
        self.critic_target = cast(TwinCritic, ctx.modules["critic_target"])
        mean, std = ctx.posterior()
        # one fixed sample z ~ q(z|τ) per transition, as the paper's replay buffer stores
        noise = np.random.default_rng([c.seed, 99]).standard_normal(mean.shape).astype(np.float32)
        self.z = mean + std * noise
        self.bank: CandidateBank | None = None
        self.bank_on_device = False
        # "auto" waits for the step plan (set after construction) to choose; "bank" builds it now
        self.source_chosen = c.candidate_source != "auto"
        if c.candidate_source == "bank":
            self.use_bank()
        # on-the-fly candidates: each rank samples its own rows' with its own stream (rank 0 keeps the
        # one-process stream; the others restart theirs on resume: only rank 0's state is saved); the
        # same stream on every rank would repeat the noise across ranks
        self.candidate_generator = self.generator
        if self.rank > 0:
            seed = int(np.random.SeedSequence([c.seed, ctx.streams.index, self.rank]).generate_state(1)[0])
            self.candidate_generator = torch.Generator(ctx.device).manual_seed(seed)
        ctx.data.extras["bank"] = self.bank
        self.sampler: PrioritizedSampler | DevicePrioritizedSampler
        if self.on_device:
            self.sampler = DevicePrioritizedSampler(len(w), c.per_alpha, ctx.device)
        else:
            self.sampler = PrioritizedSampler(len(w), alpha=c.per_alpha)
        self.first, self.next = w.first_states, w.next_states
        self.rewards, self.not_done_discount = q_target_terms(w, c.success_cut)
        self.trained, self.followers = [self.critic], [self.critic_target]
        self.resumables["priorities"] = self.sampler
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=c.q_lr)

    def use_bank(self) -> None:
        """Sample the candidate bank now; on an accelerator it lives on the device if it fits."""
        ctx = self.ctx
        self.bank = build_candidate_bank(
            ctx.windows, ctx.prior.for_targets, ctx.config, ctx.device, ctx.progress
        )
        ctx.data.extras["bank"] = self.bank
        # on an accelerator the priorities and (if it fits) the bank live on the device: no step reads
        # the device back (the TD errors feed the device's sum tree)
        self.bank_on_device = self.on_device and fits_on_device(self.bank.values.nbytes, ctx.device)

    def choose_source(self) -> None:
        """``candidate_source="auto"``: a bank when the stage's steps draw at least as many windows
        as there are distinct next states to sample it for; else candidates on the fly, which then
        cost less (a short run on a large dataset would spend most of its time on the bank)."""
        w = self.ctx.windows
        distinct = len(np.unique(w.next_states.rows(np.arange(len(w)))))
        if self.n_steps * self.config.q_batch_size >= distinct:
            self.use_bank()
        self.source_chosen = True

    def per_beta(self, step: int) -> float:
        """PER's importance-sampling exponent at ``step`` (``per_beta_schedule``)."""
        c = self.config
        if c.per_beta_schedule == "stage":
            return c.per_beta_start + (1.0 - c.per_beta_start) * step / max(1, self.n_steps - 1)
        return min(1.0, c.per_beta_start + c.per_beta_growth * (step // c.per_beta_every))

    def candidates(self, idx: np.ndarray | torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        if self.bank is not None:
            if self.bank_on_device:
                return self.gather(self.bank.values, self.gather(self.bank.index, idx)).float()
            host_idx = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else idx
            return self.tensor(self.bank[host_idx].astype(np.float32))
        return self.ctx.prior.for_targets.sample(
            next_states, self.config.q_candidates, generator=self.candidate_generator
        )

    def loss(self, step: int) -> StepResult:
        c = self.config
        if not self.source_chosen:
            self.choose_source()
        batch, weights = self.sampler.sample(c.q_batch_size, self.per_beta(step), self.rng)
        idx, shard = self.take_shard(batch)
        weights = shard.take(weights)
        s, s_next = self.gather(self.first, idx), self.gather(self.next, idx)
        with torch.no_grad():
            best_next = q_candidates(self.critic_target, s_next, self.candidates(idx, s_next)).amax(1)
            target = self.gather(self.rewards, idx) + self.gather(self.not_done_discount, idx) * best_next
        q = self.critic(s, self.gather(self.z, idx))
        td = q - target[:, None]
        value = (torch.as_tensor(weights, device=self.ctx.device)[:, None] * td.pow(2)).sum(1).mean()
        metrics = {"loss": value, "q": q.mean(), "target": target.mean()}
        return StepResult(value, metrics, shard, row_errors=td.detach().abs().mean(1))

    def after_step(self, step: int, result: StepResult) -> None:
        """Update the replayed rows' priorities with their TD errors, then the target critic."""
        assert result.row_errors is not None
        index, td, shard = result.shard.batch, result.row_errors, result.shard
        if shard.rows is not None:
            # every rank applies the whole batch's update, so the sum trees stay identical: each rank
            # fills its rows of the global TD vector, a sum over ranks completes it
            device = td.device if self.on_device else torch.device("cpu")
            rows = torch.zeros(shard.size, dtype=torch.float32, device=device)
            rows[shard.rows] = td.to(device)
            td = distributed.all_reduce_sum(rows)
        if isinstance(self.sampler, DevicePrioritizedSampler):
            self.sampler.update(torch.as_tensor(index, device=self.ctx.device), td)
        else:
            self.sampler.update(np.asarray(index), td.cpu().numpy())
        polyak_update(self.critic_target, self.critic, self.config.q_polyak)
