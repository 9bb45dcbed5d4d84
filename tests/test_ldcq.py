from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_LENGTH, CHAIN_OBS, TINY, LossRecorder, chain_buffers
from conftest import write_dataset
from stable_baselines3.common.evaluation import evaluate_policy

from latent_skills import LDCQ, ConfigError, LatentSkillAgent, TrainingDivergedError, load_agent
from latent_skills.data.makers import collect_pointmaze
from latent_skills.hub import CheckpointError


@pytest.fixture
def umaze(minari_root):
    return collect_pointmaze("umaze", steps=1200, seed=1, ref_episodes=2, progress=False)


@pytest.fixture
def trained(umaze):
    return LDCQ.from_dataset(umaze, preset="paper", **TINY).learn()


def test_every_stage_loss_falls(umaze):
    agent = LDCQ.from_dataset(umaze, **{**TINY, "skills_steps": 150, "prior_steps": 150, "q_steps": 150})
    recorder = LossRecorder()
    agent.learn(callback=recorder)
    assert agent.stages_completed == ["skills", "prior", "q"]
    assert agent.num_timesteps == 450
    for stage in ("skills", "prior"):
        loss = recorder.series(stage)
        assert len(loss) == 150
        assert loss[-30:].mean() < 0.8 * loss[:30].mean(), stage
    # Q targets move as the critic learns, so judge the TD error on the same batch distribution:
    # it must end well below where it started relative to the scale of the targets.
    q_loss = recorder.series("q")
    assert np.isfinite(q_loss).all() and q_loss[-30:].mean() < q_loss[:30].mean()


def test_q_learning_on_a_chain_reaches_the_true_values(minari_root):
    dataset = write_dataset(
        "test/chain/right-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
    )
    gamma = 0.9
    agent = LDCQ.from_dataset(
        dataset,
        **{**TINY, "horizon": 2, "gamma": gamma, "q_steps": 1500, "q_polyak": 0.9, "q_batch_size": 64},
    )
    agent.learn()
    states = torch.arange(CHAIN_LENGTH, dtype=torch.float32)[:, None]
    latents = torch.as_tensor(agent.sample_latents(states.numpy(), 4, seed=0))  # (T, 4, D)
    with torch.no_grad():
        q = agent.critic.min_q(states[:, None].expand(-1, 4, -1), latents).numpy()
    truth = gamma ** (CHAIN_LENGTH - 1 - np.arange(CHAIN_LENGTH))
    np.testing.assert_allclose(q.mean(1), truth, atol=0.06)


def test_predict_follows_sb3_contract(trained, umaze):
    env = umaze.recover_environment(eval_env=True)
    obs, _ = env.reset(seed=0)
    action, state = trained.predict(obs)
    assert action.shape == (2,) and env.action_space.contains(action.astype(np.float32))
    z, since = state
    assert z.shape == (1, TINY["latent_dim"]) and since.tolist() == [1]
    # the skill is kept until exec_horizon steps have run, then replaced
    for _ in range(TINY["horizon"] - 1):
        _, state = trained.predict(obs, state)
        np.testing.assert_array_equal(state[0], z)
    _, state = trained.predict(obs, state)
    assert state[1].tolist() == [1] and not np.array_equal(state[0], z)
    # episode_start forces a new choice at once
    _, fresh = trained.predict(obs, (z, np.array([2])), episode_start=np.array([True]))
    assert fresh[1].tolist() == [1]
    # batched dict observations
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    actions, (zs, _) = trained.predict(batch, deterministic=True)
    assert actions.shape == (2, 2) and zs.shape == (2, TINY["latent_dim"])
    # two identical rows of one batch: equal up to the BLAS kernel's rounding of each row
    np.testing.assert_allclose(actions[0], actions[1], rtol=0, atol=1e-5)


def test_sb3_evaluate_policy_runs(trained, umaze):
    env = umaze.recover_environment(eval_env=True)
    mean, std = evaluate_policy(trained, env, n_eval_episodes=2, deterministic=True, warn=False)
    assert np.isfinite(mean) and std >= 0


def test_evaluate_reports_scores_over_vector_envs(trained):
    result = trained.evaluate(n_episodes=3, n_envs=2, seed=0)
    assert len(result["returns"]) == 3 and result["episode_lengths"] == [300, 300, 300]
    low, high = trained.spec.reference_scores
    expected = 100 * (result["mean_return"] - low) / (high - low)
    assert result["normalized_score"] == pytest.approx(expected)
    assert result["success_rate"] is not None and 0 <= result["success_rate"] <= 1


def test_sample_latents_shapes_and_seeding(trained, umaze):
    obs, _ = umaze.recover_environment(eval_env=True).reset(seed=0)
    z = trained.sample_latents(obs, 5, seed=3)
    assert z.shape == (5, TINY["latent_dim"])
    np.testing.assert_array_equal(z, trained.sample_latents(obs, 5, seed=3))
    assert trained.sample_latents(obs, 5, solver="ddim", steps=3, seed=3).shape == (5, TINY["latent_dim"])


