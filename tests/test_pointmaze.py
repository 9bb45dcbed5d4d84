"""D4RL-procedure PointMaze maker: stream splitting, expert quality, reference scores, eval env."""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
from click.testing import CliRunner
from gymnasium.envs.registration import EnvSpec

from latent_skills.cli import main
from latent_skills.data import EpisodeArrays, SkillWindows
from latent_skills.data.makers import (
    MAZES,
    GridPlanner,
    InvalidDatasetIdError,
    MazeExpert,
    collect_pointmaze,
    default_dataset_id,
    eval_env_spec,
    eval_goal_position,
)
from latent_skills.data.makers import pointmaze as pointmaze_module

STEPS = 3000
REF_EPISODES = 5


@pytest.fixture(scope="module")
def datasets_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(path))
        yield path


@pytest.fixture(scope="module")
def umaze(datasets_path):
    ds = collect_pointmaze("umaze", steps=STEPS, seed=0, ref_episodes=REF_EPISODES, progress=False)
    return ds, list(ds.iterate_episodes())


def test_stream_is_split_at_every_success(umaze):
    ds, episodes = umaze
    lengths = [len(ep.rewards) for ep in episodes]
    assert ds.total_steps == STEPS == sum(lengths)
    assert ds.total_episodes == len(episodes)
    assert min(lengths) >= 1
    for k, ep in enumerate(episodes):
        last = k == len(episodes) - 1
        assert not ep.terminations.any()
        assert ep.truncations[-1] and not ep.truncations[:-1].any()
        # Sparse reward == success (both: within 0.45 of the goal); the goal is resampled at each
        # success, so within an episode only its cutting step is rewarded.
        assert not ep.rewards[:-1].any()
        assert ep.infos["success"][-1] == (ep.rewards[-1] == 1.0)
        if not last:
            assert ep.rewards[-1] == 1.0
    # umaze goals are a few cells apart: the noisy expert reaches many of them in 3000 steps
    assert len(episodes) >= 15


def test_episodes_chain_without_reset(umaze):
    _, episodes = umaze
    for prev, ep in zip(episodes[:-1], episodes[1:], strict=True):
        for key in ("observation", "achieved_goal", "desired_goal"):
            np.testing.assert_array_equal(ep.observations[key][0], prev.observations[key][-1])
        # The env samples the new goal after computing the success step's observation, so an
        # episode's first observation still shows the previous goal; from the second on, the new one.
        dg = ep.observations["desired_goal"]
        assert np.all(dg[1:] == dg[1])
        assert not np.array_equal(dg[0], dg[1])


def test_loading_gives_each_episode_the_goal_its_rewards_use(umaze):
    ds, episodes = umaze
    arrays = EpisodeArrays.from_minari(ds)
    # every episode but the first (which starts at a reset) began with the previous goal
    assert arrays.stale_goals_repaired == len(episodes) - 1
    goal = arrays.flattener.slice_of("desired_goal")
    for e, ep in enumerate(episodes):
        rows = arrays.observations[arrays.obs_offsets[e] : arrays.obs_offsets[e] + len(ep.rewards) + 1]
        np.testing.assert_array_equal(
            rows[:, goal],
            np.broadcast_to(ep.observations["desired_goal"][1].astype(np.float32), (len(rows), 2)),
        )
        # the rest of the observation is the data's, untouched
        np.testing.assert_array_equal(rows[0, :4], ep.observations["observation"][0].astype(np.float32))
    # so the env's own reward function, applied to the repaired goals, reproduces every window return
    windows = SkillWindows.from_episodes(arrays, horizon=10, gamma=0.99)
    achieved = arrays.flattener.slice_of("achieved_goal")
    env = ds.recover_environment(eval_env=True).unwrapped
    after = np.minimum(np.arange(1, 11), windows.lengths[:, None])  # reward of step t+k: from row t+k+1
    rows = windows.states.starts[:, None] + after
    first_goals = arrays.observations[windows.states.starts][:, goal]
    rewards = env.compute_reward(arrays.observations[rows][..., achieved], first_goals[:, None], {})
    returns = (rewards * windows.mask) @ (0.99 ** np.arange(10))
    np.testing.assert_allclose(returns, windows.rewards, atol=1e-9)


def test_observation_and_action_layout(umaze):
    ds, episodes = umaze
    assert set(ds.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}
    for ep in episodes:
        t = len(ep.rewards)
        assert ep.observations["observation"].shape == (t + 1, 4)
        assert ep.observations["achieved_goal"].shape == (t + 1, 2)
        assert ep.observations["desired_goal"].shape == (t + 1, 2)
        np.testing.assert_array_equal(ep.observations["achieved_goal"], ep.observations["observation"][:, :2])
        assert ep.actions.shape == (t, 2)
        assert np.all(np.abs(ep.actions) <= 1.0)
    actions = np.concatenate([ep.actions for ep in episodes])
    # σ=0.5 noise on a mostly-saturated PD action: both clipped and interior actions occur
    assert 0.05 < np.mean(np.abs(actions) == 1.0) < 0.95


