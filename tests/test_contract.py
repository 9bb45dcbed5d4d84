"""The public contract every agent keeps (DESIGN.md, "Public API — a contract"), checked the same way
for each registered agent, as Stable-Baselines3's tests/test_save_load.py does for its algorithms.

One tiny goal-conditioned PointMaze dataset (LDGC and LDCP's default cost need ``achieved_goal`` /
``desired_goal``) and a few gradient steps per stage. Each agent is trained once per module (the
``trained`` fixture); the tests below leave it unchanged, and compare against a snapshot of its weights
taken right after training.

The observation kind is an axis too, as d3rlpy's algo_tester varies the observation shape: the Dict
of Boxes above, a flat Box, and the kinds no observation encoder takes (refused at ``from_dataset``).

Only the public API is used here: a refactor of the agents' insides must keep every test passing.
An agent's own behaviour (Q values on a chain, guidance, planning, energy, ...) is tested in its own file.

To cover a new composition, register it in the library and add its stages and settings to
``EXTRA_AGENTS`` at the end of this file (a registered library agent without an entry is still covered,
with stages read from its config and TINY settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import TINY
from conftest import observation_buffers, record_env_buffers, write_dataset
from stable_baselines3.common.evaluation import evaluate_policy

from latent_skills import LatentSkillAgent, TrainingDivergedError, TrainingInterrupted, load_agent
from latent_skills.agents import (
    GoalDiffusionPrior,
    GoalPriorStage,
    QArgmax,
    QStage,
    SkillsStage,
    TreeSearch,
    register_agent,
)
from latent_skills.agents.registry import agent_class, agent_names
from latent_skills.config import LDCQConfig, LDGCConfig
from latent_skills.hub import CheckpointError

STEPS = 10  # gradient steps of every stage
SEED = 0
BATCH = 3  # observations in a batched predict


@dataclass(frozen=True)
class Contract:
    """What one agent promises here: the stages ``learn()`` runs, in order, and its settings beyond
    TINY (TINY is filtered to the agent's config fields; every stage gets STEPS steps)."""

    stages: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)


# exec_horizon < horizon, so that a carried skill is visibly kept for a few steps
COMMON: dict[str, Any] = {"exec_horizon": 3}

CONTRACTS: dict[str, Contract] = {
    "LDCQ": Contract(("skills", "prior", "q")),
    "LDGC": Contract(("skills", "prior"), {"hindsight_horizons": 1.0}),
    "LDCP": Contract(
        ("skills", "prior", "dynamics"),
        {
            "dynamics_widths": (32, 32),
            "dynamics_lr": 3e-3,
            "dynamics_batch_size": 64,
            "plan_candidates": 4,
            "plan_depth": 2,
        },
    ),
    "BCQH": Contract(("skills", "q")),
    "LatentDiffuser": Contract(
        ("skills", "prior", "q", "energy"),
        {"energy_samples": 8, "energy_batch_size": 32, "energy_widths": (32, 32), "energy_lr": 3e-3},
    ),
}


# --------------------------------------------------------------------------- which agents, how set up
def library_agent_names() -> list[str]:
    """Registered agents defined in the library itself (not test-made compositions such as test_hub's)."""
    return [n for n in agent_names() if agent_class(n).__module__.startswith("latent_skills.")]


def contract_of(name: str) -> Contract:
    known = {**CONTRACTS, **EXTRA_AGENTS}
    if name in known:
        return known[name]
    # a library agent nobody wrote an entry for: the stages it declares, TINY settings
    return Contract(tuple(agent_class(name).stage_names()))


def names_under_test() -> list[str]:
    names = list(CONTRACTS) + [n for n in EXTRA_AGENTS if n not in CONTRACTS]
    return names + [n for n in library_agent_names() if n not in names]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # at collection, after the whole module (EXTRA_AGENTS included) is defined
    if "name" in metafunc.fixturenames:
        metafunc.parametrize("name", names_under_test(), scope="module")


def settings_for(name: str) -> dict[str, Any]:
    contract = contract_of(name)
    fields = set(agent_class(name).config_class.field_names())
    values = {k: v for k, v in {**TINY, **COMMON}.items() if k in fields}
    values.update({f"{stage}_steps": STEPS for stage in contract.stages})
    values.update(contract.settings)
    return values


def weights(agent: LatentSkillAgent) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {k: v.detach().clone() for k, v in module.state_dict().items()}
        for name, module in agent.modules().items()
    }


