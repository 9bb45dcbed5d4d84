"""SkillEnv: one step runs a decoded skill for up to H env steps; gymnasium's checker, vector envs, SAC."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_OBS, TINY, chain_buffers
from conftest import random_pointmaze_dataset, write_dataset
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from latent_skills.agents.ldcq import LDCQ
from latent_skills.envs import SkillEnv, latent_bounds

H = TINY["horizon"]


class CountingEnv(gym.Env):
    """Observation = steps taken; reward on step t is t (1, 2, 3, ...); records every action."""

    observation_space = CHAIN_OBS
    action_space = CHAIN_ACT

    def __init__(self, terminate_at: int | None = None) -> None:
        self.terminate_at = terminate_at
        self.t = 0
        self.actions: list[np.ndarray] = []
        self.observations: list[np.ndarray] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        obs = np.array([self.t], np.float64)
        self.observations.append(obs)
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.actions.append(np.array(action, copy=True))
        self.t += 1
        return self._obs(), float(self.t), self.t == self.terminate_at, False, {"t": self.t}


@pytest.fixture
def chain_agent(minari_root) -> LDCQ:
    dataset = write_dataset(
        "test/chain/right-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
    )
    return LDCQ.from_dataset(dataset, **TINY).learn(stages=["skills"])


@pytest.fixture(scope="module")
def maze_agent(tmp_path_factory) -> LDCQ:
    """Skills trained once on conftest's ``pointmaze_dataset`` (a SkillEnv only reads its agent)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        yield LDCQ.from_dataset(random_pointmaze_dataset(), **TINY).learn(stages=["skills"])


def test_a_step_runs_the_decoded_skill_for_h_steps_and_sums_its_rewards(chain_agent):
    inner = CountingEnv()
    env = SkillEnv(inner, chain_agent)
    assert env.action_space.shape == (TINY["latent_dim"],) and env.observation_space == CHAIN_OBS
    env.reset(seed=0)
    z = env.action_space.sample()
    obs, reward, terminated, truncated, info = env.step(z)
    assert (obs.tolist(), reward, terminated, truncated) == ([H], sum(range(1, H + 1)), False, False)
    assert info["steps"] == H and info["low_level_rewards"] == tuple(float(t) for t in range(1, H + 1))
    assert info["t"] == H  # the last low-level info comes along
    np.testing.assert_array_equal(info["skill"], z)
    # closed loop: each action is the decoder's mean at the state it was taken in
    states = torch.as_tensor(np.stack(inner.observations[:H]), dtype=torch.float32)
    with torch.no_grad():
        expected = chain_agent.vae.act(states, torch.as_tensor(z).expand(H, -1), deterministic=True)
    np.testing.assert_allclose(np.stack(inner.actions), expected.numpy(), rtol=1e-6)


def test_termination_mid_skill_returns_at_once(chain_agent):
    env = SkillEnv(CountingEnv(terminate_at=H + 2), chain_agent)
    env.reset(seed=0)
    z = np.zeros(TINY["latent_dim"], np.float32)
    assert env.step(z)[2:4] == (False, False)
    obs, reward, terminated, truncated, info = env.step(z)
    assert (obs.tolist(), reward, terminated, truncated) == ([H + 2], (H + 1) + (H + 2), True, False)
    assert info["steps"] == 2 and info["low_level_rewards"] == (H + 1.0, H + 2.0)


def test_truncation_mid_skill_returns_at_once(chain_agent):
    env = SkillEnv(gym.wrappers.TimeLimit(CountingEnv(), max_episode_steps=H + 1), chain_agent)
    env.reset(seed=0)
    z = np.zeros(TINY["latent_dim"], np.float32)
    env.step(z)
    _, reward, terminated, truncated, info = env.step(z)
    assert (reward, terminated, truncated, info["steps"]) == (H + 1, False, True, 1)


