from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import TINY
from conftest import write_dataset
from minari.data_collector import EpisodeBuffer

from latent_skills.agents.ldgc import LDGC
from latent_skills.config import ConfigError, LDGCConfig


class OpenMap(gym.Env):
    """A point in the open square [-1, 1]²: it moves STEP · action (clipped at the walls); a random
    goal each reset; reward 1 (and ``success``) on every step within GOAL_RADIUS of the goal."""

    STEP, GOAL_RADIUS = 0.08, 0.15
    position_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    observation_space = gym.spaces.Dict(
        {"observation": position_space, "achieved_goal": position_space, "desired_goal": position_space}
    )
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-0.9, 0.9, 2)
        self.goal = self.np_random.uniform(-0.7, 0.7, 2)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self.position = np.clip(self.position + self.STEP * np.clip(action, -1, 1), -1, 1)
        success = bool(np.linalg.norm(self.position - self.goal) < self.GOAL_RADIUS)
        return self._obs(), float(success), False, False, {"success": success}

    def _obs(self) -> dict[str, np.ndarray]:
        p = self.position.copy()
        return {"observation": p, "achieved_goal": p.copy(), "desired_goal": self.goal.copy()}


EPISODE_STEPS = 25


def wandering_buffers(n_episodes: int, seed: int) -> list[EpisodeBuffer]:
    """Goal-blind data: each episode heads one random way, turns once to another, with noisy actions.
    The desired goal in the data is the env's and unrelated to where the point goes."""
    env, rng = OpenMap(), np.random.default_rng(seed)
    buffers = []
    for e in range(n_episodes):
        obs, _ = env.reset(seed=seed + e)
        turn = rng.integers(5, EPISODE_STEPS - 5)
        angles = np.where(np.arange(EPISODE_STEPS) < turn, *rng.uniform(0, 2 * np.pi, 2))
        headings = np.stack([np.cos(angles), np.sin(angles)], 1)
        actions = np.clip(headings + 0.3 * rng.normal(size=headings.shape), -1, 1).astype(np.float32)
        observations, rewards = [obs], []
        for action in actions:
            obs, reward, *_ = env.step(action)
            observations.append(obs)
            rewards.append(reward)
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations={k: np.stack([o[k] for o in observations]) for k in observations[0]},
                actions=actions,
                rewards=np.asarray(rewards),
                terminations=np.zeros(EPISODE_STEPS, bool),
                truncations=np.arange(EPISODE_STEPS) == EPISODE_STEPS - 1,
            )
        )
    return buffers


# TINY's sizes; goals about one skill away suit an open map, where the straight line is the way.
SETTINGS = {
    **{k: v for k, v in TINY.items() if k in LDGCConfig.field_names() and k != "act_candidates"},
    "skills_steps": 300,
    "prior_steps": 400,
    "exec_horizon": 3,
    "hindsight_horizons": 1.0,
}


