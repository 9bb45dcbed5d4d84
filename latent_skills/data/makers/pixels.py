"""PointMaze datasets observed as top-down RGB frames (the LDCQ paper's image setting, App. C).

The same stream, episodes and rewards as the state datasets of :mod:`~latent_skills.data.makers.pointmaze`;
only what is stored as the observation changes: each state becomes the frame
:class:`~latent_skills.envs.pixel_maze.MazeFrames` draws of it (the agent, and the stored desired goal, so
a single-goal dataset shows the evaluation goal), ``uint8[size, size, 3]`` stored losslessly (Minari's
JPEG encoding is turned off: the frames a policy sees at evaluation are drawn exactly). With ``keys``
the observation is a Dict of the frame under ``"pixels"`` and those state fields. The dataset's env and
evaluation env are :data:`~latent_skills.envs.pixel_maze.PIXEL_ENV_ID` with the state datasets' maze
settings, so evaluating on it renders the same frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec
from minari.data_collector import EpisodeBuffer

from latent_skills.envs.pixel_maze import (
    PIXEL_ENV_ID,
    MazeFrames,
    check_keys,
    register_pixel_maze,
)

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "OBSERVATIONS",
    "PIXELS",
    "STATES",
    "check_observation",
    "pixel_env_spec",
    "pixel_episodes",
]

STATES = "states"
PIXELS = "pixels"
OBSERVATIONS: tuple[str, ...] = (STATES, PIXELS)
DEFAULT_IMAGE_SIZE = 64


def check_observation(observation: str, image_size: int, keys: Sequence[str]) -> tuple[str, ...]:
    """Validate the observation settings before any work; return the state keys (deduplicated)."""
    if observation not in OBSERVATIONS:
        raise ValueError(f"unknown observation kind {observation!r}; valid kinds: {', '.join(OBSERVATIONS)}")
    if observation == STATES and keys:
        raise ValueError("state fields beside the frame (keys) are for observation='pixels' only")
    if not 8 <= image_size <= 512:
        raise ValueError(f"image_size must be within 8..512 pixels, got {image_size}")
    return check_keys(keys)


def pixel_env_spec(state_spec: EnvSpec, image_size: int, keys: Sequence[str]) -> EnvSpec:
    """The pixel env with ``state_spec``'s maze settings and time limit."""
    register_pixel_maze()
    kwargs = dict(state_spec.kwargs, size=image_size, keys=list(keys))
    return dataclasses.replace(
        gym.spec(PIXEL_ENV_ID), kwargs=kwargs, max_episode_steps=state_spec.max_episode_steps
    )


def pixel_episodes(
    episodes: Iterable[EpisodeBuffer], frames: MazeFrames, keys: Sequence[str]
) -> Iterator[EpisodeBuffer]:
    """``episodes`` with each state observation replaced by its frame (and the ``keys`` kept)."""
    for episode in episodes:
        states = episode.observations
        assert isinstance(states, dict)
        pictures = frames.render_batch(states["achieved_goal"], states["desired_goal"])
        observations = {"pixels": pictures, **{key: states[key] for key in keys}} if keys else pictures
        yield dataclasses.replace(episode, observations=observations)
