"""A checkpoint or a dataset is data: loading, evaluating, pushing or plotting it never imports or
calls anything it names (DESIGN.md, "Trust"). Envs are built from registered ids with JSON kwargs.

Every malicious spec here would, if trusted, run a command or import a module that writes a marker
file; each test checks the clear error and that the marker was never written."""

from __future__ import annotations

import base64
import json
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from agent_helpers import TINY
from click.testing import CliRunner
from conftest import record_env_buffers, write_dataset
from gymnasium.envs.registration import EnvSpec
from hub_server import FakeHub
from huggingface_hub import constants
from minari.storage.datasets_root_dir import get_dataset_path

from latent_skills import LDCQ, LatentSkillAgent
from latent_skills.agents.ldcp import LDCP
from latent_skills.checkpoint import seal_config
from latent_skills.cli import main
from latent_skills.config import LDCPConfig
from latent_skills.data import load_dataset
from latent_skills.data.loading import make_eval_env
from latent_skills.envs import UntrustedEnvSpecError
from latent_skills.hub import from_pretrained, push_to_hub

POINTMAZE = "PointMaze_UMaze-v3"
TRAP = "latent_skills_trap"  # a module whose import, or whose evil(), writes the marker
TOKEN = "hf_test_token"


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def marker(tmp_path, monkeypatch):
    """The file a successful attack writes; the trap module is importable but must stay unimported."""
    path = tmp_path / "PWNED"
    trap_dir = tmp_path / "trap"
    trap_dir.mkdir()
    (trap_dir / f"{TRAP}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(path)!r}).write_text('imported')\n"
        "def evil(*args, **kwargs):\n"
        f"    pathlib.Path({str(path)!r}).write_text('called')\n"
    )
    monkeypatch.syspath_prepend(str(trap_dir))
    yield path
    sys.modules.pop(TRAP, None)


def assert_untouched(marker: Path) -> None:
    assert not marker.exists(), f"the attack ran: {marker.read_text()}"
    assert TRAP not in sys.modules


@pytest.fixture(scope="module")
def maze_dataset(tmp_path_factory):
    """A tiny PointMaze dataset (its env_spec is the registered PointMaze) in a module-wide store."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        env = gym.make(POINTMAZE, max_episode_steps=30)
        dataset = write_dataset("test/trust/maze-v0", record_env_buffers(env, 3, 30, seed=0), env=env)
        env.close()
        yield dataset


@pytest.fixture(scope="module")
def agent(maze_dataset):
    return LDCQ.from_dataset(maze_dataset, device="cpu", **TINY)


def evil_specs(marker: Path) -> dict[str, str | dict]:
    """Stored evaluation envs that would run code if trusted, in the old (whole EnvSpec) and new forms."""
    command = {"command": f"echo system > {marker}"}
    registered = gym.spec(POINTMAZE)
    wrapper = {"name": "Evil", "entry_point": f"{TRAP}:evil", "kwargs": {}}
    return {
        "registered id, os:system": EnvSpec(POINTMAZE, entry_point="os:system", kwargs=command).to_json(),
        "unregistered id, os:system": EnvSpec("Evil-v0", entry_point="os:system", kwargs=command).to_json(),
        "module:id import": {"id": f"{TRAP}:Evil-v0", "kwargs": {}, "max_episode_steps": None},
        "extra wrapper": {**json.loads(registered.to_json()), "additional_wrappers": [wrapper]},
        "vector entry point": {**json.loads(registered.to_json()), "vector_entry_point": f"{TRAP}:evil"},
        "an env that makes the env its kwargs name": {
            "id": "GymV26Environment-v0",
            "kwargs": {"env_id": f"{TRAP}:Evil-v0"},
        },
        "new form claiming an entry point": {
            "id": POINTMAZE,
            "kwargs": {},
            "max_episode_steps": 10,
            "entry_point": f"{TRAP}:evil",
        },
    }


def tamper(folder: Path, eval_env_spec: str | dict, **meta_updates) -> Path:
    config = folder / "config.json"
    meta = json.loads(config.read_text())
    meta["spec"]["eval_env_spec"] = eval_env_spec
    meta.update(meta_updates)
    config.write_text(json.dumps(seal_config(meta)))  # a hostile uploader writes a valid hash
    return folder


def cli_error(result) -> str:
    """The message of a failed command: a ClickException's output or the exception it raised."""
    assert result.exit_code != 0, result.output
    extra = "" if isinstance(result.exception, SystemExit) else f"{result.exception}"
    return result.output + extra


FIXES = ("register", "env=")


