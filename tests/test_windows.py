from __future__ import annotations

import numpy as np
import pytest
from window_reference import naive_windows

from latent_skills.data import EpisodeArrays, SkillWindows, StateStats


def assert_matches_naive(dataset, horizon: int, gamma: float) -> SkillWindows:
    windows = SkillWindows.from_minari(dataset, horizon=horizon, gamma=gamma)
    expected = naive_windows(dataset, horizon, gamma)
    assert len(windows) == dataset.total_steps == len(expected["rewards"])
    np.testing.assert_array_equal(np.asarray(windows.states), expected["states"])
    np.testing.assert_array_equal(np.asarray(windows.actions), expected["actions"])
    np.testing.assert_array_equal(np.asarray(windows.next_states), expected["next_states"])
    np.testing.assert_array_equal(windows.dones, expected["dones"])
    np.testing.assert_array_equal(windows.lengths, expected["lengths"])
    np.testing.assert_array_equal(windows.rewards, expected["rewards"])
    return windows


@pytest.mark.parametrize("horizon", [1, 4, 5, 8])
def test_box_windows_match_naive(box_dataset, horizon):
    assert_matches_naive(box_dataset, horizon, gamma=0.9)


def test_pointmaze_and_kitchen_windows_match_naive(pointmaze_dataset, kitchen_dataset):
    assert_matches_naive(pointmaze_dataset, horizon=10, gamma=0.99)
    windows = assert_matches_naive(kitchen_dataset, horizon=5, gamma=0.95)
    assert windows.states.shape == (kitchen_dataset.total_steps, 5, 59 + 17 + 17)


def test_window_shapes_and_invariants(box_dataset):
    horizon, gamma = 5, 0.9
    w = SkillWindows.from_minari(box_dataset, horizon=horizon, gamma=gamma)
    n = box_dataset.total_steps
    assert w.states.shape == (n, horizon, 3)
    assert w.actions.shape == (n, horizon, 2)
    assert w.next_states.shape == (n, 3)
    assert w.rewards.shape == w.dones.shape == w.lengths.shape == (n,)
    assert w.mask.shape == (n, horizon)
    # full windows where the episode allows, short ones only in an episode's last H-1 steps
    remaining = w.episodes.lengths[w.episode_index] - w.step_in_episode
    np.testing.assert_array_equal(w.lengths, np.minimum(horizon, remaining))
    np.testing.assert_allclose(w.discounts, gamma**w.lengths)
    # a window's states all lie inside its own episode's observations
    rows = w.states.rows(np.arange(n))
    start = w.episodes.obs_offsets[w.episode_index]
    assert (rows >= start[:, None]).all()
    assert (rows <= (start + w.episodes.lengths[w.episode_index])[:, None]).all()
    # padding: zero actions, states repeat s_{t+length}
    actions, states, nxt = np.asarray(w.actions), np.asarray(w.states), np.asarray(w.next_states)
    assert (actions[~w.mask] == 0).all()
    short = np.flatnonzero(w.lengths < horizon)
    assert len(short) > 0
    for i in short:
        np.testing.assert_array_equal(
            states[i, w.lengths[i] :], np.broadcast_to(nxt[i], states[i, w.lengths[i] :].shape)
        )


def test_next_state_is_s_t_plus_h_and_no_reward_is_lost(box_dataset):
    horizon, gamma = 4, 1.0
    w = SkillWindows.from_minari(box_dataset, horizon=horizon, gamma=gamma)
    ep = w.episodes
    full = np.flatnonzero(w.lengths == horizon)
    s0 = np.asarray(w.first_states)[full]
    # s_{t+H} is the state that the window starting H steps later starts from, in the same episode
    obs_row = ep.obs_offsets[w.episode_index[full]] + w.step_in_episode[full]
    np.testing.assert_array_equal(np.asarray(w.next_states)[full], ep.observations[obs_row + horizon])
    np.testing.assert_array_equal(s0, ep.observations[obs_row])
    # with gamma = 1, stride 1: every reward r_t is counted in min(H, t + 1) windows
    counts = np.minimum(horizon, w.step_in_episode + 1)
    assert w.rewards.sum() == pytest.approx(float((ep.rewards * counts).sum()))
    # episodes shorter than H still give windows, which cover all their reward
    first_of_short = np.flatnonzero(
        (w.step_in_episode == 0) & (w.episodes.lengths[w.episode_index] < horizon)
    )
    assert len(first_of_short) > 0
    for i in first_of_short:
        e = w.episode_index[i]
        seg = slice(ep.step_offsets[e], ep.step_offsets[e] + ep.lengths[e])
        assert w.rewards[i] == pytest.approx(ep.rewards[seg].sum())


