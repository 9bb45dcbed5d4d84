"""Evaluation protocols: D4RL's kitchen, antmaze and maze2d scores on scripted episodes whose D4RL
score is known by hand, the default protocol per dataset family, and "dataset" as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest
from agent_helpers import TINY
from conftest import record_env_buffers, write_dataset
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES
from gymnasium_robotics.envs.maze import maps

from latent_skills import BCQH
from latent_skills.agents.spec import AgentSpec
from latent_skills.envs import evaluate_policy_vec
from latent_skills.envs.protocols import (
    D4RLAntMaze,
    D4RLKitchen,
    D4RLMaze2D,
    DatasetProtocol,
    EvaluationProtocol,
    choose_protocol,
)

MIXED = ["microwave", "kettle", "bottom burner", "light switch"]
COMPLETE = ["microwave", "kettle", "light switch", "slide cabinet"]  # also D4RL's kitchen-partial


# ---------------------------------------------------------------------------------------- stand-ins
def kitchen_stand_in(name: str, tasks: list[str]) -> minari.MinariDataset:
    """A few steps under ``D4RL/kitchen/{name}-v2``'s real specs: FrankaKitchen-v1, 450 steps, the
    dataset's four tasks, completed tasks kept and paying, no eval_env_spec."""
    env = gym.make(
        "FrankaKitchen-v1",
        max_episode_steps=450,
        tasks_to_complete=tasks,
        remove_task_when_completed=False,
        terminate_on_tasks_completed=False,
    )
    buffers = record_env_buffers(env, n_episodes=2, steps=6, seed=1)
    dataset = write_dataset(f"D4RL/kitchen/{name}-v2", buffers, env=env)
    env.close()
    return dataset


def antmaze_stand_in() -> minari.MinariDataset:
    """``D4RL/antmaze/large-diverse-v1``'s specs: data from AntMaze_Large_Diverse_GR-v4, evaluation
    on AntMaze_Large-v4 with random start and goal cells, a continuing task, 1000 steps."""
    env = gym.make("AntMaze_Large_Diverse_GR-v4", continuing_task=True, max_episode_steps=1000)
    eval_env = gym.make(
        "AntMaze_Large-v4",
        maze_map=maps.LARGE_MAZE_DIVERSE_GR,
        continuing_task=True,
        reset_target=False,
        max_episode_steps=1000,
    )
    buffers = record_env_buffers(env, n_episodes=2, steps=6, seed=1)
    dataset = write_dataset("D4RL/antmaze/large-diverse-v1", buffers, env=env, eval_env=eval_env)
    env.close()
    eval_env.close()
    return dataset


def protocol_of(dataset: minari.MinariDataset, name: str | None = None) -> EvaluationProtocol:
    spec = AgentSpec.from_dataset(dataset)
    return choose_protocol(
        name,
        spec.eval_env,
        goal_keys=spec.goal_keys,
        reference=spec.reference_scores,
        dataset_id=spec.dataset_id,
    )


class Scripted:
    """An SB3-style policy that does nothing (zero actions) and, at chosen steps of chosen episodes,
    changes the simulated state through ``act(env, step)``: the env is real, only the robot is faked."""

    def __init__(self, envs: list[gym.Env], action_dim: int, act: Callable[[gym.Env, int, int], None]):
        self.envs, self.action_dim, self.act = envs, action_dim, act
        self.step, self.episode = 0, -1

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False):
        if episode_start is not None and bool(np.asarray(episode_start)[0]):
            self.step, self.episode = 0, self.episode + 1
        self.step += 1  # the step about to be taken, counted from 1
        self.act(self.envs[-1].unwrapped, self.episode, self.step)
        return np.zeros((1, self.action_dim), np.float32), None


def run(
    protocol: EvaluationProtocol, act: Callable[[Any, int, int], None], episodes: int = 1
) -> dict[str, Any]:
    """``episodes`` scripted episodes on the protocol's env, scored by the protocol (as evaluate does)."""
    envs: list[gym.Env] = []

    def make() -> gym.Env:
        envs.append(protocol.make_env())
        return envs[-1]

    probe = protocol.make_env()
    action_dim = int(np.prod(probe.action_space.shape))
    probe.close()
    policy = Scripted(envs, action_dim, act)
    result = evaluate_policy_vec(policy, make, n_episodes=episodes, reference=protocol.reference)
    return protocol.score(result)


