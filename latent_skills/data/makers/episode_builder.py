"""One PointMaze episode's arrays, filled step by step from the collection stream."""

from __future__ import annotations

from typing import Any

import numpy as np
from minari.data_collector import EpisodeBuffer

SUCCESS_RADIUS = 0.45  # info["success"] of gymnasium-robotics' maze envs: within 0.45 of the goal


class EpisodeBuilder:
    """One episode's arrays, filled step by step (growing when needed), handed out as copies."""

    def __init__(self, capacity: int) -> None:
        self._allocate(capacity)
        self.n = 0

    def _allocate(self, capacity: int) -> None:
        self.capacity = capacity
        self.obs = np.empty((capacity + 1, 4))
        self.achieved = np.empty((capacity + 1, 2))
        self.desired = np.empty((capacity + 1, 2))
        self.actions = np.empty((capacity, 2), dtype=np.float32)
        self.rewards = np.empty(capacity)
        self.success = np.zeros(capacity + 1, dtype=bool)  # success[t]: info of observation t

    def _grow(self) -> None:
        old: list[np.ndarray] = [
            self.obs,
            self.achieved,
            self.desired,
            self.actions,
            self.rewards,
            self.success,
        ]
        self._allocate(2 * self.capacity)
        fresh: list[np.ndarray] = [
            self.obs,
            self.achieved,
            self.desired,
            self.actions,
            self.rewards,
            self.success,
        ]
        for new, arr in zip(fresh, old, strict=True):
            new[: len(arr)] = arr

    def put_observation(self, row: int, obs: dict[str, np.ndarray], success: bool) -> None:
        self.obs[row] = obs["observation"]
        self.achieved[row] = obs["achieved_goal"]
        self.desired[row] = obs["desired_goal"]
        self.success[row] = success

    def add(self, action: np.ndarray, obs: dict[str, np.ndarray], reward: float, success: bool) -> None:
        """Record a step: its action, reward and the observation (and success) after it."""
        if self.n == self.capacity:
            self._grow()
        self.actions[self.n] = action
        self.rewards[self.n] = reward
        self.n += 1
        self.put_observation(self.n, obs, success)

    def pop(self, episode_id: int, relabel: tuple[np.ndarray, Any] | None) -> EpisodeBuffer:
        """The episode so far as a truncated :class:`EpisodeBuffer`; the builder restarts from its last
        observation. ``relabel=(goal, compute_reward)`` stores ``goal`` as every ``desired_goal`` and
        recomputes rewards and success against it."""
        n = self.n
        achieved = self.achieved[: n + 1].copy()
        if relabel is None:
            desired = self.desired[: n + 1].copy()
            rewards = self.rewards[:n].copy()
            success = self.success[: n + 1].copy()
        else:
            goal, compute_reward = relabel
            desired = np.tile(goal, (n + 1, 1))
            # reward of step t: from the observation after it, as the env computes it
            rewards = np.asarray(compute_reward(achieved[1:], goal, {}), dtype=np.float64)
            success = np.linalg.norm(achieved - goal, axis=-1) <= SUCCESS_RADIUS
        truncations = np.zeros(n, dtype=bool)
        truncations[-1] = True
        buffer = EpisodeBuffer(
            id=episode_id,
            observations={
                "achieved_goal": achieved,
                "desired_goal": desired,
                "observation": self.obs[: n + 1].copy(),
            },
            actions=self.actions[:n].copy(),
            rewards=rewards,
            terminations=np.zeros(n, dtype=bool),
            truncations=truncations,
            infos={"success": success},
        )
        for arr in (self.obs, self.achieved, self.desired, self.success):
            arr[0] = arr[n]
        self.n = 0
        return buffer
