"""The observation flattening rule: every observation becomes one float32 vector.

The rule is derived once from the dataset's observation space, recorded (it goes into checkpoints as
JSON) and applied identically to the dataset's episodes and to live observations at predict time.

- ``Box``: the array, flattened (C order).
- ``Dict`` with an ``observation`` key: ``observation``, then ``achieved_goal`` and ``desired_goal``
  where the space has them, then ``pixels`` (the frame of an image dataset beside its state fields);
  other keys are left out. ``achieved_goal`` stays in: AntMaze's
  ``observation`` does not hold the ant's position, and goal-reaching agents (LDGC's hindsight goals,
  LDCP's cost) read the achieved goal from the state.
- ``Dict`` without an ``observation`` key: every key, in sorted order.
- A nested ``Dict`` (Kitchen's goal dicts): its keys in sorted order, recursively.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class ObsSegment:
    """One leaf of the observation: where it sits in the flat vector."""

    path: KeyPath
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def stop(self) -> int:
        return self.start + self.size


def _selected_keys(space: gym.spaces.Dict, top_level: bool) -> list[str]:
    keys = list(space.spaces.keys())
    if top_level and "observation" in keys:
        return ["observation"] + [k for k in ("achieved_goal", "desired_goal", "pixels") if k in keys]
    return sorted(keys)


def observation_parts(
    space: gym.Space, path: KeyPath = (), top_level: bool = True
) -> list[tuple[KeyPath, gym.Space]]:
    """The observation's parts (leaves) in flat order, with their spaces, whatever their kind: the
    Dicts walked as the rule above says."""
    if isinstance(space, gym.spaces.Dict):
        out: list[tuple[KeyPath, gym.Space]] = []
        for key in _selected_keys(space, top_level):
            out.extend(observation_parts(space.spaces[key], (*path, key), top_level=False))
        return out
    return [(path, space)]


def _leaf_paths(space: gym.Space) -> list[tuple[KeyPath, gym.Space]]:
    parts = observation_parts(space)
    for path, leaf in parts:
        if not isinstance(leaf, gym.spaces.Box):
            where = "/".join(path) or "the observation"
            raise TypeError(
                f"Cannot flatten {type(leaf).__name__} space at {where!r}: latent-skills supports Box "
                "observations and (nested) Dicts of Boxes. Wrap the env with a gymnasium ObservationWrapper "
                "that turns it into a Box (e.g. gymnasium.wrappers.FlattenObservation)."
            )
    return parts


def _lookup(obs: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(obs, Mapping) or key not in obs:
            have = sorted(obs.keys()) if isinstance(obs, Mapping) else type(obs).__name__
            raise ValueError(
                f"Observation has no key {'/'.join(path)!r} (found {have}); it does not match the "
                "observation space this model was built for."
            )
        obs = obs[key]
    return obs


@dataclass(frozen=True)
class ObservationFlattener:
    """Turns an observation (single or batched, array or dict) into float32 vectors."""

    segments: tuple[ObsSegment, ...]

    @classmethod
    def from_space(cls, space: gym.Space) -> ObservationFlattener:
        segments, start = [], 0
        for path, leaf in _leaf_paths(space):
            segment = ObsSegment(path=path, shape=tuple(int(d) for d in leaf.shape or ()), start=start)
            segments.append(segment)
            start = segment.stop
        return cls(tuple(segments))

    @property
    def dim(self) -> int:
        return self.segments[-1].stop if self.segments else 0

    def slice_of(self, *path: str) -> slice:
        """Where the leaves under ``path`` (e.g. ``"desired_goal"``) sit in the flat vector."""
        hits = [s for s in self.segments if s.path[: len(path)] == path]
        if not hits:
            known = ["/".join(s.path) for s in self.segments]
            raise KeyError(f"No observation part {'/'.join(path)!r}; the parts are {known}.")
        return slice(hits[0].start, hits[-1].stop)

    def has(self, *path: str) -> bool:
        return any(s.path[: len(path)] == path for s in self.segments)

    def leaf(self, obs: Any, segment: ObsSegment) -> Any:
        """The part of ``obs`` (one or a batch) that ``segment`` stands for, as it is."""
        return _lookup(obs, segment.path)

    def rows(self, obs: Any, index: slice | np.ndarray) -> Any:
        """Rows ``index`` of a batch of observations, in its own form (the parts this rule reads)."""
        if len(self.segments) == 1 and not self.segments[0].path:
            return obs[index]
        picked: dict[str, Any] = {}
        for segment in self.segments:
            node = picked
            for key in segment.path[:-1]:
                node = node.setdefault(key, {})
            node[segment.path[-1]] = _lookup(obs, segment.path)[index]
        return picked

    def flatten(self, obs: Any) -> np.ndarray:
        """``(S,)`` for a single observation, ``(B, S)`` for a batch (leading axis on every leaf)."""
        parts: list[np.ndarray] = []
        batch: tuple[int, ...] | None = None
        for segment in self.segments:
            leaf = np.asarray(_lookup(obs, segment.path), dtype=np.float32)
            lead = leaf.shape[: leaf.ndim - len(segment.shape)]
            if (
                leaf.shape[len(lead) :] != segment.shape
                or len(lead) > 1
                or (batch is not None and lead != batch)
            ):
                where = "/".join(segment.path) or "observation"
                fix = (
                    " An image must have the size the agent was trained on: resize it (e.g. "
                    "gymnasium.wrappers.ResizeObservation) or train on frames of this size."
                    if len(segment.shape) >= 2
                    else ""
                )
                raise ValueError(
                    f"Observation {where!r} has shape {leaf.shape}; expected {segment.shape} "
                    f"(one observation) or (batch, {', '.join(map(str, segment.shape))}) — "
                    f"is this the env the model was trained for?{fix}"
                )
            batch = lead
            parts.append(leaf.reshape(*lead, segment.size))
        return np.concatenate(parts, axis=-1)

    def unflatten(self, states: np.ndarray) -> Any:
        """The inverse of :meth:`flatten` for a batch: flat states ``(B, S)`` back in the observation's
        form (nested dicts of ``(B, ...)`` arrays; for a Box, the states themselves)."""
        batch = len(states)
        observation: dict[str, Any] = {}
        for segment in self.segments:
            leaf = states[:, segment.start : segment.stop].reshape(batch, *segment.shape)
            if not segment.path:
                return leaf
            node = observation
            for key in segment.path[:-1]:
                node = node.setdefault(key, {})
            node[segment.path[-1]] = leaf
        return observation

    def to_dict(self) -> dict[str, Any]:
        return {
            "segments": [
                {"path": list(s.path), "shape": list(s.shape), "start": s.start} for s in self.segments
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObservationFlattener:
        segments = tuple(
            ObsSegment(path=tuple(s["path"]), shape=tuple(int(d) for d in s["shape"]), start=int(s["start"]))
            for s in data["segments"]
        )
        return cls(segments)