@pytest.fixture(scope="module")
def open_map(tmp_path_factory):
    """The toy dataset and an LDGC trained on it, shared by the module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        dataset = write_dataset(
            "test/openmap/wander-v0",
            wandering_buffers(150, seed=0),
            observation_space=OpenMap.observation_space,
            action_space=OpenMap.action_space,
        )
        agent = LDGC.from_dataset(dataset, **SETTINGS).learn()
        yield dataset, agent


def evaluate_on_open_map(agent: LDGC, **acting: Any) -> dict[str, Any]:
    before = {name: getattr(agent.config, name) for name in acting}
    agent.set_acting(**acting)
    try:
        env = gym.wrappers.TimeLimit(OpenMap(), max_episode_steps=40)
        return agent.evaluate(env, n_episodes=12, seed=100)
    finally:
        agent.set_acting(**before)


def test_guided_prior_reaches_goals_that_goal_blind_sampling_misses(open_map):
    _, agent = open_map
    assert agent.config.guidance == 2.0 and agent.config.act_candidates == 16  # LDGC's defaults
    guided = evaluate_on_open_map(agent)
    blind = evaluate_on_open_map(agent, guidance=0.0)  # w = 0: the unconditional prior
    assert guided["success_rate"] >= 0.75, guided
    assert guided["success_rate"] >= blind["success_rate"] + 0.5
    # it stays at the goal once there: reward 1 per step within the radius
    assert guided["mean_return"] > 3 * blind["mean_return"] + 5


def test_the_env_goal_steers_the_skill(open_map):
    _, agent = open_map
    start = np.zeros((4, 2))
    goals = np.array([[0.6, 0.0], [-0.6, 0.0], [0.0, 0.6], [0.0, -0.6]])
    obs = {"observation": start, "achieved_goal": start, "desired_goal": goals}
    actions, _ = agent.predict(obs, deterministic=True)
    heading = actions / np.linalg.norm(actions, axis=1, keepdims=True)
    assert ((heading * goals).sum(1) / 0.6 > 0.7).all(), actions  # within ~45° of the goal
    # the condition is the state with the goal standardised like achieved goals
    cond = agent.policy.prior.condition(torch.as_tensor(agent.spec.flattener.flatten(obs)))
    norm = agent.vae.normalizer
    expected = (torch.as_tensor(goals, dtype=torch.float32) - norm.mean[2:4]) / norm.std[2:4]
    torch.testing.assert_close(cond[:, 4:6], expected)
    torch.testing.assert_close(cond[:, :4], norm(torch.as_tensor(agent.spec.flattener.flatten(obs)))[:, :4])


def test_hindsight_goals_are_later_achieved_goals_of_the_same_episode(open_map):
    _, agent = open_map
    w = agent.data.windows
    idx = np.arange(0, len(w), 7)
    goals = agent.hindsight_goals(idx)
    first_row = w.states.starts[idx]
    last_row = w.episodes.obs_offsets[w.episode_index[idx]] + w.episodes.lengths[w.episode_index[idx]]
    achieved = w.episodes.observations[:, 2:4]
    for goal, lo, hi in zip(goals, first_row, last_row, strict=True):
        later = achieved[lo + 1 : hi + 1]  # k ≥ 1, at most the episode's final observation
        assert (later == goal).all(1).any()
    # offsets past the episode's end stop at its final observation
    np.testing.assert_array_equal(w.future_rows(idx, np.full(len(idx), 10_000)), last_row)
    np.testing.assert_array_equal(w.future_rows(idx, np.zeros(len(idx), int)), first_row)


def test_has_no_q_function(open_map):
    # learn, predict, save/load, seeding and resumption of every agent: tests/test_contract.py
    _, agent = open_map
    assert agent.stages_completed == ["skills", "prior"]
    assert set(agent.modules()) == {"vae", "latent_norm", "denoiser"}  # no Q-function


def test_reuses_skills_but_not_a_state_only_prior(open_map):
    from latent_skills import LDCQ

    dataset, _ = open_map
    ldcq_settings = {**TINY, "skills_steps": 5, "prior_steps": 5}
    ldcq = LDCQ.from_dataset(dataset, **ldcq_settings).learn(stages=["skills", "prior"])
    agent = LDGC.from_dataset(dataset, **{**SETTINGS, "prior_steps": 5})
    with pytest.raises(ValueError, match="conditions on state"):
        agent.reuse_stages(ldcq, ["skills", "prior"])
    agent.reuse_stages(ldcq, ["skills"]).learn(stages="prior")
    assert agent.stages_completed == ["skills", "prior"]
    with pytest.raises(ValueError, match="conditions on state\\+goal"):  # nor the other way round
        LDCQ.from_dataset(dataset, **ldcq_settings).reuse_stages(agent, ["prior"])
    assert torch.equal(agent.vae.state_dict()["normalizer.mean"], ldcq.vae.state_dict()["normalizer.mean"])


def goal_dataset(dataset_id: str, achieved: int, desired: int) -> Any:
    def box(size: int) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, (size,), np.float64)

    space = gym.spaces.Dict(
        {"observation": box(2), "achieved_goal": box(achieved), "desired_goal": box(desired)}
    )
    rng = np.random.default_rng(0)
    buffer = EpisodeBuffer(
        id=0,
        observations={k: rng.uniform(-1, 1, (9, *v.shape)) for k, v in space.spaces.items()},
        actions=rng.uniform(-1, 1, (8, 2)).astype(np.float32),
        rewards=np.zeros(8),
        terminations=np.zeros(8, bool),
        truncations=np.arange(8) == 7,
    )
    return write_dataset(dataset_id, [buffer], observation_space=space, action_space=OpenMap.action_space)


def test_clear_errors_without_matching_goals(box_dataset, minari_root):
    with pytest.raises(ValueError, match="'achieved_goal' and 'desired_goal' of the same size.*LDCQ"):
        LDGC.from_dataset(box_dataset)
    with pytest.raises(ValueError, match="achieved_goal.*desired_goal.*same size"):
        LDGC.from_dataset(goal_dataset("test/goals/mismatch-v0", 2, 3))
    with pytest.raises(ConfigError, match="hindsight_horizons"):
        LDGC.from_dataset(goal_dataset("test/goals/ok-v0", 2, 2), hindsight_horizons=0.0)


def test_goal_only_dropout_contrasts_the_goal_with_the_state_alone(open_map):
    dataset, trained = open_map
    agent = LDGC.from_dataset(
        dataset, **{**SETTINGS, "skills_steps": 5, "prior_steps": 5, "goal_dropout": "goal"}
    )
    agent.reuse_stages(trained, ["skills"]).learn(stages=["prior"])
    S = agent.spec.state_dim
    assert agent.denoiser.cond_dim == S + 1  # the condition carries a goal-present flag
    obs = {
        "observation": np.zeros((2, 2)),
        "achieved_goal": np.zeros((2, 2)),
        "desired_goal": np.ones((2, 2)),
    }
    states = torch.as_tensor(agent.spec.flattener.flatten(obs))
    prior = agent.policy.prior
    cond, null = prior.condition(states), prior.null_condition(states)
    assert (cond[:, -1] == 1).all() and (null[:, -1] == 0).all() and (null[:, 4:6] == 0).all()
    torch.testing.assert_close(null[:, :4], cond[:, :4])  # the state stays: only the goal is dropped
    actions, _ = agent.predict(obs, deterministic=True)
    assert actions.shape == (2, 2) and np.isfinite(actions).all()
    with pytest.raises(ValueError, match="differ in \\['goal_dropout'\\]"):
        LDGC.from_dataset(dataset, **SETTINGS).reuse_stages(agent, ["skills", "prior"])