# ------------------------------------------------------------------------------------------ checkpoints
def test_new_checkpoints_store_only_id_json_kwargs_and_time_limit(agent, tmp_path):
    meta = json.loads((agent.save(tmp_path / "ok") / "config.json").read_text())
    stored = meta["spec"]["eval_env_spec"]
    assert set(stored) == {"id", "kwargs", "max_episode_steps"}
    assert stored["id"] == POINTMAZE and stored["max_episode_steps"] == 30
    loaded = LatentSkillAgent.load(tmp_path / "ok", device="cpu")
    assert loaded.spec == agent.spec and loaded.spec.env_id == POINTMAZE
    env = loaded.spec.make_env()
    assert loaded.spec.is_eval_env(env.spec) and env.spec.max_episode_steps == 30
    env.close()


def test_an_older_checkpoint_with_a_whole_env_spec_still_evaluates(agent, tmp_path):
    ours = agent.spec.eval_env
    legacy = EnvSpec(
        POINTMAZE,
        entry_point=gym.spec(POINTMAZE).entry_point,
        kwargs=ours.kwargs,
        max_episode_steps=ours.max_episode_steps,
    ).to_json()
    loaded = LatentSkillAgent.load(tamper(agent.save(tmp_path / "old"), legacy), device="cpu")
    assert loaded.spec.env_id == POINTMAZE
    result = loaded.evaluate(n_episodes=1)
    assert result["n_episodes"] == 1 and result["episode_lengths"] == [30]


@pytest.mark.parametrize(
    "case",
    [
        "registered id, os:system",
        "unregistered id, os:system",
        "module:id import",
        "extra wrapper",
        "vector entry point",
        "an env that makes the env its kwargs name",
        "new form claiming an entry point",
    ],
)
def test_a_malicious_checkpoint_is_refused_by_load_then_evaluate(agent, tmp_path, marker, case):
    folder = tamper(agent.save(tmp_path / "evil"), evil_specs(marker)[case])
    loaded = LatentSkillAgent.load(folder, device="cpu")  # loading builds nothing
    with pytest.raises(UntrustedEnvSpecError) as info:
        loaded.evaluate(n_episodes=1)
    assert all(fix in str(info.value) for fix in FIXES), str(info.value)
    with pytest.raises(UntrustedEnvSpecError):
        loaded.spec.make_env()
    # re-saving does not launder the spec: the copy is refused too
    again = LatentSkillAgent.load(loaded.save(tmp_path / "copy"), device="cpu")
    with pytest.raises(UntrustedEnvSpecError):
        again.evaluate(n_episodes=1)
    # the way out: pass the env
    env = gym.make(POINTMAZE, max_episode_steps=5)
    assert loaded.evaluate(env, n_episodes=1)["episode_lengths"] == [5]
    assert_untouched(marker)


def test_cli_evaluate_refuses_a_malicious_checkpoint(agent, tmp_path, marker):
    folder = tamper(agent.save(tmp_path / "evil"), evil_specs(marker)["registered id, os:system"])
    result = CliRunner().invoke(main, ["evaluate", str(folder), "--episodes", "1", "--device", "cpu"])
    message = cli_error(result)
    assert "os:system" in message and all(fix in message for fix in FIXES), message
    assert_untouched(marker)


def test_malformed_stored_envs_are_a_checkpoint_error(agent, tmp_path):
    from latent_skills.hub import CheckpointError

    for bad in (
        "{not json",
        {"kwargs": {}},
        {"id": POINTMAZE, "kwargs": []},
        {"id": POINTMAZE, "shell": "x"},
    ):
        folder = tamper(agent.save(tmp_path / "bad"), bad)
        with pytest.raises(CheckpointError, match="evaluation env"):
            LatentSkillAgent.load(folder, device="cpu")


