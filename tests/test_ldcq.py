from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_LENGTH, CHAIN_OBS, TINY, LossRecorder, chain_buffers
from conftest import write_dataset

from latent_skills import LDCQ, ConfigError
from latent_skills.checkpoint import seal_config
from latent_skills.hub import CheckpointError


@pytest.fixture
def trained(umaze, tiny_ldcq_checkpoint):
    """This test's own copy of a tiny LDCQ trained on ``umaze`` (tests may train it further)."""
    return LDCQ.load(tiny_ldcq_checkpoint)


def test_every_stage_loss_falls(umaze):
    # 100 steps a stage: the last 30 steps' mean loss is ~0.45 (skills), ~0.25 (prior, Q) of the first 30's
    agent = LDCQ.from_dataset(umaze, **{**TINY, "skills_steps": 100, "prior_steps": 100, "q_steps": 100})
    recorder = LossRecorder()
    agent.learn(callback=recorder)
    assert agent.stages_completed == ["skills", "prior", "q"]
    assert agent.num_timesteps == 300
    for stage in ("skills", "prior"):
        loss = recorder.series(stage)
        assert len(loss) == 100
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
    # the largest error is about 0.03 after 600 steps (0.05 after 100; an untrained critic is far off)
    agent = LDCQ.from_dataset(
        dataset,
        **{**TINY, "horizon": 2, "gamma": gamma, "q_steps": 600, "q_polyak": 0.9, "q_batch_size": 64},
    )
    agent.learn()
    states = torch.arange(CHAIN_LENGTH, dtype=torch.float32)[:, None]
    latents = torch.as_tensor(agent.sample_latents(states.numpy(), 4, seed=0))  # (T, 4, D)
    with torch.no_grad():
        q = agent.critic.min_q(states[:, None].expand(-1, 4, -1), latents).numpy()
    truth = gamma ** (CHAIN_LENGTH - 1 - np.arange(CHAIN_LENGTH))
    np.testing.assert_allclose(q.mean(1), truth, atol=0.06)


def test_evaluate_reports_scores_over_vector_envs(trained):
    result = trained.evaluate(n_episodes=3, n_envs=2, seed=0)
    assert len(result["returns"]) == 3 and result["episode_lengths"] == [300, 300, 300]
    low, high = trained.spec.reference_scores
    expected = 100 * (result["mean_return"] - low) / (high - low)
    assert result["normalized_score"] == pytest.approx(expected)
    assert result["success_rate"] is not None and 0 <= result["success_rate"] <= 1


def test_sample_latents_takes_the_diffusion_samplers_options(trained, umaze):
    # shapes and seeding of sample_latents: tests/test_contract.py
    obs, _ = umaze.recover_environment(eval_env=True).reset(seed=0)
    z = trained.sample_latents(obs, 5, solver="ddim", steps=3, seed=3)
    assert z.shape == (5, TINY["latent_dim"])
    np.testing.assert_array_equal(z, trained.sample_latents(obs, 5, solver="ddim", steps=3, seed=3))


def test_total_timesteps_split_and_stage_resume(umaze):
    agent = LDCQ.from_dataset(umaze, **TINY)
    agent.learn(total_timesteps=60, stages=["skills", "prior"])
    assert agent.num_timesteps == 60 and agent.stages_completed == ["skills", "prior"]
    agent.learn(stages="q")
    assert agent.stages_completed == ["skills", "prior", "q"]
    with pytest.raises(ValueError, match="unknown"):
        agent.learn(stages=["dance"])


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
    (folder / "config.json").write_text(json.dumps(seal_config(meta)))
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


def test_per_beta_anneals_to_one_over_the_steps_the_q_stage_runs(trained, monkeypatch):
    from latent_skills.agents.replay import PrioritizedSampler

    betas: list[float] = []
    original = PrioritizedSampler.sample

    def recording(self, batch_size, beta, rng):
        betas.append(beta)
        return original(self, batch_size, beta, rng)

    monkeypatch.setattr(PrioritizedSampler, "sample", recording)
    trained.learn(stages=["q"], total_timesteps=20)  # 20 steps whatever q_steps says
    assert len(betas) == 20 and betas[0] == trained.config.per_beta_start and betas[-1] == 1.0
    assert np.all(np.diff(betas) > 0)
    betas.clear()
    trained.config.per_beta_schedule = "steps"  # the LDCQ code's rule: +0.03 every 3,000 steps
    trained.learn(stages=["q"], total_timesteps=20)
    assert betas == [trained.config.per_beta_start] * 20


def test_full_skill_windows_keep_short_windows_out_of_the_vae_and_prior_only(umaze, monkeypatch):
    from latent_skills.agents.stages import TrainingStage

    drawn: dict[str, list[np.ndarray]] = {}
    original = TrainingStage.take_shard

    def recording(self, idx):
        drawn.setdefault(self.name, []).append(np.asarray(idx))
        return original(self, idx)

    monkeypatch.setattr(TrainingStage, "take_shard", recording)
    settings = {**TINY, "skills_steps": 20, "prior_steps": 20, "q_steps": 20}
    for choice in ("all", "full"):
        drawn.clear()
        agent = LDCQ.from_dataset(umaze, skill_windows=choice, **settings).learn()
        lengths = agent.data.windows.lengths
        assert (lengths < agent.config.horizon).mean() > 0.05  # success cuts leave short windows
        short = {
            stage: bool((lengths[np.concatenate(batches)] < agent.config.horizon).any())
            for stage, batches in drawn.items()
        }
        assert short == {"skills": choice == "all", "prior": choice == "all", "q": True}, choice
    with pytest.raises(ConfigError, match="skill_windows must be one of"):
        LDCQ.from_dataset(umaze, skill_windows="long", **settings)


def test_auto_candidates_use_a_bank_only_when_the_q_stage_draws_the_whole_dataset(umaze):
    agent = LDCQ.from_dataset(umaze, **TINY)
    windows = agent.data.windows
    distinct = len(np.unique(windows.next_states.rows(np.arange(len(windows)))))
    batch = agent.config.q_batch_size
    agent.learn(stages=["skills", "prior"])
    short = distinct // batch - 1  # draws fewer windows than there are next states: on the fly
    agent.learn(stages=["q"], total_timesteps=short)
    assert agent.data.extras["bank"] is None
    agent.learn(stages=["q"], total_timesteps=short + 2)  # enough draws: the bank
    bank = agent.data.extras["bank"]
    assert bank is not None and len(bank.unique_rows) == distinct
    forced = LDCQ.from_dataset(umaze, **{**TINY, "candidate_source": "bank"})
    forced.learn(stages=["skills", "prior"])
    forced.learn(stages=["q"], total_timesteps=1)
    assert forced.data.extras["bank"] is not None
