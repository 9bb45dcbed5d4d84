"""Evaluation-env settings that would hang or abort an evaluation (issue #25): a time limit that never
ends (-1, 1e30, 10**30), render_mode "human" (a window per step; SIGABRT without a display), a huge
maze. From a checkpoint or a Minari dataset: the agent still loads (nothing is lost), and evaluate,
push and video refuse the env at once with one error that names the fix (env=)."""

from __future__ import annotations

import json
import time

import gymnasium as gym
import pytest
from agent_helpers import TINY
from conftest import record_env_buffers, write_dataset

from latent_skills import LDCQ, LatentSkillAgent
from latent_skills.checkpoint import seal_config
from latent_skills.envs import UntrustedEnvSpecError
from latent_skills.envs.safe_make import MAX_EPISODE_STEPS, MAX_MAZE_CELLS, EnvRecord, settings_problem
from latent_skills.hub import push_to_hub

POINTMAZE = "PointMaze_UMaze-v3"
HUGE_MAZE = [[1] * 1000 for _ in range(1000)]
BAD = {
    "time limit -1": ({}, -1),
    "time limit 10**30": ({}, 10**30),
    "time limit 1e30": ({}, 1e30),
    "time limit 0": ({}, 0),
    "render_mode human": ({"render_mode": "human"}, 20),
    "a 1000 x 1000 maze": ({"maze_map": HUGE_MAZE}, 20),
    "megabytes of kwargs": ({"continuing_task": True, "padding": "x" * (1 << 20)}, 20),
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        env = gym.make(POINTMAZE, max_episode_steps=30)
        dataset = write_dataset("test/settings/maze-v0", record_env_buffers(env, 3, 30, seed=0), env=env)
        env.close()
        return LDCQ.from_dataset(dataset, device="cpu", **TINY)


def test_the_bounds_and_what_they_allow():
    assert settings_problem({}, None) is None and settings_problem({}, MAX_EPISODE_STEPS) is None
    assert settings_problem({"render_mode": "rgb_array"}, 1000) is None
    side = int(MAX_MAZE_CELLS**0.5)
    assert settings_problem({"maze_map": [[1] * side for _ in range(side)]}, 1000) is None
    for kwargs, steps in BAD.values():
        assert settings_problem(kwargs, steps) is not None


@pytest.mark.parametrize("case", [case for case, (_, steps) in BAD.items() if not isinstance(steps, float)])
def test_a_checkpoint_with_a_hanging_env_loads_and_evaluate_refuses_it_at_once(agent, tmp_path, case):
    kwargs, steps = BAD[case]
    folder = agent.save(tmp_path / "ck")
    meta = json.loads((folder / "config.json").read_text())
    meta["spec"]["eval_env_spec"] = {"id": POINTMAZE, "kwargs": kwargs, "max_episode_steps": steps}
    (folder / "config.json").write_text(json.dumps(seal_config(meta)))
    loaded = LatentSkillAgent.load(folder)  # the agent itself is fine: nothing is lost
    start = time.perf_counter()
    with pytest.raises(UntrustedEnvSpecError, match=r"is not built: .*Pass the env yourself.*env=gym.make"):
        loaded.evaluate(n_episodes=1)
    with pytest.raises(UntrustedEnvSpecError, match="is not built"):
        push_to_hub(loaded, "me/never", eval_episodes=1, video=False, endpoint="http://127.0.0.1:9")
    assert time.perf_counter() - start < 10
    # with an env of the caller's own it evaluates
    results = loaded.evaluate(env=gym.make(POINTMAZE, max_episode_steps=5), n_episodes=1)
    assert results["n_episodes"] == 1


def test_a_float_time_limit_from_a_dataset_is_recorded_as_an_integer_and_refused_when_built(agent, tmp_path):
    spec = gym.spec(POINTMAZE)
    record = EnvRecord.from_spec(
        gym.envs.registration.EnvSpec(POINTMAZE, spec.entry_point, max_episode_steps=1e30), trusted=False
    )
    assert record.max_episode_steps == int(1e30) and isinstance(record.max_episode_steps, int)
    with pytest.raises(UntrustedEnvSpecError, match="within 1..100,000"):
        record.make()
    with pytest.raises(UntrustedEnvSpecError, match="not an integer"):
        EnvRecord.from_spec(
            gym.envs.registration.EnvSpec(POINTMAZE, spec.entry_point, max_episode_steps=10.5), trusted=False
        )


def test_a_dataset_whose_eval_env_would_hang_is_refused_when_built(minari_root):
    env = gym.make(POINTMAZE, max_episode_steps=10)
    dataset = write_dataset("test/settings/hang-v0", record_env_buffers(env, 2, 10, seed=0), env=env)
    env.close()
    spec = gym.spec(POINTMAZE)
    record = EnvRecord.from_spec(spec, trusted=True)
    for kwargs, steps in BAD.values():
        bad = EnvRecord(record.id, {**record.kwargs, **kwargs}, steps)
        start = time.perf_counter()
        with pytest.raises(UntrustedEnvSpecError, match="is not built"):
            bad.make(f"Minari dataset {dataset.spec.dataset_id!r}")
        assert time.perf_counter() - start < 5
    with pytest.raises(UntrustedEnvSpecError, match="max_episode_steps=-1"):
        record.make("the caller", max_episode_steps=-1)


def test_a_stored_kitchen_env_evaluates_without_the_passive_checkers_warnings():
    """Gymnasium's passive checker warned about FrankaKitchen's shared observation arrays on every
    evaluation (issue 24): envs built from a stored record skip it unless the caller asks for it."""
    import warnings

    from gymnasium.wrappers.common import PassiveEnvChecker

    from latent_skills.envs.robotics import register_robotics_envs

    register_robotics_envs()
    record = EnvRecord("FrankaKitchen-v1", {"tasks_to_complete": ["microwave"]}, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = record.make()
        env.reset(seed=0)
        for _ in range(3):
            env.step(env.action_space.sample())
    assert not [w for w in caught if "passive_env_checker" in w.filename], [str(w.message) for w in caught]
    wrappers = []
    while isinstance(env, gym.Wrapper):
        wrappers.append(type(env))
        env = env.env
    assert PassiveEnvChecker not in wrappers
    asked = record.make("the caller", disable_env_checker=False)
    assert isinstance(asked.env, PassiveEnvChecker) or isinstance(asked.env.env, PassiveEnvChecker)
