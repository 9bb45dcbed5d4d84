"""The paper's latent-space figures: encoder latents across horizons (Fig. 2) and ground truth vs
diffusion-prior vs Gaussian-prior samples on the same PCA axes (Fig. 3)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._canvas import HEADING_CMAP, PANEL_INCHES, new_figure, save_png
from ._windows import encoder_means, require_stage, select_windows, window_headings
from .pca import PCA

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from latent_skills.agents import LatentSkillAgent

HEADING_LABEL = "heading of s(t+H) − s(t) (degrees)"


def _scatter(ax: Axes, points: np.ndarray, headings: np.ndarray | None = None, color: str = "C0") -> Any:
    """Points coloured by heading (cyclic map) when there are headings, else all in ``color``."""
    if headings is None:
        return ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.7, linewidths=0, color=color)
    return ax.scatter(
        points[:, 0], points[:, 1], c=headings, cmap=HEADING_CMAP, vmin=-180, vmax=180, s=8, linewidths=0
    )


def _axis_labels(ax: Axes, pca: PCA) -> None:
    ax.set_xlabel(f"PC 1 ({100 * pca.explained_variance_ratio[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * pca.explained_variance_ratio[1]:.0f}%)")


def plot_latents_by_horizon(
    agents: Sequence[LatentSkillAgent],
    path: str | os.PathLike,
    *,
    windows: str = "starts",
    max_points: int = 2000,
    seed: int = 0,
) -> Path:
    """Paper Fig. 2: a 2-D PCA of the skill encoder's latents (q(z|τ) means), one panel per agent,
    ordered by horizon H: with longer windows the latents of the same start states split into modes.

    ``windows="starts"`` shows the windows that start episodes, as the paper does; ``"all"`` every
    window (at most ``max_points``, drawn with ``seed``). Points are coloured by the direction the
    window moves the agent when the state has a 2-D position (mazes). Each agent needs its skills
    stage trained and its dataset local. Writes a PNG of (4·len(agents)) × 4 inches at 100 dpi.
    """
    if not agents:
        raise ValueError("pass at least one agent (one panel per horizon)")
    for agent in agents:
        require_stage(agent, "skills", "the encoder's latents")
    ordered = sorted(agents, key=lambda a: a.config.horizon)
    fig = new_figure(PANEL_INCHES * len(ordered), PANEL_INCHES)
    axes = fig.subplots(1, len(ordered), squeeze=False)[0]
    coloured = None
    for ax, agent in zip(axes, ordered, strict=True):
        idx = select_windows(agent, windows, max_points, seed)
        latents = encoder_means(agent, idx)
        pca = PCA.fit(latents)
        headings = window_headings(agent, idx)
        points = _scatter(ax, pca.transform(latents), headings)
        coloured = points if headings is not None else coloured
        ax.set_title(f"H = {agent.config.horizon}  ({type(agent).__name__}, {len(idx)} windows)", fontsize=10)
        _axis_labels(ax, pca)
    if coloured is not None:
        fig.colorbar(coloured, ax=list(axes), label=HEADING_LABEL, shrink=0.8)
    which = "episode-start windows" if windows == "starts" else "windows"
    fig.suptitle(f"Encoder latents of {which} across horizons (PCA per panel)", fontsize=11)
    return save_png(fig, path)


def _prior_title(agent: LatentSkillAgent) -> str:
    """The paper calls panel (b) the diffusion prior; a variant that samples differently gets its name."""
    # by name: the figures read an agent through its public parts and import none of the agents' code
    diffusion = type(agent.policy.prior).__name__ == "DiffusionPrior"
    return "(b) diffusion prior p(z|s)" if diffusion else f"(b) {type(agent).__name__} prior (sample_latents)"


def plot_prior_samples(
    agent: LatentSkillAgent,
    path: str | os.PathLike,
    *,
    windows: str = "starts",
    max_points: int = 1000,
    samples_per_state: int = 1,
    seed: int = 0,
) -> Path:
    """Paper Fig. 3: (a) the encoder latents (q(z|τ) means) of a set of windows, (b) latents the
    agent's prior (``agent.sample_latents``: the diffusion prior) samples at the same start states,
    (c) the VAE's conditional Gaussian prior's samples there; all projected on the PCA axes of (a),
    on the same scale. Panels (b) and (c) show (a) in grey behind the samples: samples off the grey
    are out of the data's support.

    ``windows``, ``max_points`` and ``seed`` choose the windows as in
    :func:`plot_latents_by_horizon`; ``samples_per_state`` latents are drawn per start state.
    Needs the skills and prior stages trained. Writes a PNG of 12 × 4 inches at 100 dpi.
    """
    for stage in ("skills", "prior"):
        require_stage(agent, stage, "a comparison of prior samples")
    if samples_per_state < 1:
        raise ValueError(f"samples_per_state must be at least 1, got {samples_per_state}")
    idx = select_windows(agent, windows, max_points, seed)
    dim = agent.config.latent_dim
    truth = encoder_means(agent, idx)
    states = agent.data.windows.first_states[idx]
    observations = agent.spec.flattener.unflatten(states)
    diffusion = agent.sample_latents(observations, samples_per_state, seed=seed).reshape(-1, dim)
    generator = torch.Generator(agent.device).manual_seed(seed)
    with torch.no_grad():
        gaussian = agent.vae.sample_prior(
            torch.as_tensor(states, device=agent.device), samples_per_state, generator
        )
    gaussian = gaussian.cpu().numpy().reshape(-1, dim)

    pca = PCA.fit(truth)
    truth_2d, diffusion_2d, gaussian_2d = (pca.transform(z) for z in (truth, diffusion, gaussian))
    fig = new_figure(3 * PANEL_INCHES, PANEL_INCHES)
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    headings = window_headings(agent, idx)
    points = _scatter(axes[0], truth_2d, headings)
    axes[0].set_title(f"(a) ground truth q(z|τ), {len(idx)} windows", fontsize=10)
    for ax, samples, title, colour in (
        (axes[1], diffusion_2d, _prior_title(agent), "C0"),
        (axes[2], gaussian_2d, "(c) VAE Gaussian prior p(z|s)", "C3"),
    ):
        _scatter(ax, truth_2d, color="0.8")
        _scatter(ax, samples, color=colour)
        ax.set_title(title, fontsize=10)
    for ax in axes:
        _axis_labels(ax, pca)
    if headings is not None:
        fig.colorbar(points, ax=list(axes), label="(a): " + HEADING_LABEL, shrink=0.8)
    fig.suptitle(
        f"Latents at the same start states on the ground truth's PCA axes (H = {agent.config.horizon})",
        fontsize=11,
    )
    return save_png(fig, path)
