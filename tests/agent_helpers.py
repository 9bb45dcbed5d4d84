"""Tiny agent settings and toy datasets shared by the agent tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from minari.data_collector import EpisodeBuffer
from stable_baselines3.common.callbacks import BaseCallback

# Small enough that every stage runs in well under a second per hundred steps on one core.
TINY: dict[str, Any] = {
    "horizon": 5,
    "latent_dim": 4,
    "vae_hidden": 16,
    "vae_gru_layers": 1,
    "skills_lr": 3e-3,
    "skills_batch_size": 32,
    "skills_steps": 30,
    "diffusion_timesteps": 20,
    "denoiser_widths": (16, 8, 16),
    "prior_lr": 3e-3,
    "prior_batch_size": 64,
    "prior_steps": 30,
    "sampler_steps": 4,
    "q_lr": 3e-3,
    "q_batch_size": 32,
    "q_steps": 30,
    "q_widths": (32, 32),
    "q_candidates": 4,
    "act_candidates": 8,
}


class LossRecorder(BaseCallback):
    """Keeps every step's logged values, per stage (an SB3 callback, as users would write one)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[dict[str, float]]] = {}

    def _on_step(self) -> bool:
        logs = {key: float(value) for key, value in self.locals["logs"].items()}
        self.values.setdefault(self.locals["name"], []).append(logs)
        return True

    def series(self, stage: str, key: str = "loss") -> np.ndarray:
        return np.array([v[key] for v in self.values[stage]])


CHAIN_LENGTH = 8


def chain_buffers(n_episodes: int = 6) -> list[EpisodeBuffer]:
    """A deterministic chain: position 0 → CHAIN_LENGTH in unit steps, reward 1 on the last step,
    which terminates. The value of the window starting at t is γ^(T−1−t) whatever the skill."""
    buffers = []
    for e in range(n_episodes):
        positions = np.arange(CHAIN_LENGTH + 1, dtype=np.float64)[:, None]
        rewards = np.zeros(CHAIN_LENGTH)
        rewards[-1] = 1.0
        ends = np.zeros(CHAIN_LENGTH, bool)
        ends[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=positions,
                actions=np.full((CHAIN_LENGTH, 1), 0.5, np.float32),
                rewards=rewards,
                terminations=ends,
                truncations=np.zeros(CHAIN_LENGTH, bool),
            )
        )
    return buffers


CHAIN_OBS = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
CHAIN_ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def weights(agent: Any) -> dict[str, torch.Tensor]:
    """A copy of every tensor an agent saves, by its checkpoint name."""
    return {f"{p}.{k}": v.clone() for p, m in agent.modules().items() for k, v in m.state_dict().items()}
