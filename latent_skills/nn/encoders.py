"""Observation encoders: what turns an observation into the state every network reads.

An observation is flattened into one float32 vector (:mod:`latent_skills.data.flatten`); each of its
parts (a Box, or a leaf of a Dict) passes through the encoder registered for its kind, and the
networks read the parts' outputs side by side: :attr:`ObservationEncoder.features_dim` numbers.

Two kinds are registered: ``"flat"``, a vector of numbers passed through as it is (no parameters,
so it adds nothing to a checkpoint), and ``"image"``, a convolutional β-VAE on single frames
(:mod:`latent_skills.nn.image_encoder`, the LDCQ paper's App. C), trained by the agent's first stage
(``ImagesStage``). A new observation kind is one :class:`PartEncoder` subclass plus
:func:`register_encoder`, as Stable-Baselines3's ``features_extractor_class`` and d3rlpy's
``EncoderFactory`` are. An observation part no registered encoder takes is a ValueError naming what
is supported: never a silent flatten.

The states the networks read are laid out as the flat observation is, each part replaced by its
encoder's output (:meth:`ObservationEncoder.state_layout`): a vector part keeps its place's name, so
``layout.slice_of("desired_goal")`` finds the goal in the states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from latent_skills.data.flatten import ObservationFlattener, ObsSegment, observation_parts


class PartEncoder(nn.Module):
    """Encodes one part of the observation, ``(B, *shape)`` → ``(B, features_dim)``. Subclasses set
    ``kind`` (the name checkpoints record), ``takes`` (what they accept, in words) and ``accepts``."""

    kind: ClassVar[str]
    takes: ClassVar[str]
    identity: ClassVar[bool] = False  # its output is its flat input, unchanged
    learned: ClassVar[bool] = False  # it has weights to train first (the agent's ``images`` stage)

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    @classmethod
    def accepts(cls, space: gym.Space) -> bool:
        raise NotImplementedError

    @classmethod
    def features_for(cls, shape: tuple[int, ...]) -> int:
        """The output size for parts of ``shape``, without building the encoder (which would draw
        its initial weights from the global RNG): here by building one on a forked RNG."""
        with torch.random.fork_rng(devices=[]):
            return cls(shape).features_dim

    @property
    def features_dim(self) -> int:
        return type(self).features_for(self.shape)


ENCODERS: dict[str, type[PartEncoder]] = {}


def register_encoder(cls: type[PartEncoder]) -> type[PartEncoder]:
    """Make ``cls`` the encoder of the observation parts it ``accepts`` (tried in registration order)."""
    if cls.kind in ENCODERS and ENCODERS[cls.kind] is not cls:
        raise ValueError(f"an observation encoder of kind {cls.kind!r} is registered already")
    ENCODERS[cls.kind] = cls
    return cls


def is_image(space: gym.spaces.Box) -> bool:
    """Integer values on a grid of two or more axes (``(H, W)``, ``(H, W, C)``, ``(C, H, W)``)."""
    return np.issubdtype(space.dtype, np.integer) and len(space.shape) >= 2


@register_encoder
class FlatEncoder(PartEncoder):
    """A vector of numbers, read as it is: the identity on its flattened values."""

    kind = "flat"
    takes = "a Box of numbers that is not an image (floats of any shape, or an integer vector)"
    identity = True

    @classmethod
    def accepts(cls, space: gym.Space) -> bool:
        return isinstance(space, gym.spaces.Box) and not is_image(space)

    @classmethod
    def features_for(cls, shape: tuple[int, ...]) -> int:
        return math.prod(shape)

    def forward(self, part: torch.Tensor) -> torch.Tensor:
        return part.reshape(len(part), -1)


def encoder_kinds(space: gym.Space) -> tuple[str, ...]:
    """The encoder kind of each part of observations from ``space``, in flat order; a ValueError
    naming the part and the kinds supported where no registered encoder takes a part."""
    kinds = []
    for path, part in observation_parts(space):
        kind = next((k for k, cls in ENCODERS.items() if cls.accepts(part)), None)
        if kind is None:
            where = "/".join(path) or "the observation"
            what = "an image" if isinstance(part, gym.spaces.Box) and is_image(part) else "not supported"
            supported = "; ".join(f"{k!r}: {cls.takes}" for k, cls in ENCODERS.items())
            raise ValueError(
                f"No observation encoder takes {where!r}, {part} ({what}). Supported parts (a Box, or a "
                f"Dict of them): {supported}. Turn it into one with a gymnasium ObservationWrapper (e.g. "
                "gymnasium.wrappers.FlattenObservation for a discrete part), or register an encoder for "
                "it (latent_skills.nn.encoders.register_encoder)."
            )
        kinds.append(kind)
    return tuple(kinds)


class ObservationEncoder(nn.Module):
    """Every part of a flat observation ``(B, S)`` through its encoder, the outputs side by side:
    ``(B, features_dim)``. Where every part's encoder is the identity, the input itself."""

    def __init__(self, segments: Sequence[ObsSegment], kinds: Sequence[str]) -> None:
        super().__init__()
        if len(segments) != len(kinds):
            raise ValueError(f"{len(kinds)} encoder kinds for {len(segments)} observation parts")
        check_kinds(kinds)
        self.segments = tuple(segments)
        parts = [ENCODERS[k](s.shape) for k, s in zip(kinds, segments, strict=True)]
        self.parts = nn.ModuleList(parts)
        self.identity = all(part.identity for part in parts)
        self.features_dim = sum(part.features_dim for part in parts)

    @property
    def learned(self) -> bool:
        """Whether some part's encoder has weights to train first (the agent's ``images`` stage)."""
        return any(part.learned for _, part in self.encoders())

    def encoders(self) -> list[tuple[ObsSegment, PartEncoder]]:
        """Each part's place in the flat observation, with its encoder."""
        return [(s, cast(PartEncoder, p)) for s, p in zip(self.segments, self.parts, strict=True)]

    def learned_parts(self) -> list[tuple[ObsSegment, PartEncoder]]:
        """The parts whose encoders are learned, with their place in the flat observation."""
        return [(segment, part) for segment, part in self.encoders() if part.learned]

    def state_layout(self) -> ObservationFlattener:
        """Where each part sits in the encoded states: :func:`state_layout` of these parts."""
        return state_layout(self.segments, [part.kind for _, part in self.encoders()])

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return observations
        lead = observations.shape[:-1]
        flat = observations.reshape(-1, observations.shape[-1])
        parts = [
            encoder(flat[:, s.start : s.stop].reshape(len(flat), *s.shape))
            for s, encoder in zip(self.segments, self.parts, strict=True)
        ]
        return torch.cat(parts, -1).reshape(*lead, -1)


