from __future__ import annotations

import minari
import numpy as np
import pytest

from latent_skills.data import DatasetNotFoundError, EpisodeArrays, dataset_summary, load_dataset
from latent_skills.data.loading import reference_scores


def test_load_by_id_and_by_object(box_dataset):
    by_id = load_dataset("test/box/mixed-v0")
    assert by_id.total_steps == box_dataset.total_steps
    assert load_dataset(box_dataset) is box_dataset


def test_unknown_id_names_every_fix(minari_root):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("nobody/pointmaze/none-v0")
    message = str(err.value)
    for fix in (
        "minari download nobody/pointmaze/none-v0",
        "--download",
        "download=True",
        "MINARI_DATASETS_PATH",
    ):
        assert fix in message
    assert "latent-skills collect pointmaze" in message  # a maze id: the local maker is a fix
    assert str(minari_root) in message


def test_a_kitchen_id_is_not_sent_to_the_pointmaze_maker(minari_root):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("D4RL/kitchen/mixed-v2")
    assert "minari download D4RL/kitchen/mixed-v2" in str(err.value)
    assert "collect pointmaze" not in str(err.value)


def test_failed_download_gets_the_same_guidance(minari_root, monkeypatch):
    def offline(dataset_id, force_download=False):
        raise ConnectionError("no network")

    monkeypatch.setattr(minari, "download_dataset", offline)
    with pytest.raises(DatasetNotFoundError, match="could not be downloaded .*no network") as err:
        load_dataset("D4RL/kitchen/mixed-v2", download=True)
    # download was tried: the fixes are the id and the network, not "pass download=True" again
    assert "download=True" not in str(err.value) and "minari list remote" in str(err.value)
    assert "collect pointmaze" not in str(err.value)


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="Minari id or MinariDataset"):
        load_dataset(42)


def test_episode_arrays_concatenate_in_order(box_dataset):
    ep = EpisodeArrays.from_minari(box_dataset)
    assert ep.n_episodes == box_dataset.total_episodes and ep.n_steps == box_dataset.total_steps
    assert ep.observations.shape == (ep.n_steps + ep.n_episodes, 3)
    for e, episode in enumerate(box_dataset.iterate_episodes()):
        obs = ep.observations[ep.obs_offsets[e] : ep.obs_offsets[e] + ep.lengths[e] + 1]
        np.testing.assert_array_equal(obs, episode.observations.astype(np.float32))
        steps = slice(ep.step_offsets[e], ep.step_offsets[e] + ep.lengths[e])
        np.testing.assert_array_equal(ep.rewards[steps], episode.rewards)
        np.testing.assert_array_equal(ep.truncations[steps], episode.truncations)


def test_non_finite_data_is_refused_with_its_place(minari_root):
    from conftest import BOX_ACT, BOX_OBS, random_box_buffers, write_dataset

    buffers = random_box_buffers(np.random.default_rng(0), [4, 6], [False, True])
    buffers[1].rewards[2] = np.nan
    dataset = write_dataset("test/box/nan-v0", buffers, observation_space=BOX_OBS, action_space=BOX_ACT)
    with pytest.raises(ValueError, match="Non-finite rewards in episode 1 at step 2"):
        EpisodeArrays.from_minari(dataset)


def test_summary_without_reference_scores(box_dataset):
    summary = dataset_summary(box_dataset)
    assert summary["episodes"] == 7 and summary["steps"] == box_dataset.total_steps
    assert summary["flat_state_dim"] == 3
    assert reference_scores(box_dataset) is None and summary["ref_min_score"] is None


def test_stale_first_goals_are_repaired_and_moving_goals_left_alone():
    from gymnasium import spaces

    from latent_skills.data import ObservationFlattener
    from latent_skills.data.episodes import repair_stale_first_goals

    box = spaces.Box(-10, 10, (1,))
    flattener = ObservationFlattener.from_space(spaces.Dict({"observation": box, "desired_goal": box}))
    goal = flattener.slice_of("desired_goal").start
    # episode 0: stale first goal; 1: constant goal; 2: goal moves later on; 3: one step, stale
    goals = [[5, 1, 1, 1], [2, 2, 2], [7, 3, 4, 4], [9, 6]]
    lengths = np.array([len(g) - 1 for g in goals])
    observations = np.zeros((sum(len(g) for g in goals), 2), np.float32)
    observations[:, goal] = np.concatenate(goals)
    observations[:, 1 - goal] = np.arange(len(observations))
    offsets = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    repaired = observations.copy()
    assert repair_stale_first_goals(repaired, offsets, lengths, flattener) == 2
    expected = observations.copy()
    expected[offsets[0], goal], expected[offsets[3], goal] = 1, 6
    np.testing.assert_array_equal(repaired, expected)
    # data without a desired goal is never touched
    plain = ObservationFlattener.from_space(spaces.Box(-1, 1, (2,)))
    assert repair_stale_first_goals(observations.copy(), offsets, lengths, plain) == 0


@pytest.mark.parametrize(
    "low, high", [(1.0, 1.0), (float("nan"), 2.0), (0.0, float("inf")), (3.0, 1.0), ("a", 1)]
)
def test_reference_scores_that_cannot_normalise_are_dropped_with_a_warning(low, high):
    """Equal ones divided by zero after a whole evaluation; NaN ones wrote a bare NaN into eval.json
    (issue 25). They are dropped where they are read: no normalized_score, and a warning."""
    from latent_skills.data.loading import usable_reference

    with pytest.warns(UserWarning, match="cannot normalise a score"):
        assert usable_reference(low, high, "Minari dataset 'x'") is None
    assert usable_reference(0, 10, "x") == (0.0, 10.0)
