"""Fixtures: tiny Minari datasets built in a temporary MINARI_DATASETS_PATH (no jax, no network)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import gymnasium_robotics
import minari
import numpy as np
import pytest
import torch
from minari.data_collector import EpisodeBuffer

gym.register_envs(gymnasium_robotics)

BOX_OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
BOX_ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run fastest on one thread, and two threads stall when anything else runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    """Every test gets its own empty local Minari store."""
    root = tmp_path / "minari"
    root.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def write_dataset(dataset_id: str, buffers: list[EpisodeBuffer], **kwargs: Any) -> minari.MinariDataset:
    return minari.create_dataset_from_buffers(dataset_id, buffers, **kwargs)


def random_box_buffers(
    rng: np.random.Generator, lengths: list[int], terminated: list[bool]
) -> list[EpisodeBuffer]:
    """Episodes of random Box data; each ends in a termination or a truncation as asked."""
    buffers = []
    for i, (length, term) in enumerate(zip(lengths, terminated, strict=True)):
        ends = np.zeros(length, bool)
        ends[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=rng.normal(size=(length + 1, 3)),
                actions=rng.uniform(-1, 1, size=(length, 2)).astype(np.float32),
                rewards=rng.normal(size=length),
                terminations=ends if term else np.zeros(length, bool),
                truncations=np.zeros(length, bool) if term else ends,
            )
        )
    return buffers


def observation_buffers(space: gym.Space, n_episodes: int = 3, steps: int = 20) -> list[EpisodeBuffer]:
    """Episodes of random observations from ``space`` and random 2-d actions."""
    space.seed(0)
    rng = np.random.default_rng(0)
    buffers = []
    for e in range(n_episodes):
        samples = [space.sample() for _ in range(steps + 1)]
        observations = (
            {k: np.stack([o[k] for o in samples]) for k in samples[0]}
            if isinstance(space, gym.spaces.Dict)
            else np.stack(samples)
        )
        ends = np.zeros(steps, bool)
        ends[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=observations,
                actions=rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
                rewards=rng.normal(size=steps),
                terminations=np.zeros(steps, bool),
                truncations=ends,
            )
        )
    return buffers


@pytest.fixture
def box_dataset(minari_root) -> minari.MinariDataset:
    """Episodes shorter than, equal to and longer than H = 5, terminated and truncated."""
    rng = np.random.default_rng(0)
    lengths = [1, 3, 5, 6, 12, 9, 2]
    terminated = [True, False, True, False, True, False, False]
    return write_dataset(
        "test/box/mixed-v0",
        random_box_buffers(rng, lengths, terminated),
        observation_space=BOX_OBS,
        action_space=BOX_ACT,
    )


def _copy(obs: Any) -> Any:
    # Some envs (FrankaKitchen) hand back the same arrays on every step: keep a copy of each.
    if isinstance(obs, dict):
        return {k: _copy(v) for k, v in obs.items()}
    return np.array(obs, copy=True)


def record_env_buffers(
    env: gym.Env, n_episodes: int, steps: int, seed: int, policy: Callable[[Any], Any] | None = None
) -> list[EpisodeBuffer]:
    """Run ``env`` with random (or given) actions and keep each episode as an EpisodeBuffer."""
    buffers = []
    env.action_space.seed(seed)
    for e in range(n_episodes):
        obs, _ = env.reset(seed=seed + e)
        observations, actions, rewards, terms, truncs = [_copy(obs)], [], [], [], []
        for t in range(steps):
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, term, trunc, _ = env.step(action)
            trunc = trunc or t == steps - 1
            observations.append(_copy(obs))
            actions.append(action)
            rewards.append(reward)
            terms.append(term)
            truncs.append(trunc)
            if term or trunc:
                break
        stacked = (
            {k: _stack([o[k] for o in observations]) for k in observations[0]}
            if isinstance(obs, dict)
            else np.stack(observations)
        )
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=stacked,
                actions=np.stack(actions),
                rewards=np.asarray(rewards, np.float64),
                terminations=np.asarray(terms),
                truncations=np.asarray(truncs),
            )
        )
    return buffers


def _stack(values: list[Any]) -> Any:
    if isinstance(values[0], dict):
        return {k: _stack([v[k] for v in values]) for k in values[0]}
    return np.stack(values)


def random_pointmaze_dataset() -> minari.MinariDataset:
    """Four 40-step random-action PointMaze UMaze episodes, written to the current Minari store."""
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=40)
    buffers = record_env_buffers(env, n_episodes=4, steps=40, seed=3)
    return write_dataset("test/pointmaze/random-v0", buffers, env=env)


@pytest.fixture
def pointmaze_dataset(minari_root) -> minari.MinariDataset:
    return random_pointmaze_dataset()


# collect_pointmaze("umaze", steps=1200, seed=1, ref_episodes=2): the small expert dataset many agent tests
# train on, under the maker's default id
UMAZE_ID = "latent-skills/pointmaze/umaze-v0"


@pytest.fixture(scope="session")
def umaze_source(tmp_path_factory) -> Path:
    """A Minari store holding the UMaze dataset, collected once per session. Never used in place:
    tests take a copy of it into their own store (``umaze``, ``copy_umaze``)."""
    from latent_skills.data.makers import collect_pointmaze

    root = tmp_path_factory.mktemp("umaze-source")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        collect_pointmaze("umaze", steps=1200, seed=1, ref_episodes=2, progress=False)
    return root


def copy_umaze(source: Path, root: Path) -> minari.MinariDataset:
    """The session's UMaze dataset copied into the store ``root``, which MINARI_DATASETS_PATH names."""
    shutil.copytree(source, root, dirs_exist_ok=True)
    return minari.load_dataset(UMAZE_ID)