# ------------------------------------------------------------------------------------------ the Hub
@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A loopback Hub (as in test_hub.py), huggingface_hub pointed at it, caches in tmp_path."""
    server = FakeHub(require_token=TOKEN).start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setattr(
        constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf-home" / "harnesses"), raising=False
    )
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.stop()


def upload(hub: FakeHub, repo_id: str, folder: Path) -> None:
    """Publish a folder as an attacker would: straight into the repo, whatever it holds."""
    hub.create(repo_id, private=False)
    files = [
        {
            "key": "file",
            "value": {
                "path": p.name,
                "encoding": "base64",
                "content": base64.b64encode(p.read_bytes()).decode(),
            },
        }
        for p in folder.iterdir()
        if p.is_file()
    ]
    hub.commit(repo_id, [{"key": "header", "value": {"summary": "a helpful agent"}}, *files])


def test_from_pretrained_and_push_refuse_a_malicious_hub_checkpoint(agent, tmp_path, marker, hub):
    folder = tamper(agent.save(tmp_path / "evil"), evil_specs(marker)["registered id, os:system"])
    upload(hub, "mallory/agent", folder)
    loaded = from_pretrained(LatentSkillAgent, "mallory/agent", device="cpu")
    with pytest.raises(UntrustedEnvSpecError, match="register"):
        loaded.evaluate(n_episodes=1)
    result = CliRunner().invoke(main, ["evaluate", "mallory/agent", "--episodes", "1", "--device", "cpu"])
    assert all(fix in cli_error(result) for fix in FIXES)
    with pytest.raises(UntrustedEnvSpecError):
        push_to_hub(loaded, "me/copy", token=TOKEN, eval_episodes=1, eval_envs=1)
    assert "me/copy" not in hub.repos  # refused before anything was uploaded
    assert_untouched(marker)


# ------------------------------------------------------------------------------------------ plots
def test_plot_world_model_refuses_a_malicious_checkpoint(maze_dataset, tmp_path, marker):
    pytest.importorskip("matplotlib")
    from latent_skills.plots import plot_world_model

    settings = {k: v for k, v in TINY.items() if k in LDCPConfig.field_names()}
    ldcp = LDCP.from_dataset(maze_dataset, device="cpu", **settings)
    folder = tamper(
        ldcp.save(tmp_path / "evil"),
        evil_specs(marker)["registered id, os:system"],
        stages_completed=list(LDCP.stage_names()),  # as if trained: the figure gets as far as the env
    )
    loaded = LatentSkillAgent.load(folder, device="cpu")
    with pytest.raises(UntrustedEnvSpecError, match="register"):
        plot_world_model(loaded, tmp_path / "fig.png", n_samples=4)
    out = tmp_path / "cli.png"
    result = CliRunner().invoke(
        main, ["plot", "world-model", str(folder), "--out", str(out), "--samples", "4"]
    )
    assert all(fix in cli_error(result) for fix in FIXES) and not out.exists()
    assert_untouched(marker)


# ------------------------------------------------------------------------------------------ datasets
def rewrite_metadata(dataset_id: str, **changes) -> None:
    path = get_dataset_path(dataset_id) / "data" / "metadata.json"
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


@pytest.fixture
def maze_data_id(minari_root):
    env = gym.make(POINTMAZE, max_episode_steps=20)
    write_dataset("test/trust/evil-v0", record_env_buffers(env, 2, 20, seed=1), env=env)
    env.close()
    return "test/trust/evil-v0"


def test_a_dataset_eval_env_naming_other_code_is_refused(maze_data_id, marker):
    specs = evil_specs(marker)
    rewrite_metadata(maze_data_id, eval_env_spec=specs["registered id, os:system"])
    dataset = load_dataset(maze_data_id)
    with pytest.raises(UntrustedEnvSpecError, match="Pass env="):
        LDCQ.from_dataset(dataset, device="cpu", **TINY)
    with pytest.raises(UntrustedEnvSpecError):
        make_eval_env(dataset)
    # the way out: name the registered env
    agent = LDCQ.from_dataset(dataset, env=POINTMAZE, device="cpu", **TINY)
    assert agent.spec.env_id == POINTMAZE

    # an id this process has not registered: training works, evaluating says how to fix it
    rewrite_metadata(maze_data_id, eval_env_spec=specs["unregistered id, os:system"])
    agent = LDCQ.from_dataset(maze_data_id, device="cpu", **TINY)
    assert agent.spec.env_id == "Evil-v0"
    with pytest.raises(UntrustedEnvSpecError, match="not registered"):
        agent.evaluate(n_episodes=1)
    assert_untouched(marker)


def test_a_dataset_without_stored_spaces_is_not_built_from_its_env_spec(maze_data_id, marker):
    # Minari builds the env_spec's env to learn missing spaces: that must not run what the data names
    evil = evil_specs(marker)["registered id, os:system"]
    rewrite_metadata(maze_data_id, action_space=None, env_spec=evil)
    with pytest.raises(UntrustedEnvSpecError, match="os:system"):
        load_dataset(maze_data_id)
    with pytest.raises(UntrustedEnvSpecError):
        LDCQ.from_dataset(maze_data_id, device="cpu", **TINY)
    assert_untouched(marker)


# ------------------------------------------------------------------------------------------ class entry points
class TinyEnv(gym.Env):
    """Three-dimensional observations, a 2-D action in [-high, high]; ends after ``length`` steps."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)

    def __init__(self, length: int = 3, high: float = 1.0, extra: object = None) -> None:
        self.length, self.extra = length, extra
        self.action_space = gym.spaces.Box(-high, high, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3), {}

    def step(self, action):
        self.t += 1
        return np.full(3, float(self.t)), 1.0, self.t >= self.length, False, {}