def complete_tasks(env: Any, tasks: list[str]) -> None:
    """Put the kitchen's objects of ``tasks`` at their goal positions (before the next step)."""
    for task in tasks:
        env.data.qpos[OBS_ELEMENT_INDICES[task]] = OBS_ELEMENT_GOALS[task]


# ---------------------------------------------------------------------------------------- kitchen
@pytest.mark.parametrize(("name", "tasks"), [("mixed", MIXED), ("partial", COMPLETE), ("complete", COMPLETE)])
def test_kitchen_default_is_d4rl_with_the_datasets_tasks(minari_root, name, tasks):
    dataset = kitchen_stand_in(name, tasks)
    assert AgentSpec.from_dataset(dataset).state_dim == 59 + 2 * (12 if name == "mixed" else 11)
    protocol = protocol_of(dataset)
    assert isinstance(protocol, D4RLKitchen) and protocol.name == "d4rl"
    assert sorted(protocol.tasks) == sorted(tasks)
    record = protocol.record
    assert record.id == "FrankaKitchen-v1" and record.max_episode_steps == 280
    assert record.kwargs["remove_task_when_completed"] is True
    assert record.kwargs["terminate_on_tasks_completed"] is True
    assert isinstance(protocol_of(dataset, "dataset"), DatasetProtocol)


def test_kitchen_task_at_step_10_scores_25_once(minari_root):
    dataset = kitchen_stand_in("mixed", MIXED)
    protocol = protocol_of(dataset)

    def microwave_at_10(env: Any, episode: int, step: int) -> None:
        if step >= 10:  # and it stays open: D4RL pays it once
            complete_tasks(env, ["microwave"])

    d4rl = run(protocol, microwave_at_10)
    assert d4rl["protocol"] == "d4rl"
    assert d4rl["returns"] == [1.0] and d4rl["episode_lengths"] == [280]
    assert d4rl["normalized_score"] == pytest.approx(25.0)
    assert d4rl["success_rate"] == 0.0
    # the stored env pays the open microwave on each of steps 10..450: 441 · 100 / 4
    stored = run(protocol_of(dataset, "dataset"), microwave_at_10)
    assert stored["protocol"] == "dataset" and stored["episode_lengths"] == [450]
    assert stored["normalized_score"] == pytest.approx(11_025.0)
    assert stored["success_rate"] is None


def test_kitchen_all_four_tasks_score_100_and_succeed(minari_root):
    protocol = protocol_of(kitchen_stand_in("complete", COMPLETE))

    def all_at_5_in_first(env: Any, episode: int, step: int) -> None:
        if episode == 0 and step == 5:
            complete_tasks(env, COMPLETE)

    result = run(protocol, all_at_5_in_first, episodes=2)
    assert result["returns"] == [4.0, 0.0]
    assert result["episode_lengths"] == [5, 280]  # the episode ends when all four are done
    assert result["normalized_score"] == pytest.approx(50.0)
    assert result["success_rate"] == pytest.approx(0.5)


def test_kitchen_with_other_tasks_is_dataset_and_d4rl_is_refused(minari_root, kitchen_dataset):
    assert isinstance(protocol_of(kitchen_dataset), DatasetProtocol)  # all seven tasks: not D4RL's
    with pytest.raises(
        ValueError, match=r"not one of D4RL's kitchen task sets.*\['auto', 'd4rl', 'dataset'\]"
    ):
        protocol_of(kitchen_dataset, "d4rl")


# ---------------------------------------------------------------------------------------- antmaze
def test_antmaze_default_is_d4rl_fixed_start_and_goal(minari_root):
    protocol = protocol_of(antmaze_stand_in())
    assert isinstance(protocol, D4RLAntMaze) and protocol.maze.name == "large"
    record = protocol.record
    assert record.id == "AntMaze_Large-v4" and record.max_episode_steps == 1000
    assert record.kwargs["continuing_task"] is False and record.kwargs["reset_target"] is False
    markers = {
        (i, j): c
        for i, row in enumerate(record.kwargs["maze_map"])
        for j, c in enumerate(row)
        if c not in (0, 1)
    }
    assert markers == {(1, 1): "r", (7, 9): "g"}  # HARDEST_MAZE_TEST's R and G
    env = protocol.make_env()
    goals, starts = [], []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        goals.append(obs["desired_goal"])
        starts.append(obs["achieved_goal"])
    env.close()
    maze = env.unwrapped.maze
    for goal, start in zip(goals, starts, strict=True):  # the cells' centres, with ≤ 0.25·scale noise
        assert np.abs(goal - maze.cell_rowcol_to_xy(np.array([7, 9]))).max() <= 1.0
        assert np.abs(start - maze.cell_rowcol_to_xy(np.array([1, 1]))).max() <= 1.0