@pytest.fixture
def umaze(minari_root, umaze_source) -> minari.MinariDataset:
    """The UMaze dataset in this test's own store."""
    return copy_umaze(umaze_source, minari_root)


@pytest.fixture(scope="session")
def tiny_ldcq_checkpoint(umaze_source, tmp_path_factory) -> Path:
    """An LDCQ with TINY settings trained on the UMaze dataset, once per session, and saved. Never used
    in place: tests load their own copy (``LDCQ.load``) or save one elsewhere."""
    from agent_helpers import TINY

    from latent_skills import LDCQ

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        agent = LDCQ.from_dataset(copy_umaze(umaze_source, root), **TINY).learn()
    return agent.save(tmp_path_factory.mktemp("tiny-ldcq") / "run")


@pytest.fixture(scope="session")
def kitchen_buffers() -> list[EpisodeBuffer]:
    env = gym.make("FrankaKitchen-v1", max_episode_steps=12)
    buffers = record_env_buffers(env, n_episodes=2, steps=12, seed=1)
    env.close()
    return buffers


@pytest.fixture
def kitchen_dataset(minari_root, kitchen_buffers) -> minari.MinariDataset:
    return write_dataset("test/kitchen/random-v0", kitchen_buffers, env="FrankaKitchen-v1")


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path) -> None:
    """W&B without an account or network, every file it writes under ``tmp_path``."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def wandb_records(logs: Any, keys: list[bytes], timeout: float = 30.0) -> bytes:
    """The bytes of the one offline W&B run file under ``logs``, once every key is in it: W&B's service
    process writes it after ``run.finish()`` returns, later on a busy machine (gives up after
    ``timeout`` seconds and returns what is there)."""
    import time
    from pathlib import Path

    deadline = time.monotonic() + timeout
    while True:
        (run,) = Path(logs).glob("wandb/offline-run-*/run-*.wandb")
        recorded = run.read_bytes()
        if all(key in recorded for key in keys) or time.monotonic() > deadline:
            return recorded
        time.sleep(0.2)
