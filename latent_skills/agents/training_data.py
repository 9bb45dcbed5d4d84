"""The dataset as the training stages use it: the skill windows, the skill encoder's posterior over
them (computed once per trained encoder), device copies of the arrays (kept in memory, never saved)
and, for image observations, the frames the image encoder learns from.

The seam for image observations is here and in ``EpisodeArrays.from_minari``'s ``encoding``: every
window, batch and stage downstream reads ``EpisodeArrays.observations``, so where an observation part
is an image those rows hold its encoder's features, not its pixels. :func:`training_data` builds the
windows through :class:`~latent_skills.nn.encoders.EpisodeEncoding` (each episode's frames encoded a
few hundred at a time: one compact float32 array of ``features_dim`` numbers per observation, never a
float32 copy of the frames), and for a learned encoder it builds them only when first read: after the
``images`` stage, which trains the encoder on :class:`~latent_skills.data.frames.DatasetFrames` (read
from disk a batch at a time) and then calls :meth:`TrainingData.rebuild`. Nothing else changes: the
skills, prior, Q and every variant's stages run on the encoded states as on flat ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import minari
import numpy as np
import torch
from torch import nn

from latent_skills._progress import progress
from latent_skills.config import AgentConfig
from latent_skills.data import EpisodeArrays, ObservationFlattener, SkillWindows
from latent_skills.data.frames import DatasetFrames
from latent_skills.nn import SkillVAE, StateNormalizer
from latent_skills.nn.encoders import EpisodeEncoding, ObservationEncoder


class TrainingData:
    """The windows (built by ``build`` when first read, where not given), the cached posterior q(z|τ)
    (mean, std per window; None when stale), ``extras`` (device copies of the arrays, the Q stage's
    candidate bank) and ``frames`` (the frames on disk of each part of
    ``ObservationEncoder.learned_parts()``, in that order)."""

    def __init__(
        self,
        windows: SkillWindows | None = None,
        posterior: tuple[np.ndarray, np.ndarray] | None = None,
        *,
        build: Callable[[], SkillWindows] | None = None,
        frames: list[DatasetFrames] | None = None,
    ) -> None:
        if windows is None and build is None:
            raise ValueError("TrainingData needs its windows or a way to build them")
        self._windows, self._build = windows, build
        self.posterior = posterior
        self.extras: dict[str, Any] = {}
        self.frames: list[DatasetFrames] = list(frames or [])

    @property
    def windows(self) -> SkillWindows:
        if self._windows is None:
            assert self._build is not None
            self._windows = self._build()
        return self._windows

    @property
    def built(self) -> bool:
        return self._windows is not None

    def sharing_windows(self, own: TrainingData | None) -> TrainingData:
        """Another agent's training data over these windows (and posterior), with its own caches and,
        from ``own`` (its data so far), its own way to rebuild them and its frames."""
        base = own or self
        return TrainingData(self.windows, self.posterior, build=base._build, frames=base.frames)

    def rebuild(self) -> SkillWindows:
        """The windows built again (the observation encoder changed); every cache over them dropped."""
        if self._build is None:
            raise ValueError("these windows were given, not built: there is nothing to rebuild them from")
        self._windows, self.posterior = None, None
        self.extras.clear()
        return self.windows

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


def training_data(
    dataset: minari.MinariDataset,
    encoder: ObservationEncoder,
    flattener: ObservationFlattener,
    config: AgentConfig,
    device: torch.device,
    progress: bool = False,
) -> TrainingData:
    """The training data of ``dataset``: its windows, over the encoder's states (flat observations:
    the flat vectors, as they always were). With a learned (image) encoder, also each image part's
    frames on disk, and the windows are built when first read (after the encoder trained)."""

    def build() -> SkillWindows:
        encoding = None if encoder.identity else EpisodeEncoding(encoder.eval(), flattener, device)
        episodes = EpisodeArrays.from_minari(dataset, progress, encoding)
        return SkillWindows.from_episodes(episodes, config.horizon, config.gamma)

    if not encoder.learned:
        return TrainingData(build())
    frames = [DatasetFrames(dataset, segment.path) for segment, _ in encoder.learned_parts()]
    return TrainingData(build=build, frames=frames)


def set_state_stats(modules: Mapping[str, nn.Module], windows: SkillWindows) -> None:
    """Every state normaliser of ``modules`` (not the latent one) set to the windows' state statistics."""
    stats = windows.episodes.state_stats()
    latent_norm = modules.get("latent_norm")
    for module in modules.values():
        for sub in module.modules():
            if isinstance(sub, StateNormalizer) and sub is not latent_norm:
                sub.set_stats(stats.mean, stats.std)