@pytest.fixture
def tiny_id():
    env_id = "LatentSkillsTrustTiny-v0"
    gym.register(env_id, entry_point=TinyEnv, kwargs={"length": 3})
    yield env_id
    gym.registry.pop(env_id, None)


def test_an_env_registered_with_a_class_is_recorded_by_id(box_dataset, tiny_id, tmp_path):
    agent = LDCQ.from_dataset(box_dataset, env=gym.make(tiny_id, length=4), device="cpu", **TINY)
    stored = json.loads((agent.save(tmp_path / "tiny") / "config.json").read_text())["spec"]["eval_env_spec"]
    assert stored == {"id": tiny_id, "kwargs": {"length": 4}, "max_episode_steps": None}
    loaded = LatentSkillAgent.load(tmp_path / "tiny", device="cpu")
    assert loaded.evaluate(n_episodes=2)["episode_lengths"] == [4, 4]

    gym.registry.pop(tiny_id)  # a process that has not registered it
    with pytest.raises(UntrustedEnvSpecError, match="not registered") as info:
        loaded.evaluate(n_episodes=1)
    assert "gym.register" in str(info.value) and "env=" in str(info.value)
    assert loaded.evaluate(TinyEnv(length=2), n_episodes=1)["episode_lengths"] == [2]


def test_non_json_kwargs_are_refused_unless_the_registration_supplies_them(box_dataset, tiny_id):
    with pytest.raises(ValueError, match="kwarg 'extra' is a object"):
        LDCQ.from_dataset(box_dataset, env=gym.make(tiny_id, extra=object()), device="cpu", **TINY)
    gym.register("LatentSkillsTrustTinyObj-v0", entry_point=TinyEnv, kwargs={"extra": {1, 2}})
    try:
        # equal to the registered value (gym.make hands the env a copy): left to the registry, silently
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            agent = LDCQ.from_dataset(
                box_dataset, env=gym.make("LatentSkillsTrustTinyObj-v0"), device="cpu", **TINY
            )
        assert agent.spec.eval_env.kwargs == {}
        env = agent.spec.make_env()
        assert env.unwrapped.extra == {1, 2} and agent.spec.is_eval_env(env.spec)
        # another value: not recorded either, and the warning says so
        with pytest.warns(UserWarning, match="kwarg 'extra'.*not recorded"):
            LDCQ.from_dataset(box_dataset, env=gym.make("LatentSkillsTrustTinyObj-v0", extra={3}), **TINY)
    finally:
        gym.registry.pop("LatentSkillsTrustTinyObj-v0", None)


def test_wrappers_of_a_given_env_are_not_recorded_and_say_so(box_dataset, tiny_id):
    wrapped = gym.wrappers.ClipReward(gym.make(tiny_id), 0.0, 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent = LDCQ.from_dataset(box_dataset, env=wrapped, device="cpu", **TINY)
    assert any("additional_wrappers" in str(w.message) for w in caught)
    assert agent.spec.make_env().spec.additional_wrappers == ()


# ------------------------------------------------------------------------------------------ action spaces
def test_evaluating_on_an_env_with_another_action_space_is_refused(box_dataset, tiny_id, tmp_path):
    agent = LDCQ.from_dataset(box_dataset, device="cpu", **TINY)
    wide = gym.make(tiny_id, high=2.0)
    with pytest.raises(ValueError, match="action space") as info:
        agent.evaluate(wide, n_episodes=1)
    message = str(info.value)
    assert "Box(-2.0, 2.0, (2,)" in message and "Box(low=[-1.0, -1.0]" in message
    gym.register("LatentSkillsTrustWide-v0", entry_point=TinyEnv, kwargs={"high": 2.0})
    try:
        with pytest.raises(ValueError, match="action space"):
            agent.evaluate("LatentSkillsTrustWide-v0", n_episodes=1)
        # a checkpoint naming a registered env of another action space: refused before any episode
        folder = tamper(agent.save(tmp_path / "wide"), {"id": "LatentSkillsTrustWide-v0"})
        with pytest.raises(ValueError, match="action space"):
            LatentSkillAgent.load(folder, device="cpu").evaluate(n_episodes=1)
    finally:
        gym.registry.pop("LatentSkillsTrustWide-v0", None)
