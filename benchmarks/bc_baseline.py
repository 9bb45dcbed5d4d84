"""Behaviour cloning baseline: an MLP from the flattened state to the action, trained by MSE on every
(s_t, a_t) of the dataset for a fixed wall-clock budget, then evaluated exactly like the agents
(same vector-env evaluation, same reference scores).

It takes the observation rule, action bounds, evaluation env and reference scores from ``spec``: the
``agent.spec`` of an agent made from the same dataset (``LDCQ.from_dataset(dataset_id).spec``). From
images, give it the states an agent's trained image encoder made (``episodes``) and that encoder
(``encode``: flat observations → states), as :mod:`benchmarks.pixels` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from latent_skills.data import EpisodeArrays, load_dataset
from latent_skills.envs import evaluate_policy_vec
from latent_skills.nn import StateNormalizer


class BCPolicy:
    def __init__(
        self,
        spec: Any,
        states: np.ndarray,
        hidden: int = 256,
        seed: int = 0,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        torch.manual_seed(seed)
        self.spec, self.encode = spec, encode
        stats_mean, stats_std = states.mean(0), states.std(0)
        self.net = nn.Sequential(
            StateNormalizer(mean=stats_mean, std=stats_std),
            nn.Linear(states.shape[1], hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, spec.action_dim),
            nn.Tanh(),
        )
        low, high = np.array(spec.action_low), np.array(spec.action_high)
        self.center, self.scale = (
            torch.tensor((high + low) / 2, dtype=torch.float32),
            torch.tensor((high - low) / 2, dtype=torch.float32),
        )

    @torch.no_grad()
    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ):
        flat = self.spec.flattener.flatten(observation)
        states = np.atleast_2d(flat) if self.encode is None else self.encode(np.atleast_2d(flat))
        action = self.center + self.scale * self.net(torch.as_tensor(states))
        action = action.numpy()
        return (action[0] if flat.ndim == 1 else action), None


def train_bc(
    dataset_id: str,
    spec: Any,
    seconds: float,
    seed: int = 0,
    batch_size: int = 256,
    lr: float = 1e-3,
    episodes: EpisodeArrays | None = None,
    encode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[BCPolicy, dict[str, Any]]:
    """BC on ``dataset_id`` for ``seconds`` of wall time; ``spec`` is ``agent.spec`` of an agent made
    from the same dataset; ``episodes`` and ``encode`` (both or neither): encoded states, and how."""
    if spec.dataset_id != dataset_id:
        raise ValueError(f"spec is for dataset {spec.dataset_id!r}, not {dataset_id!r}")
    if (episodes is None) != (encode is None):
        raise ValueError("give both the encoded episodes and their encoder, or neither")
    episodes = episodes or EpisodeArrays.from_minari(load_dataset(dataset_id))
    states, actions = episodes.observations[episodes.step_observation_rows()], episodes.actions
    policy = BCPolicy(spec, states, seed=seed, encode=encode)
    optimizer = torch.optim.Adam(policy.net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    center, scale = policy.center, policy.scale
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        idx = rng.integers(0, len(states), batch_size)
        pred = center + scale * policy.net(torch.as_tensor(states[idx]))
        loss = (pred - torch.as_tensor(actions[idx])).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    return policy, {
        "train_seconds": time.perf_counter() - start,
        "gradient_steps": steps,
        "final_loss": loss.item(),
    }


def evaluate_bc(policy: BCPolicy, n_episodes: int, n_envs: int, seed: int) -> dict[str, Any]:
    return evaluate_policy_vec(
        policy,
        policy.spec.make_env,
        n_episodes=n_episodes,
        n_envs=n_envs,
        seed=seed,
        reference=policy.spec.reference_scores,
    )