def parameters(agent: LatentSkillAgent) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.detach().clone()
        for name, module in agent.modules().items()
        for k, v in module.named_parameters()
    }


def assert_same_weights(
    got: dict[str, dict[str, torch.Tensor]], expected: dict[str, dict[str, torch.Tensor]]
) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name].keys() == expected[name].keys(), name
        for key, tensor in expected[name].items():
            assert torch.equal(got[name][key], tensor), f"{name}.{key}"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Random-action PointMaze UMaze episodes (Dict observations with goals), in a module-wide store
    that stays set while the tests run (a loaded agent finds its training data there by id)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        env = gym.make("PointMaze_UMaze-v3", max_episode_steps=40)
        buffers = record_env_buffers(env, n_episodes=4, steps=40, seed=3)
        yield write_dataset("test/pointmaze/contract-v0", buffers, env=env)


@pytest.fixture(scope="module")
def observations(dataset):
    env = dataset.recover_environment(eval_env=True)
    singles = [env.reset(seed=seed)[0] for seed in range(BATCH)]
    batch = {k: np.stack([o[k] for o in singles]) for k in singles[0]}
    return SimpleNamespace(single=singles[0], batch=batch, action_space=env.action_space)


@pytest.fixture(scope="module")
def trained(name, dataset):
    """The agent ``name`` trained once with every stage's STEPS steps, and its weights just after."""
    cls, settings = agent_class(name), settings_for(name)
    agent = cls.from_dataset(dataset, seed=SEED, **settings)
    assert agent.stages_completed == [] and agent.num_timesteps == 0
    assert agent.learn() is agent
    return SimpleNamespace(
        name=name,
        cls=cls,
        settings=settings,
        stages=contract_of(name).stages,
        agent=agent,
        weights=weights(agent),
    )


# --------------------------------------------------------------------------- the registry
def test_every_library_agent_is_covered():
    names = names_under_test()
    for expected in ("LDCQ", "LDGC", "LDCP", "BCQH", "LatentDiffuser", *EXTRA_AGENTS):
        assert expected in agent_names(), f"{expected} is not registered"
        assert expected in names
    assert set(library_agent_names()) <= set(names)
    for name in names:
        assert issubclass(agent_class(name), LatentSkillAgent)


# --------------------------------------------------------------------------- learn
def test_learn_runs_every_stage_and_counts_its_steps(trained):
    agent = trained.agent
    assert agent.stages_completed == list(trained.stages)
    assert agent.num_timesteps == STEPS * len(trained.stages)
    assert_same_weights(weights(agent), trained.weights)  # no test of this module changed it


# --------------------------------------------------------------------------- predict
def test_predict_shapes_single_and_batched(trained, observations):
    agent, D = trained.agent, trained.agent.config.latent_dim
    (A,) = observations.action_space.shape
    action, (z, since) = agent.predict(observations.single)
    assert action.shape == (A,)
    assert z.shape == (1, D) and since.shape == (1,) and since.tolist() == [1]
    actions, (z, since) = agent.predict(observations.batch)
    assert actions.shape == (BATCH, A)
    assert z.shape == (BATCH, D) and since.shape == (BATCH,) and since.tolist() == [1] * BATCH
    for deterministic in (False, True):
        action, _ = agent.predict(observations.single, deterministic=deterministic)
        assert action.shape == (A,)


def test_state_carries_the_skill_and_episode_start_resets_it(trained, observations):
    agent, batch = trained.agent, observations.batch
    _, (chosen, _) = agent.predict(batch, deterministic=True)
    other = chosen + 0.5  # a skill the agent would not choose here
    ones = np.ones(BATCH, np.int64)
    # within exec_horizon the carried skill is kept and its step counted
    _, (kept, since) = agent.predict(batch, (other, ones), deterministic=True)
    np.testing.assert_array_equal(kept, other)
    assert since.tolist() == [2] * BATCH
    # episode_start: those envs choose afresh, the others keep theirs
    start = np.array([True, False, True])
    _, (z, since) = agent.predict(batch, (other, ones), episode_start=start, deterministic=True)
    np.testing.assert_array_equal(z[~start], other[~start])
    assert since.tolist() == [1, 2, 1]
    np.testing.assert_allclose(z[start], chosen[start], rtol=1e-5, atol=1e-5)  # the fresh choice
    # the state passed in is not modified
    assert since is not ones and ones.tolist() == [1] * BATCH
    # after exec_horizon steps every env chooses again
    every = agent.config.exec_horizon
    _, (z, since) = agent.predict(batch, (other, np.full(BATCH, every - 1)), deterministic=True)
    np.testing.assert_array_equal(z, other)
    assert since.tolist() == [every] * BATCH
    _, (z, since) = agent.predict(batch, (z, since), deterministic=True)
    np.testing.assert_allclose(z, chosen, rtol=1e-5, atol=1e-5)
    assert since.tolist() == [1] * BATCH


