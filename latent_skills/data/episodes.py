"""A Minari dataset as flat, concatenated arrays: the one copy every window indexes into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import minari
import numpy as np

from latent_skills._progress import progress as progress_display

from .flatten import ObservationFlattener


@dataclass(frozen=True)
class StateStats:
    """Per-dimension mean and standard deviation of the flattened states."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, states: np.ndarray, chunk: int = 1 << 16) -> StateStats:
        # Accumulate in float64 over chunks: exact enough and no float64 copy of the whole array.
        total = np.zeros(states.shape[1], np.float64)
        total_sq = np.zeros(states.shape[1], np.float64)
        for i in range(0, len(states), chunk):
            block = states[i : i + chunk].astype(np.float64)
            total += block.sum(0)
            total_sq += np.square(block).sum(0)
        mean = total / len(states)
        var = np.maximum(total_sq / len(states) - np.square(mean), 0.0)
        return cls(mean.astype(np.float32), np.sqrt(var).astype(np.float32))


class StateEncoding(Protocol):
    """What turns one episode's observations (as Minari returns them) into its states ``(T + 1,
    layout.dim)`` float32; ``layout`` says where each observation part sits in them. The default is
    the flattening rule itself; an agent with a learned observation encoder (images) passes one that
    encodes a few frames at a time (``latent_skills.nn.encoders.EpisodeEncoding``)."""

    layout: ObservationFlattener

    def __call__(self, observations: Any) -> np.ndarray: ...


class Flattening:
    """The default :class:`StateEncoding`: the flat observation is the state."""

    def __init__(self, flattener: ObservationFlattener) -> None:
        self.layout = flattener

    def __call__(self, observations: Any) -> np.ndarray:
        return self.layout.flatten(observations)


