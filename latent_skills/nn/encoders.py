"""Observation encoders: what turns an observation into the state every network reads.

An observation is flattened into one float32 vector (:mod:`latent_skills.data.flatten`); each of its
parts (a Box, or a leaf of a Dict) passes through the encoder registered for its kind, and the
networks read the parts' outputs side by side: :attr:`ObservationEncoder.features_dim` numbers.

One kind is registered today, ``"flat"``: a vector of numbers, passed through as it is (no
parameters, so it adds nothing to a checkpoint). A new observation kind (images, issue 23) is one
:class:`PartEncoder` subclass here plus :func:`register_encoder`, as Stable-Baselines3's
``features_extractor_class`` and d3rlpy's ``EncoderFactory`` are. An observation part no registered
encoder takes is a ValueError naming what is supported: never a silent flatten.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from latent_skills.data.flatten import ObsSegment, observation_parts


class PartEncoder(nn.Module):
    """Encodes one part of the observation, ``(B, *shape)`` → ``(B, features_dim)``. Subclasses set
    ``kind`` (the name checkpoints record), ``takes`` (what they accept, in words) and ``accepts``."""

    kind: ClassVar[str]
    takes: ClassVar[str]
    identity: ClassVar[bool] = False  # its output is its flat input, unchanged

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    @classmethod
    def accepts(cls, space: gym.Space) -> bool:
        raise NotImplementedError

    @property
    def features_dim(self) -> int:
        raise NotImplementedError


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

    @property
    def features_dim(self) -> int:
        return math.prod(self.shape)

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
        unknown = sorted(set(kinds) - set(ENCODERS))
        if unknown:
            raise ValueError(f"unknown observation encoder kinds {unknown}; known: {sorted(ENCODERS)}")
        self.segments = tuple(segments)
        parts = [ENCODERS[k](s.shape) for k, s in zip(kinds, segments, strict=True)]
        self.parts = nn.ModuleList(parts)
        self.identity = all(part.identity for part in parts)
        self.features_dim = sum(part.features_dim for part in parts)

    @torch.no_grad()
    def encode_array(
        self, observations: np.ndarray, device: torch.device, batch_size: int = 4096
    ) -> np.ndarray:
        """Flat observations ``(N, S)`` encoded in batches on ``device``: ``(N, features_dim)`` float32."""
        out = np.empty((len(observations), self.features_dim), np.float32)
        for lo in range(0, len(observations), batch_size):
            rows = torch.as_tensor(np.asarray(observations[lo : lo + batch_size], np.float32), device=device)
            out[lo : lo + len(rows)] = self(rows).cpu().numpy()
        return out

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