def test_save_load_round_trip_acts_identically(trained, umaze, tmp_path):
    folder = trained.save(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = LDCQ.load(folder)
    env = umaze.recover_environment(eval_env=True)
    obs, _ = env.reset(seed=5)
    for agent in (loaded, load_agent(str(folder)), LatentSkillAgent.load(folder)):
        assert type(agent) is LDCQ
        a1, _ = trained.predict(obs, deterministic=True)
        a2, _ = agent.predict(obs, deterministic=True)
        np.testing.assert_array_equal(a1, a2)
    for name, tensor in trained.critic.state_dict().items():
        assert torch.equal(tensor, loaded.critic.state_dict()[name])
    assert loaded.stages_completed == ["skills", "prior", "q"]


def test_same_seed_same_weights(umaze):
    settings = {**TINY, "skills_steps": 10, "prior_steps": 10, "q_steps": 10}
    a = LDCQ.from_dataset(umaze, seed=7, **settings).learn()
    b = LDCQ.from_dataset(umaze, seed=7, **settings).learn()
    c = LDCQ.from_dataset(umaze, seed=8, **settings).learn()
    for name, module in a.modules().items():
        for key, tensor in module.state_dict().items():
            assert torch.equal(tensor, b.modules()[name].state_dict()[key]), f"{name}.{key}"
    assert any(
        not torch.equal(t, c.modules()["vae"].state_dict()[k])
        for k, t in a.modules()["vae"].state_dict().items()
    )


def test_total_timesteps_split_and_stage_resume(umaze):
    agent = LDCQ.from_dataset(umaze, **TINY)
    agent.learn(total_timesteps=60, stages=["skills", "prior"])
    assert agent.num_timesteps == 60 and agent.stages_completed == ["skills", "prior"]
    agent.learn(stages="q")
    assert agent.stages_completed == ["skills", "prior", "q"]
    with pytest.raises(ValueError, match="unknown"):
        agent.learn(stages=["dance"])


def test_ctrl_c_leaves_a_checkpoint_that_resumes(umaze, tmp_path):
    agent = LDCQ.from_dataset(umaze, **TINY)

    def interrupt(locals_, globals_):
        if locals_["name"] == "prior" and locals_["step"] == 5:
            raise KeyboardInterrupt
        return True

    with pytest.raises(KeyboardInterrupt):
        agent.learn(callback=interrupt, save_path=tmp_path / "run")
    resumed = LDCQ.load(tmp_path / "run")
    assert resumed.stages_completed == ["skills"]
    resumed.learn(stages=["prior", "q"])
    assert resumed.stages_completed == ["skills", "prior", "q"]


def test_non_finite_loss_stops_and_keeps_last_good_weights(umaze):
    agent = LDCQ.from_dataset(umaze, **TINY)
    agent.learn(stages=["skills"])
    before = {k: v.clone() for k, v in agent.denoiser.state_dict().items()}
    agent.posterior()  # encoded while the data is clean
    agent.data.windows.episodes.observations[:] = np.nan  # then every prior condition is NaN
    with pytest.raises(TrainingDivergedError, match="Stage 'prior'.* at step 0"):
        agent.learn(stages=["prior"])
    for key, value in agent.denoiser.state_dict().items():
        assert torch.equal(value, before[key])


def test_bad_input_gets_clear_errors(trained, umaze, tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'q_lr'"):
        LDCQ.from_dataset(umaze, q_lrr=1.0)
    with pytest.raises(ConfigError, match="preset"):
        LDCQ.from_dataset(umaze, preset="fast")
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(4,\)"):
        trained.predict(
            {"observation": np.zeros(3), "achieved_goal": np.zeros(2), "desired_goal": np.zeros(2)}
        )
    folder = trained.save(tmp_path / "ok")
    # damaged weights
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text((folder / "config.json").read_text())
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="damaged"):
        LDCQ.load(tmp_path / "bad")
    # a newer format
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer"):
        LDCQ.load(folder)
    # not a checkpoint at all
    with pytest.raises(CheckpointError, match="config.json is missing"):
        LDCQ.load(tmp_path)
    # a checkpoint whose tensors do not fit its config
    meta["config"]["latent_dim"] = 6
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit"):
        LDCQ.load(folder)


def test_evaluate_on_a_given_env(trained):
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=20)
    result = trained.evaluate(env, n_episodes=1)
    assert result["episode_lengths"] == [20]
    assert result["normalized_score"] is None  # not the dataset's evaluation env: no reference


def test_evaluate_by_id_of_the_eval_env_uses_reference_scores(trained):
    eval_id = trained.spec.env_id
    assert trained.evaluate(eval_id, n_episodes=1)["normalized_score"] is None  # default map ≠ eval map
    same = trained.spec.make_env()
    assert trained.spec.is_eval_env(same.spec)
    assert trained.evaluate(same, n_episodes=1)["normalized_score"] is not None


def test_reuse_stages_copies_the_trained_skills(umaze):
    source = LDCQ.from_dataset(umaze, **TINY).learn(stages=["skills"])
    target = LDCQ.from_dataset(umaze, **{**TINY, "seed": 1})
    with pytest.raises(ValueError, match="has not trained stage 'prior'"):
        target.reuse_stages(source, ["skills", "prior"])
    target.reuse_stages(source)
    assert target.stages_completed == ["skills"]
    for (name, ours), theirs in zip(
        target.vae.state_dict().items(), source.vae.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name
    target.learn(stages=["prior", "q"])
    assert target.stages_completed == ["skills", "prior", "q"]
    wider = LDCQ.from_dataset(umaze, **{**TINY, "vae_hidden": 8})
    with pytest.raises(ValueError, match="vae_hidden"):
        wider.reuse_stages(source)
