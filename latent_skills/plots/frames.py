"""The image encoder at work (the LDCQ paper's App. C, Fig. 6): frames of the dataset above the β-VAE's
reconstructions of them, and a few episodes' encoded states — the sequences the skills are learned
on — drawn as paths on the first two principal components of those states."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from ._canvas import PANEL_INCHES, new_figure, save_png
from ._windows import require_stage
from .pca import PCA

if TYPE_CHECKING:
    from latent_skills.agents import LatentSkillAgent
    from latent_skills.nn.image_encoder import ImageVAE

FRAME_INCHES = 1.1  # one frame's cell in the two rows of frames


def _image_part(agent: LatentSkillAgent) -> ImageVAE:
    """The first image part's β-VAE (its frames are ``agent.data.frames[0]``)."""
    parts = list(agent.observation_encoder.learned_parts())
    if not parts:
        raise ValueError(
            f"{agent.spec.dataset_id} has no image observation: this figure shows an image encoder "
            "(train on a pixel dataset, e.g. `latent-skills collect pointmaze --observation pixels`)"
        )
    return cast("ImageVAE", parts[0][1])


def encoded_episodes(agent: LatentSkillAgent, count: int, seed: int) -> list[np.ndarray]:
    """The encoded states ``(T + 1, S)`` of ``count`` episodes drawn with ``seed`` (dataset order)."""
    episodes = agent.data.windows.episodes
    if episodes.n_episodes == 0:
        raise ValueError(f"{agent.spec.dataset_id} has no episodes to draw")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(episodes.n_episodes, min(count, episodes.n_episodes), replace=False))
    return [
        episodes.observations[episodes.obs_offsets[e] : episodes.obs_offsets[e] + episodes.lengths[e] + 1]
        for e in chosen
    ]


def plot_image_autoencoder(
    agent: LatentSkillAgent,
    path: str | os.PathLike,
    *,
    frames: int = 8,
    episodes: int = 4,
    seed: int = 0,
) -> Path:
    """Paper Fig. 6 for a pixel agent: ``frames`` dataset frames (top row) and their β-VAE
    reconstructions from the posterior mean (second row), then ``episodes`` episodes' encoded states
    as paths on a 2-D PCA of those states (a dot at each start). Frames and episodes are drawn with
    ``seed``. Needs the ``images`` stage trained and the dataset local."""
    require_stage(agent, "images", "the image encoder's reconstructions")
    if frames < 1 or episodes < 1:
        raise ValueError(f"frames and episodes must be at least 1, got {frames} and {episodes}")
    part = _image_part(agent)
    stored = agent.data.frames[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(stored), min(frames, len(stored)), replace=False))
    originals = stored[rows]
    device = next(part.parameters()).device
    with torch.no_grad():
        decoded = part.reconstruct(torch.as_tensor(originals, device=device)).cpu().numpy()
    decoded = np.clip(np.rint(decoded), 0, 255).astype(np.uint8)

    paths = encoded_episodes(agent, episodes, seed)
    pca = PCA.fit(np.concatenate(paths))
    width = max(FRAME_INCHES * len(rows), PANEL_INCHES)
    fig = new_figure(width, 2 * FRAME_INCHES + PANEL_INCHES)
    grid = fig.add_gridspec(3, len(rows), height_ratios=[FRAME_INCHES, FRAME_INCHES, PANEL_INCHES])
    for column in range(len(rows)):
        for row, images, label in ((0, originals, "frame"), (1, decoded, "reconstruction")):
            ax = fig.add_subplot(grid[row, column])
            ax.imshow(images[column].squeeze(), cmap="gray" if images[column].ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
    ax = fig.add_subplot(grid[2, :])
    for number, states in enumerate(paths):
        points = pca.transform(states)
        (line,) = ax.plot(points[:, 0], points[:, 1], linewidth=1, alpha=0.8, label=f"episode {number + 1}")
        ax.scatter(points[:1, 0], points[:1, 1], s=25, color=line.get_color())
    ax.set_xlabel(f"PC 1 ({100 * pca.explained_variance_ratio[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * pca.explained_variance_ratio[1]:.0f}%)")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("encoded states along episodes (the sequences skills are learned on)", fontsize=10)
    fig.suptitle(f"Image β-VAE of {type(agent).__name__} on {agent.spec.dataset_id}", fontsize=11)
    return save_png(fig, path)