def test_reference_scores_expert_far_above_random(umaze):
    ds, _ = umaze
    meta = ds.storage.metadata
    ref_min, ref_max = meta["ref_min_score"], meta["ref_max_score"]
    # 300-step eval episodes with reward 1 per step at the goal: the expert arrives in well under
    # 100 steps and stays; random actions rarely get there.
    assert ref_max > 180
    assert ref_min < 80
    assert meta["num_episodes_average_score"] == REF_EPISODES


def test_recovered_envs(umaze):
    ds, _ = umaze
    data_env = ds.recover_environment()
    assert data_env.unwrapped.reset_target and data_env.unwrapped.continuing_task
    eval_env = ds.recover_environment(eval_env=True)
    assert eval_env.unwrapped.reset_target is False
    assert eval_env.unwrapped.continuing_task is True
    assert eval_env.spec.max_episode_steps == 300
    maze = eval_env.unwrapped.maze
    for seed in range(5):
        obs, _ = eval_env.reset(seed=seed)
        assert tuple(maze.cell_xy_to_rowcol(obs["desired_goal"])) == MAZES["umaze"].eval_goal_cell
        assert tuple(maze.cell_xy_to_rowcol(obs["achieved_goal"])) != (1, 1)


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_eval_env_spec_round_trips_through_json(maze):
    spec = EnvSpec.from_json(eval_env_spec(maze).to_json())
    env = gym.make(spec)
    obs, _ = env.reset(seed=1)
    cell = tuple(env.unwrapped.maze.cell_xy_to_rowcol(obs["desired_goal"]))
    assert cell == MAZES[maze].eval_goal_cell
    assert env.unwrapped.reset_target is False
    assert env.spec.max_episode_steps == {"umaze": 300, "medium": 600, "large": 800}[maze]
    env.close()


def test_same_seed_same_dataset(umaze):
    _, episodes = umaze
    again = collect_pointmaze(
        "umaze",
        steps=STEPS,
        seed=0,
        dataset_id="test/pointmaze/umaze-again-v0",
        ref_episodes=1,
        progress=False,
    )
    episodes2 = list(again.iterate_episodes())
    assert len(episodes2) == len(episodes)
    for a, b in zip(episodes, episodes2, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        for key in a.observations:
            np.testing.assert_array_equal(a.observations[key], b.observations[key])
    other = collect_pointmaze(
        "umaze",
        steps=200,
        seed=1,
        dataset_id="test/pointmaze/umaze-s1-v0",
        ref_episodes=1,
        progress=False,
    )
    first = next(other.iterate_episodes())
    assert not np.array_equal(
        first.observations["observation"][0], episodes[0].observations["observation"][0]
    )


def test_existing_dataset_needs_overwrite(datasets_path):
    kwargs = dict(steps=50, ref_episodes=1, progress=False, dataset_id="test/pointmaze/tiny-v0")
    collect_pointmaze("umaze", **kwargs)
    with pytest.raises(FileExistsError, match="--overwrite"):
        collect_pointmaze("umaze", **kwargs)
    ds = collect_pointmaze("umaze", overwrite=True, seed=3, **kwargs)
    assert ds.total_steps == 50
    assert minari.load_dataset("test/pointmaze/tiny-v0").total_steps == 50


def test_bad_arguments(datasets_path):
    with pytest.raises(ValueError, match="valid names: large, medium, umaze"):
        collect_pointmaze("hugemaze", steps=10, progress=False)
    with pytest.raises(ValueError, match="steps"):
        collect_pointmaze("umaze", steps=0, progress=False)
    with pytest.raises(ValueError, match="valid names"):
        default_dataset_id("nope")
    with pytest.raises(ValueError, match="valid kinds: goal-conditioned, single-goal"):
        collect_pointmaze("umaze", steps=10, progress=False, task="multi-goal")
    assert default_dataset_id("large") == "latent-skills/pointmaze/large-v0"
    assert default_dataset_id("large", "goal-conditioned") == "latent-skills/pointmaze/large-v0"
    assert default_dataset_id("large", "single-goal") == "latent-skills/pointmaze/large-single-goal-v0"


def _bfs_distance(maze_map, start, goal):
    seen, queue = {start: 0}, deque([start])
    while queue:
        cell = queue.popleft()
        for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            nxt = (cell[0] + di, cell[1] + dj)
            if maze_map[nxt[0]][nxt[1]] != 1 and nxt not in seen:
                seen[nxt] = seen[cell] + 1
                queue.append(nxt)
    return seen[goal]


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_planner_paths_are_shortest(maze):
    maze_map = MAZES[maze].base_map()
    planner = GridPlanner(maze_map)
    free = [(i, j) for i, row in enumerate(maze_map) for j, c in enumerate(row) if c != 1]
    for goal in free:
        for start in free:
            path = planner.path(start, goal)
            assert len(path) == _bfs_distance(maze_map, start, goal)
            cells = [start, *path]
            moves = zip(cells[:-1], cells[1:], strict=True)
            assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in moves)