@dataclass(frozen=True)
class EpisodeArrays:
    """Every episode of a dataset, concatenated.

    Episode ``e`` has ``lengths[e]`` steps; its ``lengths[e] + 1`` observations are rows
    ``obs_offsets[e] : obs_offsets[e] + lengths[e] + 1`` of ``observations`` and its actions, rewards,
    terminations and truncations are rows ``step_offsets[e] : step_offsets[e] + lengths[e]``.
    """

    observations: np.ndarray  # (total_steps + episodes, S) float32, flattened (or encoded), not normalised
    actions: np.ndarray  # (total_steps, A) float32
    rewards: np.ndarray  # (total_steps,) float64
    terminations: np.ndarray  # (total_steps,) bool
    truncations: np.ndarray  # (total_steps,) bool
    lengths: np.ndarray  # (episodes,) int64
    obs_offsets: np.ndarray  # (episodes,) int64
    step_offsets: np.ndarray  # (episodes,) int64
    flattener: ObservationFlattener  # where each observation part sits in ``observations``
    stale_goals_repaired: int = 0  # see repair_stale_first_goals

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_steps(self) -> int:
        return len(self.actions)

    @property
    def state_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]

    def state_stats(self) -> StateStats:
        return StateStats.of(self.observations)

    def step_observation_rows(self) -> np.ndarray:
        """``(n_steps,)`` the row in ``observations`` of s_t for every step t: each episode's
        observations without its final one, aligned with ``actions`` and ``rewards``."""
        within = np.arange(self.n_steps) - np.repeat(self.step_offsets, self.lengths)
        return np.repeat(self.obs_offsets, self.lengths) + within

    @classmethod
    def from_minari(
        cls, dataset: minari.MinariDataset, progress: bool = False, encoding: StateEncoding | None = None
    ) -> EpisodeArrays:
        """Read every episode once into preallocated arrays (no per-episode list, no float64 copy);
        each episode's observations become states through ``encoding`` (default: flattened)."""
        if not isinstance(dataset.action_space, gym.spaces.Box):
            raise TypeError(
                f"Action space {dataset.action_space} is not a Box: latent skills decode continuous "
                "actions only."
            )
        encoding = encoding or Flattening(ObservationFlattener.from_space(dataset.observation_space))
        flattener = encoding.layout
        n_episodes, n_steps = dataset.total_episodes, dataset.total_steps
        action_dim = int(np.prod(dataset.action_space.shape))
        observations = np.empty((n_steps + n_episodes, flattener.dim), np.float32)
        actions = np.empty((n_steps, action_dim), np.float32)
        rewards = np.empty(n_steps, np.float64)
        terminations = np.empty(n_steps, bool)
        truncations = np.empty(n_steps, bool)
        lengths = np.empty(n_episodes, np.int64)
        obs_at, step_at = 0, 0
        episodes = dataset.iterate_episodes()
        for e, episode in enumerate(
            progress_display(
                episodes, total=n_episodes, disable=not progress, desc="reading episodes", unit="ep"
            )
        ):
            length = len(episode.rewards)
            flat_obs = encoding(episode.observations)
            if flat_obs.shape[0] != length + 1:
                raise ValueError(
                    f"Episode {episode.id} has {flat_obs.shape[0]} observations for {length} steps; "
                    "Minari episodes hold one more observation than steps."
                )
            observations[obs_at : obs_at + length + 1] = flat_obs
            actions[step_at : step_at + length] = np.asarray(episode.actions).reshape(length, -1)
            rewards[step_at : step_at + length] = episode.rewards
            terminations[step_at : step_at + length] = episode.terminations
            truncations[step_at : step_at + length] = episode.truncations
            lengths[e] = length
            obs_at += length + 1
            step_at += length
        if (obs_at, step_at) != (len(observations), n_steps):
            raise ValueError(
                f"Dataset {dataset.spec.dataset_id} reports {n_steps} steps in {n_episodes} "
                f"episodes but its episodes hold {step_at}; its metadata is inconsistent."
            )
        offsets = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
        repaired = repair_stale_first_goals(observations, offsets, lengths, flattener)
        arrays = cls(
            observations=observations,
            actions=actions,
            rewards=rewards,
            terminations=terminations,
            truncations=truncations,
            lengths=lengths,
            obs_offsets=offsets,
            step_offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
            flattener=flattener,
            stale_goals_repaired=repaired,
        )
        arrays.check_finite()
        return arrays

    def check_finite(self) -> None:
        """Raise, naming the first offending episode and step, on NaN or inf in the data."""
        for name, values in (
            ("observations", self.observations),
            ("actions", self.actions),
            ("rewards", self.rewards),
        ):
            bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            if bad.any():
                row = int(np.argmax(bad))
                offsets = self.obs_offsets if name == "observations" else self.step_offsets
                episode = int(np.searchsorted(offsets, row, side="right") - 1)
                raise ValueError(
                    f"Non-finite {name} in episode {episode} at step {row - offsets[episode]}: "
                    "filter or repair the dataset (e.g. minari's filter_episodes) before training."
                )


def repair_stale_first_goals(
    observations: np.ndarray, obs_offsets: np.ndarray, lengths: np.ndarray, flattener: ObservationFlattener
) -> int:
    """Give each episode's first observation the goal the rest of the episode pursues; return how many
    were changed (in place).

    gymnasium-robotics' maze envs (PointMaze, AntMaze) return the observation of the step that reaches
    the goal *before* they sample the next goal. A data stream cut into episodes at each success (the
    D4RL/Minari procedure) therefore starts every episode with an observation that still holds the old,
    just-reached goal, while the episode's rewards are computed against the new one: the ball "at its
    goal" then drives away. An episode is repaired only when its goal is constant from the second
    observation on and the first differs; goals that move within an episode are left alone.
    """
    if not flattener.has("desired_goal") or len(lengths) == 0:
        return 0
    goals = observations[:, flattener.slice_of("desired_goal")]
    changed = np.any(goals[1:] != goals[:-1], axis=1)  # (rows - 1,): row r+1's goal differs from row r's
    # changes strictly after each episode's first transition, counted with a prefix sum
    prefix = np.concatenate([[0], np.cumsum(changed, dtype=np.int64)])
    first, last = obs_offsets, obs_offsets + lengths  # rows of each episode's first and final observation
    eligible = lengths >= 1
    later_changes = np.where(eligible, prefix[np.maximum(last, first + 1)] - prefix[first + 1], 1)
    stale = eligible & (later_changes == 0) & changed[np.minimum(first, len(changed) - 1)]
    rows = first[stale]
    observations[rows, flattener.slice_of("desired_goal")] = goals[rows + 1]
    return int(stale.sum())
