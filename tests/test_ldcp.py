from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_OBS, TINY, LossRecorder, chain_buffers
from conftest import copy_umaze, write_dataset

from latent_skills.agents.ldcp import LDCP
from latent_skills.agents.ldcq import LDCQ
from latent_skills.config import QUICK, ConfigError, LDCPConfig

SETTINGS = {
    **{k: v for k, v in TINY.items() if k in LDCPConfig.field_names()},
    "dynamics_widths": (32, 32),
    "dynamics_lr": 3e-3,
    "dynamics_batch_size": 64,
    "dynamics_steps": 300,
    "plan_candidates": 4,
    "plan_depth": 2,
}


@pytest.fixture(scope="module")
def run(umaze_source, tmp_path_factory):
    """An LDCP on a tiny UMaze dataset that reuses an LDCQ's skills and prior, as the family does,
    and trains only its world model (built once: the tests below leave it unchanged)."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("minari")
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        dataset = copy_umaze(umaze_source, root)
        source = LDCQ.from_dataset(dataset, **TINY).learn(stages=["skills", "prior"])
        agent = LDCP.from_dataset(dataset, **SETTINGS).reuse_stages(source, ["skills", "prior"])
        recorder = LossRecorder()
        agent.learn(stages="dynamics", callback=recorder)
    env = dataset.recover_environment(eval_env=True)
    observations = [env.reset(seed=seed)[0] for seed in range(6)]
    batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return SimpleNamespace(dataset=dataset, source=source, agent=agent, recorder=recorder, batch=batch)


def _copy(agent: LDCP, folder) -> LDCP:
    return LDCP.load(agent.save(folder))


def test_world_model_learns_the_skills_outcomes(run):
    agent = run.agent
    assert agent.stages_completed == ["skills", "prior", "dynamics"]
    for key, tensor in run.source.vae.state_dict().items():
        assert torch.equal(tensor, agent.vae.state_dict()[key]), key  # the world model leaves the VAE alone
    mse = run.recorder.series("dynamics", "mse")
    assert len(mse) == SETTINGS["dynamics_steps"] and mse[-30:].mean() < 0.7 * mse[:30].mean()
    # on the full windows, the predicted end states beat "the state does not change" by far
    w = agent.data.windows
    full = np.flatnonzero(w.lengths == agent.config.horizon)
    start, end = w.first_states[full], w.next_states[full]
    z = agent.posterior()[0][full]
    with torch.no_grad():
        predicted = agent.dynamics.predict(torch.as_tensor(start), torch.as_tensor(z)).numpy()
    scale = agent.dynamics.normalizer.std.numpy()
    model_error = np.square((predicted - end) / scale).mean()
    assert model_error < 0.7 * np.square((start - end) / scale).mean()


def test_predict_end_states_shapes_and_errors(run):
    agent, batch = run.agent, run.batch
    S, D = agent.spec.state_dim, agent.config.latent_dim
    single = {k: v[0] for k, v in batch.items()}
    latents = agent.sample_latents(single, 5, seed=0)
    ends = agent.predict_end_states(single, latents)
    assert ends.shape == (5, S) and np.isfinite(ends).all()
    shared = agent.predict_end_states(batch, latents)  # the same latents at every state
    assert shared.shape == (6, 5, S)
    np.testing.assert_allclose(shared[0], ends, rtol=1e-5, atol=1e-6)
    per_state = agent.predict_end_states(batch, np.repeat(latents[None], 6, 0))
    np.testing.assert_allclose(per_state, shared, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=rf"\(n, {D}\) or \(B, n, {D}\)"):
        agent.predict_end_states(single, np.zeros((5, D + 1)))
    with pytest.raises(ValueError, match="latents are for 2 states but the observation has 6"):
        agent.predict_end_states(batch, np.zeros((2, 5, D)))


def test_ldcp_picks_the_latent_predicted_nearest_the_goal(run, tmp_path):
    agent = _copy(run.agent, tmp_path / "a").set_acting(plan_depth=1, plan_candidates=8)
    plan = agent.plan(run.batch, deterministic=True)
    _, (chosen, _) = agent.predict(run.batch, deterministic=True)
    achieved = agent.spec.flattener.slice_of("achieved_goal")
    for row in range(6):
        obs = {k: v[row] for k, v in run.batch.items()}
        # brute force over the same candidates
        ends = agent.predict_end_states(obs, plan.latents[row])
        distance = np.linalg.norm(ends[:, achieved] - obs["desired_goal"], axis=1)
        np.testing.assert_allclose(plan.scores[row], distance, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(chosen[row], plan.latents[row, distance.argmin()])
    assert len({int(i) for i in plan.best}) > 1  # not a tie broken the same way everywhere


GOAL_OFFSET = 2.0
# A constructed prior and world model: a latent's first coordinate moves the achieved goal along x.
# The first skill's candidates differ from the second's, so the tree's order matters: one skill of
# 1.5 ends nearest a goal 2 away, but backing off (−1) and then a long skill (+3) reaches it.
FIRST = [1.5, 1.0, -1.0]
SECOND = [0.0, 0.25, 3.0]


def test_depth_search_with_a_constructed_model(run, tmp_path, monkeypatch):
    agent = _copy(run.agent, tmp_path / "a").set_acting(plan_candidates=3)
    D, n = agent.config.latent_dim, 3
    achieved = agent.spec.flattener.slice_of("achieved_goal")
    conditions: list[torch.Tensor] = []
    predicted_rows: list[int] = []

    def prior(states: torch.Tensor, k: int, **_: object) -> torch.Tensor:
        conditions.append(states)  # the states the prior was asked at
        z = torch.zeros(len(states), k, D)
        z[..., 0] = torch.tensor(FIRST if len(conditions) == 1 else SECOND)
        return z

    def world_model(s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        predicted_rows.append(z.shape[0] * z.shape[1])
        end = s.expand(*z.shape[:-1], -1).clone()
        end[..., achieved] += z[..., :2]
        return end

    monkeypatch.setattr(agent.dynamics, "predict", world_model)
    obs = {k: v[:2].copy() for k, v in run.batch.items()}
    obs["desired_goal"] = obs["achieved_goal"] + [GOAL_OFFSET, 0.0]
    brute = {
        1: [abs(a - GOAL_OFFSET) for a in FIRST],  # [0.5, 1, 3]
        2: [min(abs(a + b - GOAL_OFFSET) for b in SECOND) for a in FIRST],  # [0.25, 0.75, 0]
    }
    for depth, best in ((1, 0), (2, 2)):
        agent.set_acting(plan_depth=depth)
        monkeypatch.setattr(agent.policy.prior, "sample", prior)  # set_acting builds a new policy
        conditions.clear()
        predicted_rows.clear()
        plan = agent.plan(obs, deterministic=True)
        np.testing.assert_allclose(plan.scores, [brute[depth]] * 2, atol=1e-5)
        assert plan.best.tolist() == [best, best]
        # one batched world-model call per level: n, then n² predictions for each of the 2 states
        assert predicted_rows == [2 * n**level for level in range(1, depth + 1)]
        if depth == 2:  # the second skills are sampled at the first skills' predicted ends, in order
            x = achieved.start
            expected = np.add.outer(obs["achieved_goal"][:, 0], FIRST).reshape(-1)
            np.testing.assert_allclose(conditions[1][:, x].numpy(), expected, rtol=1e-4, atol=1e-4)
        conditions.clear()
        _, (chosen, _) = agent.predict(obs, deterministic=True)
        np.testing.assert_allclose(chosen[:, 0], [FIRST[best]] * 2)


def test_user_cost_and_a_missing_goal(minari_root):
    dataset = write_dataset(
        "test/chain/right-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
    )
    agent = LDCP.from_dataset(dataset, **{**SETTINGS, "horizon": 2, "plan_depth": 1})
    states = np.array([[0.0], [3.0]])
    with pytest.raises(ValueError, match="no matching achieved_goal/desired_goal.*set_cost"):
        agent.predict(states)
    # plan toward position 5: cost = distance of the predicted position to it
    agent.set_cost(lambda s, predicted: (predicted[..., 0] - 5.0).abs())
    plan = agent.plan(states, seed=0)
    np.testing.assert_allclose(plan.scores, np.abs(plan.end_states[..., 0] - 5.0), rtol=1e-6)
    _, (chosen, _) = agent.predict(states, deterministic=True)
    deterministic = agent.plan(states, deterministic=True)
    np.testing.assert_array_equal(chosen, deterministic.latents[[0, 1], deterministic.best])
    agent.set_cost(lambda s, predicted: predicted)  # (B, n, 1), not one cost per plan
    with pytest.raises(ValueError, match=r"cost function returned shape \(2, 4, 1\), expected \(2, 4\)"):
        agent.predict(states)
    with pytest.raises(TypeError, match="callable"):
        agent.set_cost(3.0)  # type: ignore[arg-type]


def test_save_load_keeps_the_world_model_but_not_the_cost(run, tmp_path):
    # the round trip every agent keeps (weights, config, acting): tests/test_contract.py
    agent = run.agent
    agent.set_cost(lambda s, predicted: predicted[..., 0])
    folder = agent.save(tmp_path / "ckpt")
    agent.set_cost(None)
    loaded = LDCP.load(folder)
    assert loaded.cost_fn is None  # the cost is code: it is not in the checkpoint
    single = {k: v[3] for k, v in run.batch.items()}
    latents = agent.sample_latents(single, 3, seed=1)
    np.testing.assert_array_equal(
        agent.predict_end_states(single, latents), loaded.predict_end_states(single, latents)
    )


def test_config_presets_and_errors(run):
    quick = LDCPConfig.from_preset("quick")
    assert (quick.dynamics_steps, quick.plan_candidates, quick.plan_depth) == (3000, 16, 1)
    assert quick.exec_horizon == QUICK["exec_horizon"]  # the shared quick values apply too
    paper = LDCPConfig.from_preset("paper")
    assert {stage.name: getattr(paper, stage.steps_field) for stage in LDCP.stages} == {
        "images": 50_000,
        "skills": 100_000,
        "prior": 300_000,
        "dynamics": 100_000,
    }
    with pytest.raises(ConfigError, match="plan_depth must be > 0"):
        LDCPConfig(plan_depth=0).validate()
    with pytest.raises(ConfigError, match="lower plan_candidates or plan_depth"):
        LDCPConfig(plan_candidates=1000, plan_depth=3).validate()
    with pytest.raises(ConfigError, match="Did you mean 'plan_depth'"):
        LDCP.from_dataset(run.dataset, plan_depht=1)
    with pytest.raises(ConfigError, match="after training only"):
        run.agent.set_acting(dynamics_lr=1.0)