def test_a_rows_choice_does_not_depend_on_its_batch(trained, observations):
    agent = trained.agent
    actions, (z, _) = agent.predict(observations.batch, deterministic=True)
    for row in range(BATCH):
        single = {k: v[row] for k, v in observations.batch.items()}
        action, (z_row, _) = agent.predict(single, deterministic=True)
        # equal up to the BLAS kernel's rounding of a row in a different batch
        np.testing.assert_allclose(z_row[0], z[row], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(action, actions[row], rtol=1e-5, atol=1e-5)


def test_actions_are_inside_the_action_bounds(trained, observations):
    space = observations.action_space
    for deterministic in (False, True):
        for obs in (observations.single, observations.batch):
            actions, _ = trained.agent.predict(obs, deterministic=deterministic)
            assert np.isfinite(actions).all()
            assert (actions >= space.low).all() and (actions <= space.high).all(), actions


def test_deterministic_predict_repeats(trained, observations):
    agent = trained.agent
    for obs in (observations.single, observations.batch):
        a1, (z1, _) = agent.predict(obs, deterministic=True)
        agent.predict(obs)  # a stochastic call between the two does not matter
        a2, (z2, _) = agent.predict(obs, deterministic=True)
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(z1, z2)


def test_sb3_evaluate_policy_runs(trained, dataset):
    env = dataset.recover_environment(eval_env=True)
    mean, std = evaluate_policy(trained.agent, env, n_eval_episodes=1, warn=False)
    assert np.isfinite(mean) and std >= 0


def test_evaluate_reports_the_documented_keys(trained):
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=10)
    result = trained.agent.evaluate(env, n_episodes=1)
    assert {"mean_return", "std_return", "returns", "normalized_score", "success_rate"} <= set(result)
    assert len(result["returns"]) == 1 and np.isfinite(result["mean_return"])
    assert result["success_rate"] is not None  # PointMaze reports success


def test_stochastic_evaluation_depends_only_on_its_seed(trained):
    def returns(seed: int) -> list[float]:
        env = gym.make("PointMaze_UMazeDense-v3", max_episode_steps=15)  # dense: every action counts
        return trained.agent.evaluate(env, n_episodes=2, seed=seed, deterministic=False)["returns"]

    first = returns(3)
    obs, _ = gym.make("PointMaze_UMaze-v3").reset(seed=0)
    trained.agent.predict(obs)  # advances the acting generator
    assert returns(3) == first
    assert (
        trained.agent.evaluate(  # the same start states, other action noise: the returns move
            gym.make("PointMaze_UMazeDense-v3", max_episode_steps=15),
            n_episodes=2,
            seed=3,
            deterministic=True,
        )["returns"]
        != first
    )


# --------------------------------------------------------------------------- sample_latents
def test_sample_latents_shapes(trained, observations):
    agent, D = trained.agent, trained.agent.config.latent_dim
    z = agent.sample_latents(observations.single, 5)
    assert z.shape == (5, D) and np.isfinite(z).all()
    z = agent.sample_latents(observations.batch, 5)
    assert z.shape == (BATCH, 5, D) and np.isfinite(z).all()
    # seeded draws repeat, whatever was drawn in between
    seeded = agent.sample_latents(observations.batch, 5, seed=3)
    agent.sample_latents(observations.batch, 5)
    np.testing.assert_array_equal(agent.sample_latents(observations.batch, 5, seed=3), seeded)