def test_termination_is_done_truncation_is_not(box_dataset):
    w = SkillWindows.from_minari(box_dataset, horizon=3, gamma=0.9)
    ep = w.episodes
    reaches_end = w.step_in_episode + w.lengths == ep.lengths[w.episode_index]
    terminated_episode = ep.terminations[ep.step_offsets + ep.lengths - 1][w.episode_index]
    truncated_episode = ep.truncations[ep.step_offsets + ep.lengths - 1][w.episode_index]
    assert terminated_episode.any() and truncated_episode.any()
    np.testing.assert_array_equal(w.dones, reaches_end & terminated_episode)
    assert not w.dones[truncated_episode].any()


def test_windows_index_into_one_copy(box_dataset):
    w = SkillWindows.from_minari(box_dataset, horizon=5, gamma=0.9)
    assert w.states.data is w.episodes.observations
    assert w.next_states.data is w.episodes.observations
    assert w.actions.data is w.episodes.actions
    assert w.states.dtype == np.float32
    batch = w.states[np.array([0, 3, 7])]
    assert batch.shape == (3, 5, 3)


def test_state_stats_match_numpy(pointmaze_dataset):
    ep = EpisodeArrays.from_minari(pointmaze_dataset)
    stats = StateStats.of(ep.observations, chunk=7)
    np.testing.assert_allclose(stats.mean, ep.observations.astype(np.float64).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.std, ep.observations.astype(np.float64).std(0), rtol=1e-4, atol=1e-6)


def test_bad_arguments(box_dataset):
    with pytest.raises(ValueError, match="horizon"):
        SkillWindows.from_minari(box_dataset, horizon=0, gamma=0.9)
    with pytest.raises(ValueError, match="gamma"):
        SkillWindows.from_minari(box_dataset, horizon=3, gamma=1.5)


def test_windows_match_naive_on_a_d4rl_procedure_dataset(minari_root):
    from latent_skills.data.makers import collect_pointmaze

    dataset = collect_pointmaze("umaze", steps=2500, seed=4, ref_episodes=2, progress=False)
    windows = assert_matches_naive(dataset, horizon=30, gamma=0.995)
    # every success (reward 1, the last step of a cut episode) is inside some window's return
    assert windows.rewards.sum() > 0
    assert (windows.lengths < 30).sum() >= dataset.total_episodes - 1


def test_success_cuts_and_the_q_target_each_choice_gives(box_dataset):
    """Episodes (lengths 1, 3, 5, 6, 12, 9, 2; terminated T F T F T F F) with a reward of 1 only on
    the last step of the 3-step and 6-step truncated episodes (success cuts), of the 12-step
    terminated one (a termination, not a cut) and nowhere in the 9-step truncated one."""
    from dataclasses import replace

    from latent_skills.agents.stages import q_target_terms

    ep = EpisodeArrays.from_minari(box_dataset)
    rewards = np.zeros_like(ep.rewards)
    for e in (1, 3, 4):
        rewards[ep.step_offsets[e] + ep.lengths[e] - 1] = 1.0
    w = SkillWindows.from_episodes(replace(ep, rewards=rewards), horizon=3, gamma=0.9)
    cut = w.ends_at_success_cut()
    in_episode = {e: np.flatnonzero(w.episode_index == e) for e in range(7)}
    assert cut.sum() == 6
    assert cut[in_episode[1]].all()  # every window of the 3-step episode reaches its end
    np.testing.assert_array_equal(np.flatnonzero(cut[in_episode[3]]), [3, 4, 5])
    assert not cut[in_episode[4]].any() and not cut[in_episode[5]].any()

    window = in_episode[3][3]  # t = 3 of the 6-step episode: 3 steps, the last one rewarded
    r_boot, c_boot = q_target_terms(w, "bootstrap")
    r_term, c_term = q_target_terms(w, "terminal")
    r_hold, c_hold = q_target_terms(w, "hold")
    assert r_boot[window] == r_term[window] == pytest.approx(0.81)
    assert c_boot[window] == pytest.approx(0.729) and c_term[window] == c_hold[window] == 0.0
    assert r_hold[window] == pytest.approx(0.81 + 0.729 * 1.0 / (1 - 0.9))
    unchanged = ~cut
    for r, c in ((r_term, c_term), (r_hold, c_hold)):
        np.testing.assert_array_equal(r[unchanged], r_boot[unchanged])
        np.testing.assert_array_equal(c[unchanged], c_boot[unchanged])


def test_step_observation_rows_drop_each_episodes_final_observation(box_dataset):
    ep = EpisodeArrays.from_minari(box_dataset)
    rows = ep.step_observation_rows()
    expected = np.concatenate([np.arange(o, o + n) for o, n in zip(ep.obs_offsets, ep.lengths, strict=True)])
    np.testing.assert_array_equal(rows, expected)
    assert len(rows) == ep.n_steps == len(ep.actions)
