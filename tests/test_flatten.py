from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from latent_skills.data import EpisodeArrays, ObservationFlattener


def test_box_is_flattened_as_is():
    flat = ObservationFlattener.from_space(gym.spaces.Box(-1, 1, (2, 3)))
    obs = np.arange(6, dtype=np.float64).reshape(2, 3)
    np.testing.assert_array_equal(flat.flatten(obs), np.arange(6, dtype=np.float32))
    assert flat.flatten(np.stack([obs, obs + 1])).shape == (2, 6)


def test_pointmaze_rule_on_live_observations():
    env = gym.make("PointMaze_UMaze-v3")
    flat = ObservationFlattener.from_space(env.observation_space)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    expected = np.concatenate([obs["observation"], obs["achieved_goal"], obs["desired_goal"]])
    np.testing.assert_array_equal(flat.flatten(obs), expected.astype(np.float32))
    assert flat.slice_of("achieved_goal") == slice(4, 6)
    assert flat.slice_of("desired_goal") == slice(6, 8)


def test_kitchen_rule_on_live_observations_matches_dataset(kitchen_dataset, kitchen_buffers):
    """The live env's first observation flattens to exactly the dataset's first state."""
    env = gym.make("FrankaKitchen-v1")
    flat = ObservationFlattener.from_space(env.observation_space)
    obs, _ = env.reset(seed=1)  # the fixture recorded episode 0 from reset(seed=1)
    goal = obs["desired_goal"]
    assert list(goal) != sorted(goal), (
        "the env's own key order differs from sorted; the rule must not depend on it"
    )
    achieved = obs["achieved_goal"]
    expected = np.concatenate(
        [obs["observation"]]
        + [np.ravel(achieved[k]) for k in sorted(achieved)]
        + [np.ravel(goal[k]) for k in sorted(goal)]
    )
    np.testing.assert_array_equal(flat.flatten(obs), expected.astype(np.float32))
    episodes = EpisodeArrays.from_minari(kitchen_dataset)
    assert episodes.flattener == flat
    np.testing.assert_array_equal(episodes.observations[0], flat.flatten(obs))
    assert flat.slice_of("desired_goal", "kettle").stop - flat.slice_of("desired_goal", "kettle").start == 7


def test_vector_env_batch_equals_each_env():
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("PointMaze_UMaze-v3") for _ in range(3)])
    flat = ObservationFlattener.from_space(envs.single_observation_space)
    obs, _ = envs.reset(seed=0)
    batch = flat.flatten(obs)
    assert batch.shape == (3, 8)
    for i in range(3):
        single = {k: v[i] for k, v in obs.items()}
        np.testing.assert_array_equal(batch[i], flat.flatten(single))


def test_rule_round_trips_through_json():
    space = gym.make("FrankaKitchen-v1").observation_space
    flat = ObservationFlattener.from_space(space)
    again = ObservationFlattener.from_dict(json.loads(json.dumps(flat.to_dict())))
    assert again == flat and again.dim == 59 + 17 + 17


def test_dict_without_observation_key_uses_sorted_keys():
    space = gym.spaces.Dict({"b": gym.spaces.Box(0, 1, (2,)), "a": gym.spaces.Box(0, 1, (1,))})
    flat = ObservationFlattener.from_space(space)
    np.testing.assert_array_equal(flat.flatten({"b": [1, 2], "a": [0]}), [0, 1, 2])


def test_wrong_observations_get_clear_errors():
    flat = ObservationFlattener.from_space(gym.make("PointMaze_UMaze-v3").observation_space)
    good = {"observation": np.zeros(4), "achieved_goal": np.zeros(2), "desired_goal": np.zeros(2)}
    with pytest.raises(ValueError, match="no key 'desired_goal'"):
        flat.flatten({"observation": np.zeros(4), "achieved_goal": np.zeros(2)})
    with pytest.raises(ValueError, match=r"shape \(5,\); expected \(4,\)"):
        flat.flatten({**good, "observation": np.zeros(5)})
    with pytest.raises(ValueError, match="expected"):
        flat.flatten({**good, "observation": np.zeros((2, 4)), "desired_goal": np.zeros((3, 2))})
    with pytest.raises(TypeError, match="FlattenObservation"):
        ObservationFlattener.from_space(gym.spaces.Discrete(3))


def test_unflatten_inverts_flatten_for_batches(kitchen_dataset):
    pointmaze = ObservationFlattener.from_space(gym.make("PointMaze_UMaze-v3").observation_space)
    kitchen = ObservationFlattener.from_space(kitchen_dataset.observation_space)
    box = ObservationFlattener.from_space(gym.spaces.Box(-1, 1, (3,)))
    rng = np.random.default_rng(0)
    for flattener in (pointmaze, kitchen, box):
        states = rng.normal(size=(5, flattener.dim)).astype(np.float32)
        observations = flattener.unflatten(states)
        np.testing.assert_array_equal(flattener.flatten(observations), states)
    assert set(pointmaze.unflatten(np.zeros((2, 8), np.float32))) == {
        "observation",
        "achieved_goal",
        "desired_goal",
    }
