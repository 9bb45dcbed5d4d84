"""BCQ-H: batch-constrained Q-learning over temporally abstract skills (LDCQ paper §5.3, ablation).

The same skill VAE and the same Q-learning as :class:`~latent_skills.agents.ldcq.LDCQ`, but every
candidate latent (the target's max, acting, ``sample_latents``) comes from the VAE's conditional
Gaussian prior p(z | s0) instead of the diffusion prior: it isolates what diffusion adds. The paper
fits a separate Gaussian prior as large as its diffusion model; here it is the VAE's own prior, trained
with the skills by the KL term (only that term reaches it, so it fits the posteriors per state).
"""

from __future__ import annotations

import torch

from latent_skills.config import BCQHConfig

from .ldcq import LDCQ


class BCQH(LDCQ):
    config_class = BCQHConfig
    config: BCQHConfig
    # No diffusion prior: its stage is neither trained nor shared.
    STAGE_MODULES = {k: v for k, v in LDCQ.STAGE_MODULES.items() if k != "prior"}
    STAGE_FIELDS = {k: v for k, v in LDCQ.STAGE_FIELDS.items() if k != "prior"}

    def modules(self) -> dict[str, torch.nn.Module]:
        # the base class builds a denoiser (and its latent scaler); BCQH never uses or saves them
        unused = ("latent_norm", "denoiser")
        return {k: v for k, v in super().modules().items() if k not in unused}

    @torch.no_grad()
    def _sample_prior(
        self,
        cond: torch.Tensor,
        n: int,
        *,
        solver: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        generator: torch.Generator | None = None,
        shared_noise: bool = False,
    ) -> torch.Tensor:
        """``n`` latents per row from the VAE's Gaussian p(z | s0), ``(B, n, D)``; ``cond`` is the
        normalised state, as the prior takes it."""
        if solver is not None or steps is not None or guidance is not None:
            raise ValueError(
                "BCQH samples the VAE's Gaussian prior: solver, steps and guidance apply to diffusion "
                "priors only (LDCQ); leave them out"
            )
        mean, std = self.vae.prior(cond)
        # shared noise: every row draws the same standard-normal n × D block (deterministic acting)
        shape = (n, mean.shape[-1]) if shared_noise else (len(mean), n, mean.shape[-1])
        gen = generator if generator is not None else self._act_generator
        noise = torch.randn(shape, generator=gen, device=gen.device, dtype=mean.dtype).to(mean.device)
        return mean[:, None] + std[:, None] * noise


__all__ = ["BCQH"]
