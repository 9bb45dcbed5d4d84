"""Which windows a latent figure shows, their encoder latents, and the direction each one moves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from latent_skills.data import ObservationFlattener

if TYPE_CHECKING:
    from latent_skills.agents import LatentSkillAgent

WINDOW_CHOICES = ("starts", "all")


def position_slice(flattener: ObservationFlattener) -> slice | None:
    """Where a 2-D position sits in the flat state: a 2-number ``achieved_goal`` (PointMaze, AntMaze)."""
    if not flattener.has("achieved_goal"):
        return None
    part = flattener.slice_of("achieved_goal")
    return part if part.stop - part.start == 2 else None


def goal_slice(flattener: ObservationFlattener) -> slice | None:
    """Where a 2-D goal sits in the flat state (``desired_goal``), if it has one."""
    if not flattener.has("desired_goal"):
        return None
    part = flattener.slice_of("desired_goal")
    return part if part.stop - part.start == 2 else None


def heading_degrees(delta: np.ndarray) -> np.ndarray:
    """Direction of 2-D displacements ``(N, 2)`` in degrees, in [-180, 180]."""
    return np.degrees(np.arctan2(delta[:, 1], delta[:, 0]))


def select_windows(agent: LatentSkillAgent, windows: str, max_points: int, seed: int) -> np.ndarray:
    """Indices of the windows to show: those that start episodes (the paper's figures) or all of them,
    at most ``max_points`` drawn at random (seeded), in dataset order."""
    if windows not in WINDOW_CHOICES:
        raise ValueError(f"windows must be one of {WINDOW_CHOICES}, got {windows!r}")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    w = agent.data.windows
    idx = np.flatnonzero(w.step_in_episode == 0) if windows == "starts" else np.arange(len(w))
    if len(idx) < 2:
        raise ValueError(
            f"{agent.spec.dataset_id} has {len(idx)} episode-start window(s): too few for a projection; "
            "pass windows='all' (--windows all) to use every window"
        )
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    return idx


def require_stage(agent: LatentSkillAgent, stage: str, purpose: str) -> None:
    """A clear error when ``agent`` lacks the trained ``stage`` that ``purpose`` needs."""
    if stage not in agent.stage_names():
        raise ValueError(f"{type(agent).__name__} has no {stage!r} stage, which {purpose} needs")
    if stage not in agent.stages_completed:
        raise ValueError(
            f"this {type(agent).__name__} has not trained its {stage!r} stage (trained: "
            f"{agent.stages_completed}); run agent.learn(stages=[{stage!r}]) first"
        )


@torch.no_grad()
def encoder_means(agent: LatentSkillAgent, idx: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """q(z|τ) means of windows ``idx``: the agent's cached posterior, else only these windows encoded."""
    if agent.data.posterior is not None:
        return agent.data.posterior[0][idx]
    w = agent.data.windows
    agent.vae.eval()
    parts = []
    for lo in range(0, len(idx), batch_size):
        rows = idx[lo : lo + batch_size]
        mean, _ = agent.vae.encode(
            *(
                torch.as_tensor(a, device=agent.device)
                for a in (w.states[rows], w.actions[rows], w.mask[rows])
            )
        )
        parts.append(mean.cpu().numpy())
    return np.concatenate(parts)


def window_headings(agent: LatentSkillAgent, idx: np.ndarray) -> np.ndarray | None:
    """Direction (degrees) each window moves the position, s_{t+H} − s_t; None without a 2-D position."""
    pos = position_slice(agent.spec.flattener)
    if pos is None:
        return None
    w = agent.data.windows
    return heading_degrees(w.next_states[idx][:, pos] - w.first_states[idx][:, pos])
