"""The dataset as the training stages use it: the skill windows, the skill encoder's posterior over
them (computed once per trained encoder) and device copies of the arrays (kept in memory, never saved)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from latent_skills._progress import progress
from latent_skills.data import SkillWindows
from latent_skills.nn import SkillVAE


@dataclass
class TrainingData:
    """The windows, the cached posterior q(z|τ) (mean, std per window; None when stale) and
    ``extras`` (device copies of the arrays, the Q stage's candidate bank)."""

    windows: SkillWindows
    posterior: tuple[np.ndarray, np.ndarray] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def posterior_of(
        self, vae: SkillVAE, device: torch.device, batch_size: int = 4096, progress_bar: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """q(z|τ) mean and std of every window under ``vae``'s encoder, cached until the skills
        stage trains it again (which sets ``posterior`` to None)."""
        if self.posterior is None:
            w = self.windows
            mean = np.empty((len(w), vae.latent_dim), np.float32)
            std = np.empty_like(mean)
            vae.eval()
            for lo in progress(range(0, len(w), batch_size), desc="encode windows", disable=not progress_bar):
                idx = np.arange(lo, min(lo + batch_size, len(w)))
                m, s = vae.encode(
                    *(torch.as_tensor(a, device=device) for a in (w.states[idx], w.actions[idx], w.mask[idx]))
                )
                mean[idx], std[idx] = m.cpu().numpy(), s.cpu().numpy()
            self.posterior = (mean, std)
        return self.posterior
