"""D4RL-procedure PointMaze maker: stream splitting, expert quality, reference scores, eval env."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import minari
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec

from latent_skills.data import EpisodeArrays, SkillWindows
from latent_skills.data.makers import (
    MAZES,
    GridPlanner,
    collect_pointmaze,
    default_dataset_id,
    eval_env_spec,
)

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
    assert default_dataset_id("large") == "latent-skills/pointmaze/large-v0"


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
