"""LatentDiffuser: planning as energy-guided sampling from the latent diffusion prior (arXiv 2310.00311).

The optimal latent policy is ``π*(z | s) ∝ p(z | s) · exp(β Q(s, z))``. Skills, prior and Q are LDCQ's
(stages 1-3, the Q-function learned exactly as LDCQ learns it); stage 4 trains a time-dependent
energy model ``f(s, z_t, t)`` with the contrastive energy prediction loss of QGPO (Lu et al. 2023),
which the paper uses for its exact energy-guided sampling:

    for states s_b with K prior samples z^(k) each (sampled once, like LDCQ's candidate bank),
    w_bk = softmax_k(β · min_j Q_j(s_b, z^(k))),   z_t^(k) = q_sample(z^(k), t_b) at one t_b per state,
    loss = −mean_b Σ_k w_bk · log softmax_k f(s_b, z_t^(k), t_b).

Sampling adds ``energy_guidance · ∇_z f`` to the prior's score at every solver step (see
``diffusion.sample(energy_guidance=...)``); with scale 1 and an exact ``f`` the samples follow π*.

Acting: ``act_candidates`` guided samples at s, then the argmax of min_j Q_j, as LDCQ picks. With
``act_candidates = 1`` (the paper preset) that is exactly the paper's rule, executing one sample of
π*; the quick preset keeps LDCQ's 500 candidates, now drawn from the guided prior. The Q stage's own
candidates (the target's max) stay unguided, so the critic is LDCQ's and can be reused from one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from latent_skills.config import LatentDiffuserConfig
from latent_skills.diffusion import DiffusionSchedule
from latent_skills.diffusion.sampling import EnergyGuidance
from latent_skills.nn import LatentEnergyModel, contrastive_energy_loss, q_candidates

from .base import Stage
from .ldcq import LDCQ, CandidateBank


class LatentDiffuser(LDCQ):
    config_class = LatentDiffuserConfig
    config: LatentDiffuserConfig
    STAGE_MODULES = {**LDCQ.STAGE_MODULES, "energy": ("energy",)}
    STAGE_FIELDS = {**LDCQ.STAGE_FIELDS, "energy": ("energy_widths", "energy_beta")}

    def _build_modules(self) -> None:
        super()._build_modules()
        c = self.config
        rates = DiffusionSchedule(c.diffusion_timesteps).sqrt_alphas_cumprod
        self.energy = LatentEnergyModel(c.latent_dim, self._cond_dim(), c.energy_widths, signal_rates=rates)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {**super().modules(), "energy": self.energy}

    def _make_stage(self, name: str) -> Stage:
        return self._energy_stage() if name == "energy" else super()._make_stage(name)

    # ------------------------------------------------------------------ sampling and acting
    @torch.no_grad()
    def _energy_hook(self, scale: float) -> EnergyGuidance | None:
        """The score correction that tilts LDCQ's prior samples toward high Q by ``scale`` (0: none,
        so the candidate bank and the energy stage's support samples stay the plain prior's)."""
        return self.energy.guidance(scale) if scale != 0.0 else None

    def sample_latents(
        self,
        observation: Any,
        n: int,
        *,
        solver: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        energy_guidance: float | None = None,
    ) -> np.ndarray:
        """``n`` latents from the energy-guided prior ∝ p(z | s) · exp(β Q(s, z)) (scale
        ``energy_guidance``, default the config's; 0 samples the plain diffusion prior)."""
        states, single = self._flat_states(observation)
        gen = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        scale = self.config.energy_guidance if energy_guidance is None else energy_guidance
        z = self._sample_prior(
            self._prior_condition(states),
            n,
            solver=solver,
            steps=steps,
            guidance=guidance,
            generator=gen,
            energy_guidance=self._energy_hook(scale),
        )
        z = z.cpu().numpy()
        return z[0] if single else z

    @torch.no_grad()
    def _choose_latents(
        self, states: torch.Tensor, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        """argmax of min_j Q_j over ``act_candidates`` guided samples (one: a sample of π*)."""
        candidates = self._sample_prior(
            self._prior_condition(states),
            self.config.act_candidates,
            generator=generator,
            shared_noise=shared_noise,
            energy_guidance=self._energy_hook(self.config.energy_guidance),
        )
        best = q_candidates(self.critic, states, candidates).argmax(1)
        return candidates[torch.arange(len(states), device=states.device), best]

    # ------------------------------------------------------------------ stage 4
    @torch.no_grad()
    def build_support(
        self, progress_bar: bool = False, chunk_states: int = 256
    ) -> tuple[CandidateBank, np.ndarray]:
        """K unguided prior samples per window's first state, and min_j Q_j of each: ``(bank, q)``
        with ``q`` of shape ``(distinct states, K)`` in the bank's row order."""
        c, w = self.config, self.data.windows
        first = w.first_states
        bank = CandidateBank(first.rows(np.arange(len(w))), c.energy_samples, c.latent_dim, c.bank_ram_gb)
        q = np.empty((len(bank.unique_rows), c.energy_samples), np.float32)
        observations = w.episodes.observations
        gen = torch.Generator(self.device).manual_seed(c.seed + 11)
        for lo in tqdm(
            range(0, len(bank.unique_rows), chunk_states), desc="energy support", disable=not progress_bar
        ):
            states = self._tensor(
                np.asarray(observations[bank.unique_rows[lo : lo + chunk_states]], np.float32)
            )
            z = self._sample_prior(self._prior_condition(states), c.energy_samples, generator=gen)
            bank.values[lo : lo + len(states)] = z.cpu().numpy()
            # score what is stored (float16), so the weights belong to the latents the loss sees
            stored = self._tensor(bank.values[lo : lo + len(states)].astype(np.float32))
            q[lo : lo + len(states)] = q_candidates(self.critic, states, stored).cpu().numpy()
        return bank, q

    def _energy_stage(self) -> Stage:
        c = self.config
        rng, gen = self._stage_generators("energy")
        bank, q = self.build_support(self._progress)
        observations = self.data.windows.episodes.observations
        k = c.energy_samples

        def loss(_: int) -> tuple[torch.Tensor, dict[str, float]]:
            rows = rng.integers(0, len(bank.unique_rows), c.energy_batch_size)
            cond = self._prior_condition(observations[bank.unique_rows[rows]])
            z0 = self.latent_norm(self._tensor(bank.values[rows].astype(np.float32)))  # (B, K, D)
            # one noise level per state, shared by its K samples: the softmax compares like with like
            t = torch.randint(0, self.schedule.num_timesteps, (len(rows),), generator=gen, device=gen.device)
            t = t.to(self.device).repeat_interleave(k)
            noise = torch.randn(z0.shape, generator=gen, device=gen.device).to(self.device)
            z_t = self.schedule.q_sample(z0.flatten(0, 1), t, noise.flatten(0, 1))
            f = self.energy(z_t, t, cond.repeat_interleave(k, dim=0)).view(len(rows), k)
            value = contrastive_energy_loss(f, self._tensor(q[rows]), c.energy_beta)
            return value, {"loss": value.item()}

        optimizer = torch.optim.Adam(self.energy.parameters(), lr=c.energy_lr)
        return Stage("energy", [self.energy], optimizer, loss, rng=rng, generator=gen)


__all__ = ["LatentDiffuser"]