def test_discounted_rewards_and_clipped_latents(chain_agent):
    inner = CountingEnv()
    env = SkillEnv(inner, chain_agent, discount=0.5, skill_steps=3)
    env.reset(seed=0)
    far = env.action_space.high + 100.0
    _, reward, _, _, info = env.step(far)
    assert reward == pytest.approx(1 + 2 * 0.5 + 3 * 0.25) and info["steps"] == 3
    np.testing.assert_array_equal(info["skill"], env.action_space.high)
    # a latent past the box acts exactly as the box's corner
    clipped_actions = list(inner.actions)
    env.reset(seed=0)
    inner.actions.clear()
    env.step(env.action_space.high)
    np.testing.assert_array_equal(np.stack(inner.actions), np.stack(clipped_actions))


def test_bounds_cover_the_latents_and_follow_the_prior_once_trained(chain_agent):
    low, high = latent_bounds(chain_agent)  # skills only: from the encoder's posteriors
    mean, std = chain_agent.posterior()
    draws = mean + std * np.random.default_rng(0).standard_normal(mean.shape)
    assert ((draws >= low) & (draws <= high)).mean() > 0.97
    chain_agent.learn(stages=["prior"])
    low3, high3 = latent_bounds(chain_agent, n_std=3.0)
    np.testing.assert_allclose((low3 + high3) / 2, chain_agent.latent_norm.mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((high3 - low3) / 6, chain_agent.latent_norm.std.numpy(), rtol=1e-5)
    env = SkillEnv(CountingEnv(), chain_agent, bounds=(-1.0, 2.0))
    assert env.action_space.low.tolist() == [-1.0] * TINY["latent_dim"]
    assert env.action_space.high.tolist() == [2.0] * TINY["latent_dim"]


def test_sampled_skills_repeat_with_the_reset_seed(chain_agent):
    def rollout(seed: int) -> list[np.ndarray]:
        inner = CountingEnv()
        env = SkillEnv(inner, chain_agent, deterministic=False)
        env.reset(seed=seed)
        env.step(np.zeros(TINY["latent_dim"], np.float32))
        return inner.actions

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_bad_use_is_a_clear_error(chain_agent, minari_root):
    with pytest.raises(ValueError, match=r"skill_steps must be in \[1, H"):
        SkillEnv(CountingEnv(), chain_agent, skill_steps=H + 1)
    with pytest.raises(ValueError, match="discount"):
        SkillEnv(CountingEnv(), chain_agent, discount=1.5)
    with pytest.raises(ValueError, match="bounds must be finite"):
        SkillEnv(CountingEnv(), chain_agent, bounds=(1.0, 1.0))
    with pytest.raises(RuntimeError, match="reset"):
        SkillEnv(CountingEnv(), chain_agent).step(np.zeros(TINY["latent_dim"]))
    wide = CountingEnv()
    wide.action_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(ValueError, match="3,"):
        SkillEnv(wide, chain_agent)
    untrained = LDCQ.from_dataset("test/chain/right-v0", **TINY)
    with pytest.raises(ValueError, match=r"learn\(stages=\['skills'\]\)"):
        SkillEnv(CountingEnv(), untrained)


def test_passes_gymnasiums_env_checker(maze_agent, pointmaze_dataset):
    env = SkillEnv(pointmaze_dataset.recover_environment(eval_env=True), maze_agent, deterministic=False)
    check_env(env, skip_render_check=True)


def test_runs_in_gymnasium_and_sb3_vector_envs(maze_agent):
    def make() -> gym.Env:
        return SkillEnv(maze_agent.spec.make_env(max_episode_steps=2 * H + 2), maze_agent)

    envs = gym.vector.SyncVectorEnv([make, make])
    envs.reset(seed=0)
    z = np.stack([envs.single_action_space.sample()] * 2)
    for _ in range(2):
        obs, rewards, terminated, truncated, infos = envs.step(z)
    assert infos["steps"].tolist() == [H, H] and rewards.shape == (2,)
    _, _, _, truncated, infos = envs.step(z)  # the time limit falls two steps into the third skill
    assert truncated.all() and infos["steps"].tolist() == [2, 2]
    assert [len(r) for r in infos["low_level_rewards"]] == [2, 2]
    envs.close()
    vec = DummyVecEnv([make, make])
    vec.reset()
    _, rewards, dones, infos = vec.step(z)
    assert [i["steps"] for i in infos] == [H, H] and not dones.any()


def test_sac_trains_over_skills(maze_agent):
    env = SkillEnv(maze_agent.spec.make_env(max_episode_steps=20 * H), maze_agent)
    model = SAC(
        "MultiInputPolicy",
        env,
        learning_starts=50,
        batch_size=32,
        policy_kwargs={"net_arch": [32, 32]},
        seed=0,
    )
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.learn(total_timesteps=150)  # 100 gradient steps after the 50 random ones
    assert model.num_timesteps == 150
    actions = model.replay_buffer.actions[:150, 0]
    # SB3 stores actions rescaled to [-1, 1] from the SkillEnv's box
    assert np.abs(actions).max() <= 1.0 and actions.std(0).min() > 0.05
    assert any(not torch.equal(a, b) for a, b in zip(before, model.actor.parameters(), strict=True))
    z, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(z)


def test_passes_sb3s_env_checker_over_a_goal_env(maze_agent, pointmaze_dataset):
    """SB3 takes the maze's compute_reward (on env.unwrapped) to mean a goal env: a skill step's
    reward is the inner compute_reward summed over the skill's low-level achieved goals."""
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    inner = pointmaze_dataset.recover_environment(eval_env=True)
    assert hasattr(inner.unwrapped, "compute_reward")
    for normalize in (False, True):
        env = SkillEnv(inner, maze_agent, discount=0.9, normalize_actions=normalize)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sb3_check_env(env, warn=True)
        symmetric = [w for w in caught if "symmetric and normalized Box" in str(w.message)]
        assert bool(symmetric) is not normalize  # the normalised box is what SB3 recommends


def test_compute_reward_sums_the_skills_low_level_rewards_and_relabels(maze_agent):
    env = SkillEnv(maze_agent.spec.make_env(), maze_agent, discount=0.9)
    obs, _ = env.reset(seed=0)
    rows = []
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert len(info["low_level_achieved_goals"]) == info["steps"]
        assert env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == reward
        rows.append((obs["achieved_goal"], obs["desired_goal"], info, reward))
    achieved, desired, infos, rewards = (np.array(column) for column in zip(*rows, strict=True))
    batched = env.compute_reward(achieved, desired, np.array(list(infos), dtype=object))
    assert batched.shape == (3,)
    np.testing.assert_array_equal(batched, rewards)
    # relabelled (as HER does) to the goal each skill ended at: its last low-level step pays in full
    at_goal = env.env.get_wrapper_attr("compute_reward")(achieved, achieved, None)
    assert (at_goal > 0).all()
    gamma_last = np.array([0.9 ** (info["steps"] - 1) for info in infos])
    relabelled = env.compute_reward(achieved, achieved, np.array(list(infos), dtype=object))
    assert (relabelled >= gamma_last * at_goal).all()


def test_normalized_actions_map_linearly_onto_the_latent_box(chain_agent):
    inner = CountingEnv()
    plain = SkillEnv(CountingEnv(), chain_agent)
    env = SkillEnv(inner, chain_agent, normalize_actions=True)
    box = env.latent_space
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (TINY["latent_dim"],), np.float32)
    assert box == plain.action_space  # the box a plain SkillEnv acts in
    np.testing.assert_array_equal(env.to_latent(-np.ones(box.shape)), box.low)
    np.testing.assert_allclose(env.to_latent(np.ones(box.shape)), box.high, rtol=1e-6)
    np.testing.assert_allclose(env.to_latent(np.zeros(box.shape)), (box.low + box.high) / 2, rtol=1e-6)
    np.testing.assert_array_equal(env.to_latent(np.full(box.shape, 7.0)), env.to_latent(np.ones(box.shape)))
    a = np.linspace(-0.5, 0.5, box.shape[0]).astype(np.float32)
    env.reset(seed=0)
    plain.reset(seed=0)
    z = env.to_latent(a)
    _, reward, *_, info = env.step(a)
    _, plain_reward, *_, plain_info = plain.step(z)  # the same skill, given as a latent
    np.testing.assert_array_equal(info["skill"], z)
    assert reward == plain_reward and info["low_level_rewards"] == plain_info["low_level_rewards"]
    check_env(env, skip_render_check=True)
