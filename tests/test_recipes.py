"""Training recipes (agents/*.toml): every shipped one validates, bad ones fail clearly, and
`latent-skills train --recipe` trains what the recipe says unless the command line says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_helpers import TINY
from click.testing import CliRunner

from latent_skills.agents.spec import default_horizon
from latent_skills.cli import AGENT_NAMES, main
from latent_skills.config import ConfigError
from latent_skills.recipes import Recipe, RecipeError, available_recipes, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "agents"
SHIPPED = available_recipes(RECIPES)


def test_recipes_are_shipped_and_listed_in_their_readme():
    assert len(SHIPPED) >= 20 and RECIPES / "ldcq-pointmaze-umaze-quick.toml" in SHIPPED
    readme = (RECIPES / "README.md").read_text()
    assert all(f"({recipe.name})" in readme for recipe in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipe_validates_against_its_agent(path):
    recipe = load_recipe(path)  # validates every [config] field through the agent's config class
    config = recipe.agent_config()
    assert recipe.agent in AGENT_NAMES and path.stem.startswith(recipe.agent.lower() + "-")
    assert recipe.description and recipe.eval_episodes > 0
    # the paper's H for the task (mazes 30, kitchen 20, otherwise 10) and the preset the name says
    assert config.horizon == recipe.horizon == default_horizon(recipe.dataset)
    assert recipe.preset == ("quick" if path.stem.endswith("-quick") else "paper")


def _write(tmp_path: Path, text: str, name: str = "recipe.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = 'agent = "LDCQ"\ndataset = "test/box/mixed-v0"\n'


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        (BASE + "horizn = 5\n", "Did you mean 'horizon'?"),
        (BASE + "skills_steps = 5\n", "It is a config field: move it below the [config] header"),
        ('agent = "LDQC"\ndataset = "test/box/mixed-v0"\n', "Did you mean 'LDCQ'?"),
        (BASE + "[config]\nskils_steps = 5\n", "Did you mean 'skills_steps'?"),
        (BASE + "[config]\neval_episodes = 5\n", "move it above the [config] table"),
        (BASE + 'horizon = "5"\n', "horizon must be a positive integer"),
        (BASE + 'preset = "fast"\n', "['paper', 'quick']"),
        ('dataset = "test/box/mixed-v0"\n', "missing 'agent'"),
        ('agent = "LDCQ\n', "not valid TOML"),
    ],
    ids=["key", "config-at-top", "agent", "field", "key-in-config", "type", "preset", "missing", "toml"],
)
def test_bad_recipe_names_the_file_and_the_fix(tmp_path, text, fix):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:  # RecipeError is a ConfigError (a ValueError)
        load_recipe(path)
    assert isinstance(error.value, RecipeError)
    assert str(error.value).startswith(f"{path}: ") and fix in str(error.value)


def test_recipe_defaults_and_overrides(tmp_path):
    recipe = load_recipe(_write(tmp_path, BASE + '[config]\nsampler = "ddim"\n'))
    assert recipe == Recipe(agent="LDCQ", dataset="test/box/mixed-v0", config={"sampler": "ddim"})
    assert recipe.overrides() == {"sampler": "ddim"}  # H left to from_dataset: the task's own
    assert recipe.agent_config().horizon == 10 and recipe.agent_config().sampler == "ddim"
    # the quick preset replans every 5 steps; a shorter H falls back to H, as from_dataset does
    text = 'agent = "bcqh"\ndataset = "test/box/mixed-v0"\npreset = "quick"\nhorizon = 3\n'
    short = load_recipe(_write(tmp_path, text, "short.toml"))
    assert short.agent == "BCQH" and short.agent_config().exec_horizon is None


def _tiny_recipe(tmp_path: Path, dataset: str, eval_episodes: int) -> Path:
    config = {k: v for k, v in TINY.items() if k != "horizon"}
    lines = [f"{k} = {list(v) if isinstance(v, tuple) else v}" for k, v in config.items()]
    return _write(
        tmp_path,
        f'agent = "LDCQ"\ndataset = "{dataset}"\npreset = "quick"\nhorizon = {TINY["horizon"]}\n'
        f'eval_episodes = {eval_episodes}\ndescription = "tiny test recipe"\n\n[config]\n' + "\n".join(lines),
        f"tiny-{eval_episodes}.toml",
    )


def test_train_with_a_recipe_and_command_line_overrides(minari_root, tmp_path):
    from latent_skills.data.makers import collect_pointmaze

    dataset = collect_pointmaze("umaze", steps=1200, seed=1, ref_episodes=2, progress=False)
    dataset_id = dataset.spec.dataset_id
    out = tmp_path / "run"
    recipe = _tiny_recipe(tmp_path, dataset_id, eval_episodes=1)
    args = [
        "train",
        "--recipe",
        str(recipe),
        "--out",
        str(out),
        "--eval-envs",
        "1",
        "--set",
        "act_candidates=3",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "tiny test recipe" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["agent_type"] == "LDCQ"
    config = saved["config"]
    assert (config["horizon"], config["skills_steps"], config["latent_dim"]) == (5, 30, 4)  # the recipe's
    assert config["exec_horizon"] == 5  # the recipe's quick preset (paper: None)
    assert config["act_candidates"] == 3  # --set beats the recipe's 8
    assert json.loads((out / "eval.json").read_text())["n_episodes"] == 1  # the recipe's eval_episodes

    # DATASET, --agent, --preset and --eval-episodes on the command line beat the recipe's
    elsewhere = _tiny_recipe(tmp_path, "nobody/nothing/none-v0", eval_episodes=5)
    out = tmp_path / "bcqh"
    args = ["train", dataset_id, "--recipe", str(elsewhere), "--agent", "BCQH", "--preset", "paper"]
    result = CliRunner().invoke(main, [*args, "--eval-episodes", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["agent_type"] == "BCQH" and saved["config"]["exec_horizon"] is None
    assert saved["config"]["skills_steps"] == 30 and not (out / "eval.json").exists()


def test_train_recipe_errors_are_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agents").mkdir()
    _write(tmp_path / "agents", BASE, "ldcq-box.toml")
    result = CliRunner().invoke(main, ["train", "--recipe", "agents/ldcq-bx.toml"])
    assert result.exit_code == 2 and "--recipe" in result.output
    assert "agents/ldcq-bx.toml does not exist" in result.output and "agents/ldcq-box.toml" in result.output

    bad = _write(tmp_path, BASE + "[config]\nskils_steps = 3\n", "bad.toml")
    result = CliRunner().invoke(main, ["train", "--recipe", str(bad)])
    assert result.exit_code == 1 and "Did you mean 'skills_steps'" in result.output
    assert "Traceback" not in result.output


def test_train_help_says_the_command_line_overrides_the_recipe():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0 and "--recipe" in result.output and "override" in result.output
