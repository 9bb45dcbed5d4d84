"""LDCQ: Latent Diffusion-Constrained Q-learning (paper §4.2, Algorithm 1).

Q(s, z) is learned by clipped double Q with targets

    y = r + γ^length · (1 − done) · max_{z_i ~ p(z | s')} min_j Q'_j(s', z_i)

where r is the window's discounted return, s' = s_{t+H} (or the episode's last state for a short
window at its end) and the candidates z_i come from the diffusion prior: from a bank sampled once
per next state after stage 2, or sampled on the fly for each batch. Acting samples candidates at s
and takes the argmax of min_j Q_j.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile

import numpy as np
import torch
from tqdm.auto import tqdm

from latent_skills.config import LDCQConfig
from latent_skills.nn import TwinCritic, polyak_update, q_candidates

from .base import LatentSkillAgent, Stage
from .replay import PrioritizedSampler


class CandidateBank:
    """K prior samples per distinct next state, float16, memory-mapped past a RAM budget."""

    def __init__(self, rows: np.ndarray, n_candidates: int, latent_dim: int, ram_gb: float) -> None:
        self.unique_rows, self.index = np.unique(rows, return_inverse=True)
        shape = (len(self.unique_rows), n_candidates, latent_dim)
        nbytes = math.prod(shape) * 2
        self.file: str | None = None
        if nbytes > ram_gb * 1e9:
            handle, self.file = tempfile.mkstemp(prefix="latent-skills-bank-", suffix=".f16")
            os.close(handle)
            self.values = np.memmap(self.file, np.float16, "w+", shape=shape)
            # the mapping keeps the data; unlinked now, the file cannot outlive a SIGKILL (GBs at
            # paper scale). Windows cannot unlink a mapped file: there __del__ removes it.
            with contextlib.suppress(OSError):
                os.unlink(self.file)
                self.file = None
        else:
            self.values = np.empty(shape, np.float16)

    def __getitem__(self, window_idx: np.ndarray) -> np.ndarray:
        return self.values[self.index[window_idx]]

    def __del__(self) -> None:
        if self.file is not None:
            del self.values
            with contextlib.suppress(OSError):
                os.unlink(self.file)


class LDCQ(LatentSkillAgent):
    config_class = LDCQConfig
    config: LDCQConfig
    STAGE_MODULES = {**LatentSkillAgent.STAGE_MODULES, "q": ("critic", "critic_target")}
    STAGE_FIELDS = {**LatentSkillAgent.STAGE_FIELDS, "q": ("q_widths", "gamma")}

    def _build_modules(self) -> None:
        super()._build_modules()
        self.critic = TwinCritic(self.spec.state_dim, self.config.latent_dim, widths=self.config.q_widths)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {**super().modules(), "critic": self.critic, "critic_target": self.critic_target}

    def _make_stage(self, name: str) -> Stage:
        return self._q_stage() if name == "q" else super()._make_stage(name)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def _choose_latents(
        self, states: torch.Tensor, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        """argmax over ``act_candidates`` prior samples of min_j Q_j(s, z)."""
        cond = self._prior_condition(states)
        candidates = self._sample_prior(
            cond, self.config.act_candidates, generator=generator, shared_noise=shared_noise
        )
        best = q_candidates(self.critic, states, candidates).argmax(1)
        return candidates[torch.arange(len(states), device=states.device), best]

    # ------------------------------------------------------------------ stage 3
    @torch.no_grad()
    def build_bank(self, progress_bar: bool = True, chunk_states: int = 256) -> CandidateBank:
        """Sample ``q_candidates`` latents from the prior for every distinct next state."""
        c, w = self.config, self.data.windows
        bank = CandidateBank(
            w.next_states.rows(np.arange(len(w))), c.q_candidates, c.latent_dim, c.bank_ram_gb
        )
        observations = w.episodes.observations
        gen = torch.Generator(self.device).manual_seed(c.seed + 7)
        for lo in tqdm(
            range(0, len(bank.unique_rows), chunk_states), desc="candidate bank", disable=not progress_bar
        ):
            rows = bank.unique_rows[lo : lo + chunk_states]
            cond = self._prior_condition(observations[rows])
            bank.values[lo : lo + len(rows)] = (
                self._sample_prior(cond, c.q_candidates, generator=gen).cpu().numpy()
            )
        return bank

    def _q_stage(self) -> Stage:
        c, w = self.config, self.data.windows
        rng, gen = self._stage_generators("q")
        mean, std = self.posterior(progress_bar=self._progress)
        # one fixed sample z ~ q(z|τ) per transition, as the paper's replay buffer stores
        z_all = mean + std * np.random.default_rng([c.seed, 99]).standard_normal(mean.shape).astype(
            np.float32
        )
        bank = self.build_bank(self._progress) if c.candidate_source == "bank" else None
        self.data.extras["bank"] = bank
        sampler = PrioritizedSampler(len(w), alpha=c.per_alpha)
        first, nxt = w.first_states, w.next_states
        rewards = w.rewards.astype(np.float32)
        not_done_discount = (w.discounts * (1.0 - w.dones)).astype(np.float32)
        last: dict[str, np.ndarray] = {}

        def candidates(idx: np.ndarray, next_states: torch.Tensor) -> torch.Tensor:
            if bank is not None:
                return self._tensor(bank[idx].astype(np.float32))
            return self._sample_prior(self._prior_condition(next_states), c.q_candidates, generator=gen)

        def loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
            beta = min(1.0, c.per_beta_start + c.per_beta_growth * (step // c.per_beta_every))
            idx, weights = sampler.sample(c.q_batch_size, beta, rng)
            s, s_next = self._tensor(first[idx]), self._tensor(nxt[idx])
            with torch.no_grad():
                best_next = q_candidates(self.critic_target, s_next, candidates(idx, s_next)).amax(1)
                target = self._tensor(rewards[idx]) + self._tensor(not_done_discount[idx]) * best_next
            q = self.critic(s, self._tensor(z_all[idx]))
            td = q - target[:, None]
            value = (self._tensor(weights)[:, None] * td.pow(2)).sum(1).mean()
            last["idx"], last["td"] = idx, td.detach().abs().mean(1).cpu().numpy()
            return value, {"loss": value.item(), "q": q.mean().item(), "target": target.mean().item()}

        def after_step(_: int) -> None:
            sampler.update(last["idx"], last["td"])
            polyak_update(self.critic_target, self.critic, c.q_polyak)

        optimizer = torch.optim.Adam(self.critic.parameters(), lr=c.q_lr)
        return Stage(
            "q",
            [self.critic],
            optimizer,
            loss,
            after_step,
            rng=rng,
            generator=gen,
            resumables={"priorities": sampler},
            followers=[self.critic_target],
        )
