"""Start-up cost: importing the package and the command's help load no heavy library (issue #21).

Each check runs in a fresh interpreter and reads ``sys.modules`` there (not the time it took: the
machines are shared). The lazy names must still be the public API: every name of every lazy
package's ``__all__`` resolves to the object its module defines, and the registry finds every agent
without ``latent_skills.agents`` having imported them.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest
from agent_helpers import TINY
from conftest import record_env_buffers, write_dataset

import latent_skills
from latent_skills.agents import registry
from latent_skills.config import LDGCConfig

REPO = Path(__file__).resolve().parent.parent
# What importing the package or asking the command for help must not load.
HEAVY = (
    "torch",
    "stable_baselines3",
    "minari",
    "gymnasium",
    "gymnasium_robotics",
    "mujoco",
    "matplotlib",
    "huggingface_hub",
    "ray",
    "wandb",
)
LAZY_PACKAGES = (
    "latent_skills",
    "latent_skills.agents",
    "latent_skills.data",
    "latent_skills.envs",
    "latent_skills.hub",
    "latent_skills.plots",
    "latent_skills.loggers",
)


def loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The HEAVY modules in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print("\\nLOADED=" + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.rsplit("LOADED=", 1)[1])


def cli(*args: str) -> str:
    """Run the command as its console script does (``from latent_skills.cli import main``), keeping
    the interpreter alive after click exits."""
    return f"""
        import sys
        from latent_skills.cli import main
        try:
            main({list(args)!r}, prog_name="latent-skills")
        except SystemExit:
            pass
    """


def test_import_latent_skills_loads_no_heavy_library():
    assert loaded_after("import latent_skills") == []


def test_importing_the_config_and_the_registry_loads_no_heavy_library():
    code = "from latent_skills import LDCQConfig, ConfigError\nfrom latent_skills.agents import agent_names"
    assert loaded_after(code) == []


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def test_help_of_every_command_loads_no_heavy_library():
    from latent_skills.cli import main

    every = [(), *_commands(main)]
    code = "".join(cli(*command, "--help") for command in every)
    assert loaded_after(code) == []


def test_listing_and_printing_recipes_loads_no_heavy_library():
    assert loaded_after(cli("recipes") + cli("recipes", "ldcq-kitchen-mixed", "--json")) == []


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--set", "no_such_field=1"),
        ("train", "--agent", "LDQC"),
        ("train", "--recipe", "no-such-recipe"),
        ("train", "--log", "no-such-format"),
    ],
)
def test_train_reports_a_bad_command_line_without_torch(args, tmp_path):
    assert loaded_after(cli(*args), env={"MINARI_DATASETS_PATH": str(tmp_path)}) == []


def test_train_reports_an_unknown_dataset_without_torch(tmp_path):
    loaded = loaded_after(cli("train", "no/such-dataset-v0"), env={"MINARI_DATASETS_PATH": str(tmp_path)})
    assert "torch" not in loaded and "stable_baselines3" not in loaded


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_names_are_the_modules_objects(package):
    module = importlib.import_module(package)
    exports = module.__dict__.get("_EXPORTS", {})
    for name in module.__all__:
        value = getattr(module, name)
        if name in exports:  # the very object its module defines, not a copy
            origin = importlib.import_module(exports[name], package)
            assert value is getattr(origin, name), name
    assert set(exports) <= set(module.__all__)
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_public_api_from_a_fresh_interpreter():
    code = """
        from latent_skills import (
            BCQH, LDCP, LDCQ, LDGC, LatentDiffuser, LatentSkillAgent, SkillEnv, load_agent, latent_bounds,
        )
        assert all(issubclass(c, LatentSkillAgent) for c in (BCQH, LDCP, LDCQ, LDGC, LatentDiffuser))
        import latent_skills
        assert latent_skills.SkillEnv is SkillEnv
    """
    assert "torch" in loaded_after(code)  # the names load what they need


def test_builtin_agents_are_known_before_they_load():
    assert registry.agent_names()[: len(registry.BUILTIN_AGENTS)] == tuple(registry.BUILTIN_AGENTS)
    for name, (module, config_name) in registry.BUILTIN_AGENTS.items():
        cls = registry.agent_class(name.lower())
        assert cls.__name__ == name and cls.__module__ == module
        assert registry.config_class(name) is cls.config_class
        assert cls.config_class.__name__ == config_name
        assert cls is getattr(latent_skills, name)


def test_loading_a_checkpoint_finds_its_agent_in_a_fresh_interpreter(minari_root, tmp_path):
    """Nothing but the registry imports LDGC here: ``LatentSkillAgent.load`` must find it."""
    from latent_skills import LDGC

    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=40)
    dataset = write_dataset("test/pointmaze/random-v0", record_env_buffers(env, 4, 40, seed=3), env=env)
    settings = {k: v for k, v in TINY.items() if k in LDGCConfig.field_names()}
    LDGC.from_dataset(dataset, **settings).save(tmp_path / "ldgc")
    code = f"""
        import sys
        from latent_skills import LatentSkillAgent
        agent = LatentSkillAgent.load({str(tmp_path / "ldgc")!r}, device="cpu")
        assert type(agent).__name__ == "LDGC", type(agent)
        assert "latent_skills.agents.ldcq" not in sys.modules  # only the agent asked for loaded
    """
    assert "torch" in loaded_after(code)


def test_registering_the_robotics_envs_prints_nothing():
    """Gymnasium-Robotics prints an Adroit notice at import; it opened every command (issue 24)."""
    code = (
        "from latent_skills.envs.robotics import register_robotics_envs\n"
        "register_robotics_envs()\n"
        "import gymnasium as gym\n"
        "print(gym.spec('PointMaze_UMaze-v3').id, gym.spec('latent-skills/PointMazePixels-v0').id)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True, timeout=120
    )
    assert result.stdout.split() == ["PointMaze_UMaze-v3", "latent-skills/PointMazePixels-v0"]
    assert result.stderr == ""
