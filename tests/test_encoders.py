"""Observation encoders: the flat encoder is the identity, the registry chooses one per observation
part, refuses what none takes, and a new kind is one registered class (here a toy image encoder) that
an agent then learns, acts, saves and loads with."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import TINY
from conftest import observation_buffers, write_dataset

from latent_skills import LDCQ, load_agent
from latent_skills.data import ObservationFlattener
from latent_skills.nn import encoders
from latent_skills.nn.encoders import FlatEncoder, ObservationEncoder, PartEncoder, encoder_kinds, is_image

IMAGE = gym.spaces.Box(0, 255, (6, 6, 3), np.uint8)
MIXED = gym.spaces.Dict({"pixels": IMAGE, "position": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})


def test_flat_parts_pass_through_unchanged():
    space = gym.spaces.Dict(
        {
            "observation": gym.spaces.Box(-1.0, 1.0, (4,), np.float64),
            "achieved_goal": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
            "desired_goal": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
        }
    )
    flattener = ObservationFlattener.from_space(space)
    encoder = ObservationEncoder(flattener.segments, encoder_kinds(space))
    assert encoder_kinds(space) == ("flat", "flat", "flat")
    assert encoder.identity and encoder.features_dim == flattener.dim == 8
    assert list(encoder.parameters()) == [] and encoder.state_dict() == {}  # nothing to save
    states = torch.randn(3, 8)
    assert encoder(states) is states


def test_kinds_follow_the_flat_order_and_refuse_what_no_encoder_takes():
    assert is_image(IMAGE) and not is_image(gym.spaces.Box(0, 255, (12,), np.uint8))
    assert encoder_kinds(gym.spaces.Box(-1.0, 1.0, (2, 3), np.float32)) == ("flat",)  # a float grid: numbers
    with pytest.raises(ValueError, match=r"'pixels'.*an image.*'flat': a Box of numbers"):
        encoder_kinds(MIXED)
    with pytest.raises(ValueError, match="the observation.*Discrete.*FlattenObservation"):
        encoder_kinds(gym.spaces.Discrete(3))


class MeanColour(PartEncoder):
    """A toy image encoder: each channel's mean, scaled to [0, 1] (no parameters)."""

    kind = "test-mean-colour"
    takes = "an image"
    channels: ClassVar[int] = 3

    @classmethod
    def accepts(cls, space: gym.Space) -> bool:
        return isinstance(space, gym.spaces.Box) and is_image(space) and space.shape[-1] == cls.channels

    @property
    def features_dim(self) -> int:
        return self.channels

    def forward(self, part: torch.Tensor) -> torch.Tensor:
        return part.flatten(1, -2).mean(1) / 255.0


def test_a_registered_encoder_makes_a_new_observation_kind_learnable(minari_root, monkeypatch, tmp_path):
    monkeypatch.setitem(encoders.ENCODERS, MeanColour.kind, MeanColour)
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    buffers = observation_buffers(MIXED, n_episodes=3, steps=20)
    dataset = write_dataset("test/mixed/pixels-v0", buffers, observation_space=MIXED, action_space=space)
    settings = {**TINY, "skills_steps": 5, "prior_steps": 5, "q_steps": 5}
    agent = LDCQ.from_dataset(dataset, **settings)
    assert agent.spec.encoder_kinds == (MeanColour.kind, FlatEncoder.kind)  # sorted keys: pixels, position
    # the networks read 3 colours + 2 numbers, and so do the windows they learn from
    assert agent.observation_encoder.features_dim == 5 and agent.vae.state_dim == 5
    assert agent.data.windows.episodes.observations.shape[1] == 5
    agent.learn()
    obs = {"pixels": np.stack([IMAGE.sample() for _ in range(2)]), "position": np.zeros((2, 2), np.float32)}
    actions, _ = agent.predict(obs, deterministic=True)
    assert actions.shape == (2, 2) and np.isfinite(actions).all()
    loaded = load_agent(str(agent.save(tmp_path / "pixels")))
    assert loaded.spec.encoder_kinds == agent.spec.encoder_kinds
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    monkeypatch.delitem(encoders.ENCODERS, MeanColour.kind)
    with pytest.raises(ValueError, match="unknown observation encoder kinds"):
        load_agent(str(tmp_path / "pixels"))
