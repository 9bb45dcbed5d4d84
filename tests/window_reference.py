"""An independent, deliberately naive computation of skill windows, one window at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import minari
import numpy as np


def flatten_by_hand(obs: Any) -> np.ndarray:
    """The documented rule written out for the three fixture shapes: Box, PointMaze, Kitchen."""
    if not isinstance(obs, dict):
        return np.asarray(obs, np.float32).reshape(len(obs), -1)
    parts = [obs["observation"]]
    for key in ("achieved_goal", "desired_goal"):
        goal = obs.get(key)
        if isinstance(goal, dict):
            parts += [goal[k].reshape(len(goal[k]), -1) for k in sorted(goal)]
        elif goal is not None:
            parts.append(goal)
    return np.concatenate(parts, axis=1).astype(np.float32)


def with_first_goal_repaired(observations: Any) -> Any:
    """The loader's stale-first-goal rule, per episode: a first desired goal unlike the second, with
    the goal constant from the second observation on, becomes the second."""
    if not isinstance(observations, dict) or isinstance(observations.get("desired_goal"), (dict, type(None))):
        return observations
    goal = np.asarray(observations["desired_goal"])
    if len(goal) > 1 and (goal[1:] == goal[1]).all() and not (goal[0] == goal[1]).all():
        goal = goal.copy()
        goal[0] = goal[1]
        return {**observations, "desired_goal": goal}
    return observations


def naive_windows(
    dataset: minari.MinariDataset,
    horizon: int,
    gamma: float,
    flatten: Callable[[Any], np.ndarray] = flatten_by_hand,
) -> dict[str, np.ndarray]:
    out: dict[str, list] = {
        k: [] for k in ("states", "actions", "rewards", "next_states", "dones", "lengths")
    }
    for episode in dataset.iterate_episodes():
        obs = flatten(with_first_goal_repaired(episode.observations))
        acts = np.asarray(episode.actions, np.float32).reshape(len(episode.rewards), -1)
        steps = len(episode.rewards)
        for t in range(steps):
            length = min(horizon, steps - t)
            states = np.stack([obs[t + min(k, length)] for k in range(horizon)])
            actions = np.stack(
                [acts[t + k] if k < length else np.zeros_like(acts[0]) for k in range(horizon)]
            )
            ret = 0.0
            for k in range(length):
                ret += gamma**k * float(episode.rewards[t + k])
            out["states"].append(states)
            out["actions"].append(actions)
            out["rewards"].append(ret)
            out["next_states"].append(obs[t + length])
            out["dones"].append(bool(np.any(episode.terminations[t : t + length])))
            out["lengths"].append(length)
    return {k: np.asarray(v) for k, v in out.items()}