# ---------------------------------------------------------------- single-goal (D4RL maze2d) datasets

SINGLE_GOAL_STEPS = 3100  # ten 300-step episodes and a 100-step remainder on umaze


@pytest.fixture(scope="module")
def single_goal(datasets_path):
    ds = collect_pointmaze(
        "umaze", steps=SINGLE_GOAL_STEPS, seed=0, ref_episodes=1, progress=False, task="single-goal"
    )
    return ds, list(ds.iterate_episodes())


def test_default_kind_is_goal_conditioned(umaze):
    ds, _ = umaze
    assert ds.spec.dataset_id == "latent-skills/pointmaze/umaze-v0"
    assert ds.storage.metadata["task"] == "goal-conditioned"
    assert "Goal-conditioned" in ds.storage.metadata["description"]


def test_eval_goal_position_is_the_eval_envs_goal_cell_centre():
    goal = eval_goal_position("umaze")
    env = gym.make(eval_env_spec("umaze"))
    maze = env.unwrapped.maze
    np.testing.assert_array_equal(goal, maze.cell_rowcol_to_xy(np.array(MAZES["umaze"].eval_goal_cell)))
    for seed in range(10):  # the eval env's goals: the centre plus up to ±0.25 (x scaling) noise
        obs, _ = env.reset(seed=seed)
        assert np.all(np.abs(obs["desired_goal"] - goal) <= 0.25 * maze.maze_size_scaling)
    env.close()


def test_single_goal_stores_the_eval_goal_and_its_rewards(single_goal):
    ds, episodes = single_goal
    assert ds.spec.dataset_id == "latent-skills/pointmaze/umaze-single-goal-v0"
    assert ds.storage.metadata["task"] == "single-goal"
    assert "Single-goal" in ds.storage.metadata["description"]
    goal = eval_goal_position("umaze")
    env = ds.recover_environment(eval_env=True).unwrapped
    assert env.reward_type == "sparse"
    for ep in episodes:
        dg, ag = ep.observations["desired_goal"], ep.observations["achieved_goal"]
        np.testing.assert_array_equal(dg, np.broadcast_to(goal, dg.shape))
        # reward of step t: the env's own reward function at the observation after it
        np.testing.assert_array_equal(ep.rewards, env.compute_reward(ag[1:], goal, {}))
        np.testing.assert_array_equal(ep.infos["success"], np.linalg.norm(ag - goal, axis=-1) <= 0.45)
    rewards = np.concatenate([ep.rewards for ep in episodes])
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    # nobody drives there on purpose, but random goals pass by it now and then
    assert 0 < rewards.sum() < 0.5 * len(rewards)


def test_single_goal_episodes_are_cut_by_time(single_goal):
    ds, episodes = single_goal
    length = eval_env_spec("umaze").max_episode_steps
    assert [len(ep.rewards) for ep in episodes] == [length] * 10 + [100]
    assert ds.total_steps == SINGLE_GOAL_STEPS
    for prev, ep in zip(episodes[:-1], episodes[1:], strict=True):  # one stream, no resets
        for key in ("observation", "achieved_goal"):
            np.testing.assert_array_equal(ep.observations[key][0], prev.observations[key][-1])
    for ep in episodes:
        assert not ep.terminations.any()
        assert ep.truncations[-1] and not ep.truncations[:-1].any()
    # some episode reaches the goal and goes on: episodes are not cut at success
    assert any(ep.rewards[:-1].any() for ep in episodes)


def test_single_goal_loading_repairs_nothing(single_goal):
    ds, episodes = single_goal
    arrays = EpisodeArrays.from_minari(ds)
    assert arrays.stale_goals_repaired == 0
    goals = arrays.observations[:, arrays.flattener.slice_of("desired_goal")]
    np.testing.assert_array_equal(
        goals, np.broadcast_to(eval_goal_position("umaze").astype(np.float32), goals.shape)
    )