def test_antmaze_score_is_100_times_goals_reached(minari_root):
    protocol = protocol_of(antmaze_stand_in())

    def reach_at_3_in_first(env: Any, episode: int, step: int) -> None:
        if episode == 0 and step == 3:
            env.ant_env.data.qpos[:2] = env.goal  # the ant is put at the goal

    result = run(protocol, reach_at_3_in_first, episodes=2)
    assert result["protocol"] == "d4rl"
    assert result["returns"] == [1.0, 0.0] and result["episode_lengths"] == [3, 1000]
    assert result["success_rate"] == pytest.approx(0.5)
    assert result["normalized_score"] == pytest.approx(50.0)


# ---------------------------------------------------------------------------------------- maze2d
def test_single_goal_pointmaze_is_d4rl_maze2d(minari_root):
    from latent_skills.data.makers.pointmaze import collect_pointmaze

    single = collect_pointmaze("umaze", task="single-goal", steps=300, seed=1, ref_episodes=2, progress=False)
    protocol = protocol_of(single)
    assert isinstance(protocol, D4RLMaze2D) and protocol.maze.name == "umaze"
    assert protocol.record.max_episode_steps in (None, 300)
    assert protocol.reference == AgentSpec.from_dataset(single).reference_scores
    # the stored env as it is: D4RL's maze2d already
    assert protocol.record.to_dict() == AgentSpec.from_dataset(single).eval_env.to_dict()
    # the protocol follows the evaluation env: the maker gives goal-conditioned data the same one
    conditioned = collect_pointmaze("umaze", steps=300, seed=1, ref_episodes=2, progress=False)
    assert protocol_of(conditioned).record.to_dict() == protocol_of(conditioned, "dataset").record.to_dict()


def test_other_datasets_default_to_dataset_and_refuse_d4rl(pointmaze_dataset):
    assert isinstance(protocol_of(pointmaze_dataset), DatasetProtocol)  # random goals: not maze2d
    with pytest.raises(
        ValueError, match="protocol 'd4rl' does not apply to dataset 'test/pointmaze/random-v0'"
    ):
        protocol_of(pointmaze_dataset, "d4rl")
    with pytest.raises(ValueError, match="unknown evaluation protocol 'd4r1'"):
        protocol_of(pointmaze_dataset, "d4r1")


# ---------------------------------------------------------------------------------------- the agent
def test_agent_evaluate_names_protocol_and_dataset_is_todays_result(pointmaze_dataset):
    agent = BCQH.from_dataset(pointmaze_dataset, preset="quick", **TINY)
    default = agent.evaluate(n_episodes=2)
    dataset = agent.evaluate(n_episodes=2, protocol="dataset")
    assert default["protocol"] == dataset["protocol"] == "dataset"
    # today's path: the stored env, the dataset's reference scores
    before = evaluate_policy_vec(
        agent.policy, agent.spec.make_env, n_episodes=2, reference=agent.spec.reference_scores
    )
    for key in ("returns", "episode_lengths", "normalized_score", "success_rate"):
        assert dataset[key] == before[key] == default[key]
    with pytest.raises(ValueError, match="does not apply"):
        agent.evaluate(n_episodes=1, protocol="d4rl")
    with pytest.raises(ValueError, match="builds its own evaluation env"):
        agent.evaluate(agent.spec.make_env(), n_episodes=1, protocol="d4rl")
    assert agent.evaluate(agent.spec.make_env(), n_episodes=1)["protocol"] == "dataset"


def test_agent_evaluate_on_kitchen_follows_d4rl(minari_root):
    agent = BCQH.from_dataset(kitchen_stand_in("mixed", MIXED), preset="quick", **TINY)
    result = agent.evaluate(n_episodes=1)
    assert result["protocol"] == "d4rl" and result["episode_lengths"] == [280]
    assert result["normalized_score"] == pytest.approx(100 * result["mean_return"] / 4)
    assert result["success_rate"] == float(result["mean_return"] == 4)