def check_kinds(kinds: Sequence[str]) -> None:
    """A ValueError naming the kinds (a checkpoint's) that no encoder here is registered for."""
    unknown = sorted(set(kinds) - set(ENCODERS))
    if unknown:
        raise ValueError(f"unknown observation encoder kinds {unknown}; known: {sorted(ENCODERS)}")


def state_layout(segments: Sequence[ObsSegment], kinds: Sequence[str]) -> ObservationFlattener:
    """The encoded states' layout: each part where the flat observation has it, with the shape of its
    encoder's output (a vector part is unchanged; an image part becomes its features)."""
    check_kinds(kinds)
    placed, start = [], 0
    for segment, kind in zip(segments, kinds, strict=True):
        cls = ENCODERS[kind]
        shape = segment.shape if cls.identity else (cls.features_for(segment.shape),)
        placed.append(ObsSegment(segment.path, shape, start))
        start = placed[-1].stop
    return ObservationFlattener(tuple(placed))


class EpisodeEncoding:
    """One episode's observations (as Minari returns them: arrays or dicts of arrays, ``uint8`` frames)
    → its encoded states ``(T + 1, features_dim)`` float32, ``batch_size`` rows at a time, so no
    float32 copy of more than ``batch_size`` frames is ever made (what ``EpisodeArrays.from_minari``
    calls per episode)."""

    def __init__(
        self,
        encoder: ObservationEncoder,
        flattener: ObservationFlattener,
        device: torch.device,
        batch_size: int = 256,
    ) -> None:
        self.encoder, self.flattener, self.device, self.batch_size = encoder, flattener, device, batch_size
        self.layout = encoder.state_layout()

    @torch.no_grad()
    def __call__(self, observations: Any) -> np.ndarray:
        rows = len(self.flattener.leaf(observations, self.flattener.segments[0]))
        out = np.empty((rows, self.encoder.features_dim), np.float32)
        for lo in range(0, rows, self.batch_size):
            hi = min(lo + self.batch_size, rows)
            flat = self.flattener.flatten(self.flattener.rows(observations, slice(lo, hi)))
            out[lo:hi] = self.encoder(torch.as_tensor(flat, device=self.device)).cpu().numpy()
        return out