def test_cli_collects_single_goal(datasets_path):
    result = CliRunner().invoke(
        main,
        [
            "collect",
            "pointmaze",
            "--task",
            "single-goal",
            "--steps",
            "700",
            "--ref-episodes",
            "1",
            "--dataset-id",
            "test/cli/single-goal-v0",
        ],
    )
    assert result.exit_code == 0, result.output
    ds = minari.load_dataset("test/cli/single-goal-v0")
    assert ds.storage.metadata["task"] == "single-goal"
    assert [len(ep.rewards) for ep in ds.iterate_episodes()] == [300, 300, 100]


# ---------------------------------------------------------------- dataset ids and safe writing

BAD_IDS = ["../../x/y-v0", "/abs/y-v0", "noversion", "a//b-v0", "ns/../../y-v0", "a/-v0", "x/y-v0/", "t/y-v0"]


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def no_collection(monkeypatch):
    """Fail if anything of a collection runs."""

    def fail(*args, **kwargs):
        raise AssertionError("collection started for a bad dataset id")

    monkeypatch.setattr(pointmaze_module, "reference_scores", fail)
    monkeypatch.setattr(pointmaze_module, "_stream_episodes", fail)
    monkeypatch.setattr(pointmaze_module, "_data_env", fail)


@pytest.mark.parametrize("dataset_id", BAD_IDS)
def test_bad_dataset_ids_are_rejected_before_any_work(datasets_path, no_collection, dataset_id):
    before = _tree(datasets_path.parent)
    start = time.perf_counter()
    with pytest.raises(InvalidDatasetIdError, match="expected NAME-vN or NAMESPACE/NAME-vN"):
        collect_pointmaze("umaze", steps=100, ref_episodes=1, progress=False, dataset_id=dataset_id)
    assert time.perf_counter() - start < 0.5
    assert _tree(datasets_path.parent) == before  # nothing under the root, nothing beside it
    where = Path(os.path.normpath(os.path.join(datasets_path, dataset_id)))  # where Minari would write
    assert not where.exists()
    if where.parent not in {datasets_path, *datasets_path.parents}:
        assert not where.parent.exists()


@pytest.mark.parametrize("dataset_id", BAD_IDS[:4])
def test_cli_rejects_bad_dataset_ids_cleanly(datasets_path, no_collection, dataset_id):
    before = _tree(datasets_path.parent)
    result = CliRunner().invoke(main, ["collect", "pointmaze", "--dataset-id", dataset_id])
    assert result.exit_code == 2
    assert "Invalid value for '--dataset-id'" in result.output
    assert "NAMESPACE/NAME-vN" in result.output
    assert isinstance(result.exception, SystemExit)  # a click error, no traceback
    assert _tree(datasets_path.parent) == before


def _interrupt_expert_after(monkeypatch, calls, error):
    act = MazeExpert.act
    count = {"n": 0}

    def flaky(self, *args):
        count["n"] += 1
        if count["n"] > calls:
            raise error
        return act(self, *args)

    monkeypatch.setattr(MazeExpert, "act", flaky)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("simulated failure")])
def test_interrupted_collection_leaves_nothing(datasets_path, monkeypatch, error):
    dataset_id = "test/pointmaze/interrupted-v0"
    before = _tree(datasets_path)
    # 300 expert steps for the reference score, then 1500 steps into a 3000-step stream
    _interrupt_expert_after(monkeypatch, 1800, error)
    with pytest.raises(type(error)):
        collect_pointmaze("umaze", steps=3000, ref_episodes=1, progress=False, dataset_id=dataset_id)
    assert not minari.storage.get_dataset_path(dataset_id).exists()
    assert _tree(datasets_path) == before  # no staging folder left either


def test_overwrite_keeps_the_old_dataset_until_the_new_one_is_complete(datasets_path, monkeypatch):
    dataset_id = "test/pointmaze/replaced-v0"
    collect_pointmaze("umaze", steps=400, ref_episodes=1, progress=False, dataset_id=dataset_id)
    before = _tree(datasets_path)
    _interrupt_expert_after(monkeypatch, 600, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        collect_pointmaze(
            "umaze", steps=3000, ref_episodes=1, progress=False, dataset_id=dataset_id, overwrite=True
        )
    assert _tree(datasets_path) == before
    old = minari.load_dataset(dataset_id)
    assert old.total_steps == 400
    assert old.storage.metadata["task"] == "goal-conditioned"
    monkeypatch.undo()
    new = collect_pointmaze(
        "umaze",
        steps=500,
        ref_episodes=1,
        progress=False,
        dataset_id=dataset_id,
        overwrite=True,
        task="single-goal",
    )
    assert (
        new.total_steps == 500 and minari.load_dataset(dataset_id).storage.metadata["task"] == "single-goal"
    )
    assert not [p for p in datasets_path.rglob(".*")]  # no staging or replaced folder left