# --------------------------------------------------------------------------- save and load
def test_save_load_identity(trained, observations, tmp_path):
    agent = trained.agent
    folder = agent.save(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    latents = agent.sample_latents(observations.batch, 3, seed=1)
    expected = {
        "single": agent.predict(observations.single, deterministic=True),
        "batch": agent.predict(observations.batch, deterministic=True),
    }
    loaders = {
        "LatentSkillAgent.load": LatentSkillAgent.load,
        f"{trained.name}.load": trained.cls.load,
        "LatentSkillAgent.from_pretrained": LatentSkillAgent.from_pretrained,
        "load_agent": lambda path: load_agent(str(path)),
    }
    for how, load in loaders.items():
        loaded = load(folder)
        assert type(loaded) is trained.cls, how
        assert loaded.config == agent.config, how
        assert loaded.stages_completed == agent.stages_completed, how
        assert loaded.num_timesteps == agent.num_timesteps, how
        assert_same_weights(weights(loaded), trained.weights)
        for kind, (action, (z, since)) in expected.items():
            obs = observations.single if kind == "single" else observations.batch
            got, (got_z, got_since) = loaded.predict(obs, deterministic=True)
            np.testing.assert_array_equal(got, action, err_msg=f"{how} {kind}")
            np.testing.assert_array_equal(got_z, z, err_msg=f"{how} {kind}")
            np.testing.assert_array_equal(got_since, since)
        np.testing.assert_array_equal(loaded.sample_latents(observations.batch, 3, seed=1), latents)


def test_loading_as_another_class_is_a_checkpoint_error(trained, tmp_path):
    folder = trained.agent.save(tmp_path / "ckpt")
    other = agent_class("LDGC") if trained.name == "LDCQ" else agent_class("LDCQ")
    with pytest.raises(CheckpointError, match=trained.name):
        other.load(folder)


# --------------------------------------------------------------------------- seeding
def test_same_seed_same_weights_and_another_seed_differs(trained, dataset):
    again = trained.cls.from_dataset(dataset, seed=SEED, **trained.settings).learn()
    assert_same_weights(weights(again), trained.weights)
    other = weights(trained.cls.from_dataset(dataset, seed=SEED + 1, **trained.settings).learn())
    for name, module in trained.agent.modules().items():
        if not list(module.parameters()):
            continue
        assert any(
            not torch.equal(tensor, other[name][key]) for key, tensor in trained.weights[name].items()
        ), f"{name} is the same for seeds {SEED} and {SEED + 1}"


# --------------------------------------------------------------------------- Ctrl-C and resume
def test_ctrl_c_leaves_a_checkpoint_that_resumes_exactly(trained, dataset, tmp_path):
    agent = trained.cls.from_dataset(dataset, seed=SEED, **trained.settings)
    stop_at = STEPS + STEPS // 2 if len(trained.stages) > 1 else STEPS // 2  # mid-stage, the 2nd if any
    calls = 0

    def interrupt(locals_: dict, globals_: dict) -> bool:
        nonlocal calls
        calls += 1
        if calls == stop_at:
            raise KeyboardInterrupt
        return True

    path = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as caught:
        agent.learn(callback=interrupt, save_path=path)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert calls == stop_at  # it stopped at once
    resumed = trained.cls.load(path)
    assert type(LatentSkillAgent.load(path)) is trained.cls
    assert resumed.stages_completed == list(trained.stages[: stop_at // STEPS])
    assert resumed.num_timesteps == stop_at
    assert resumed.learn(resume=True) is resumed
    assert resumed.stages_completed == list(trained.stages)
    assert resumed.num_timesteps == trained.agent.num_timesteps
    assert_same_weights(weights(resumed), trained.weights)


# --------------------------------------------------------------------------- divergence
def test_non_finite_data_stops_training_and_keeps_the_weights(trained, dataset):
    if len(trained.stages) < 2:
        pytest.skip("one stage only: nothing trains after the data is spoilt")
    first, second = trained.stages[:2]
    agent = trained.cls.from_dataset(dataset, seed=SEED, **trained.settings).learn(stages=[first])
    agent.posterior()  # encoded while the data is clean
    before = parameters(agent)
    agent.data.windows.episodes.observations[:] = np.nan  # then every later stage's input is NaN
    with pytest.raises(TrainingDivergedError, match=f"Stage '{second}'.* at step 0"):
        agent.learn(stages=[second])
    after = parameters(agent)
    assert after.keys() == before.keys()
    for key, tensor in before.items():
        assert torch.equal(after[key], tensor), key
    assert agent.stages_completed == [first]


# --------------------------------------------------------------------------- reuse_stages
def test_reuse_skills_copies_the_vae(trained, dataset):
    source = trained.agent
    target = trained.cls.from_dataset(dataset, seed=SEED + 1, **trained.settings)
    assert target.reuse_stages(source, ["skills"]) is target
    assert target.stages_completed == ["skills"]
    assert_same_weights({"vae": weights(target)["vae"]}, {"vae": trained.weights["vae"]})
    # the later stages train over the copied skills and leave them alone
    target.learn(stages=[s for s in trained.stages if s != "skills"])
    assert target.stages_completed == list(trained.stages)
    assert_same_weights({"vae": weights(target)["vae"]}, {"vae": trained.weights["vae"]})
    assert_same_weights(weights(source), trained.weights)  # the source is not changed


# --------------------------------------------------------------------------- observation kinds
# As d3rlpy's algo_tester varies the observation shape: the Dict of Boxes above (PointMaze's), a flat
# Box here (every agent that needs no goals learns, acts, saves and loads on it), and the kinds no
# observation encoder takes, which every agent refuses at from_dataset, naming what is supported.
FLAT_OBS = 5
IMAGE = gym.spaces.Box(0, 255, (6, 6, 3), np.uint8)
REFUSED: dict[str, tuple[gym.Space, str]] = {  # the space, and what the error says of it
    "discrete": (gym.spaces.Discrete(4), "Discrete"),
    "image": (IMAGE, "an image"),
    "dict with an image": (
        gym.spaces.Dict({"pixels": IMAGE, "position": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)}),
        "'pixels'.*an image",
    ),
}


def write_observation_dataset(dataset_id: str, space: gym.Space) -> Any:
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    buffers = observation_buffers(space)
    return write_dataset(dataset_id, buffers, observation_space=space, action_space=action_space)


@pytest.fixture(scope="module")
def flat_box_dataset(dataset):
    """Box(5,) observations, in the store the ``dataset`` fixture set (a loaded agent finds it by id)."""
    return write_observation_dataset("test/box/contract-v0", gym.spaces.Box(-5, 5, (FLAT_OBS,), np.float32))


@pytest.fixture(scope="module")
def refused_datasets(dataset):
    return {
        kind: write_observation_dataset(f"test/refused/{kind.replace(' ', '-')}-v0", space)
        for kind, (space, _) in REFUSED.items()
    }


def test_flat_box_observations(name, flat_box_dataset, tmp_path):
    cls, settings = agent_class(name), settings_for(name)
    if cls.prior.condition_kind == "state+goal":  # a goal-conditioned prior needs the goal parts
        with pytest.raises(ValueError, match="goal-conditioned observations"):
            cls.from_dataset(flat_box_dataset, seed=SEED, **settings)
        return
    agent = cls.from_dataset(flat_box_dataset, seed=SEED, **settings).learn()
    assert agent.stages_completed == list(contract_of(name).stages)

    def with_cost(agent: Any) -> Any:  # the tree search's default cost needs goals: give one
        if isinstance(agent.policy.selector, TreeSearch):
            agent.set_cost(lambda states, predicted: predicted.norm(dim=-1))
        return agent

    with_cost(agent)
    obs = np.random.default_rng(1).uniform(-5, 5, (BATCH, FLAT_OBS)).astype(np.float32)
    D = agent.config.latent_dim
    action, (z, _) = agent.predict(obs[0], deterministic=True)
    assert action.shape == (2,) and z.shape == (1, D) and np.isfinite(action).all()
    actions, (z, _) = agent.predict(obs, deterministic=True)
    assert actions.shape == (BATCH, 2) and z.shape == (BATCH, D)
    assert agent.sample_latents(obs, 3).shape == (BATCH, 3, D)
    loaded = with_cost(load_agent(str(agent.save(tmp_path / "box"))))
    assert type(loaded) is cls and loaded.spec == agent.spec
    got, (got_z, _) = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(got, actions)
    np.testing.assert_array_equal(got_z, z)


@pytest.mark.parametrize("kind", REFUSED)
def test_observations_no_encoder_takes_are_refused_at_from_dataset(name, kind, refused_datasets):
    _, says = REFUSED[kind]
    with pytest.raises(ValueError, match=f"No observation encoder takes.*{says}.*Supported parts"):
        agent_class(name).from_dataset(refused_datasets[kind], seed=SEED, **settings_for(name))


# --------------------------------------------------------------------------- a new composition
# A composition registered in latent_skills is parametrised above from the registry. A composition of
# one's own is a few lines (the README's GoalQ: LDGC's goal-conditioned prior + LDCQ's Q selector);
# its name here, with the stages learn() runs and its settings beyond TINY, puts it under the contract.
@dataclass
class GoalQConfig(LDCQConfig, LDGCConfig):
    pass


@register_agent
class GoalQ(LatentSkillAgent):
    config_class = GoalQConfig
    stages = (SkillsStage, GoalPriorStage, QStage)
    prior, selector = GoalDiffusionPrior, QArgmax


EXTRA_AGENTS: dict[str, Contract] = {
    "GoalQ": Contract(("skills", "prior", "q"), {"hindsight_horizons": 1.0}),
}
