"""Training recipes (latent_skills/recipe_data/*.toml, shown as agents/ in a checkout): they ship in
the wheel and load by name from any folder, every one validates, bad ones fail clearly, `latent-skills
recipes` lists them, and `latent-skills train --recipe` trains what the recipe says unless the command
line says otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from agent_helpers import TINY
from click.testing import CliRunner

import latent_skills
from latent_skills.agents.registry import agent_names
from latent_skills.agents.spec import default_horizon
from latent_skills.cli import main
from latent_skills.config import ConfigError
from latent_skills.recipes import Recipe, RecipeError, load_recipe, recipe_names, recipe_text

REPO = Path(__file__).resolve().parents[1]
RECIPE_DATA = Path(latent_skills.__file__).parent / "recipe_data"
SHIPPED = recipe_names()


def test_recipes_are_shipped_and_listed_in_their_readme():
    assert len(SHIPPED) >= 20 and "ldcq-pointmaze-umaze-quick" in SHIPPED
    assert sorted(path.stem for path in RECIPE_DATA.glob("*.toml")) == SHIPPED
    # the checkout's top-level agents/ is the package's recipe folder, for browsing
    assert (REPO / "agents").resolve() == RECIPE_DATA.resolve()
    readme = (RECIPE_DATA / "README.md").read_text()
    assert all(f"({name}.toml)" in readme for name in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_validates_against_its_agent(name):
    recipe = load_recipe(name)  # validates every [config] field through the agent's config class
    config = recipe.agent_config()
    assert recipe.agent in agent_names() and name.startswith(recipe.agent.lower() + "-")
    assert recipe.description and recipe.eval_episodes > 0
    # the paper's H for the task (mazes 30, kitchen 20, otherwise 10) and the preset the name says
    assert config.horizon == recipe.horizon == default_horizon(recipe.dataset)
    assert recipe.preset == ("quick" if name.endswith("-quick") else "paper")


def test_recipes_load_by_name_from_any_folder_and_a_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: no agents/ folder here
    shipped = load_recipe("ldcq-kitchen-mixed")
    assert (
        shipped
        == load_recipe("ldcq-kitchen-mixed.toml")
        == load_recipe(RECIPE_DATA / "ldcq-kitchen-mixed.toml")
    )
    assert (shipped.agent, shipped.dataset, shipped.horizon) == ("LDCQ", "D4RL/kitchen/mixed-v2", 20)
    assert recipe_text("ldcq-kitchen-mixed") == (RECIPE_DATA / "ldcq-kitchen-mixed.toml").read_text()
    # an existing path wins over the shipped recipe of the same name
    (tmp_path / "ldcq-kitchen-mixed.toml").write_text(BASE)
    assert load_recipe("ldcq-kitchen-mixed.toml").dataset == "test/box/mixed-v0"
    assert load_recipe("ldcq-kitchen-mixed") == shipped  # no file called that: the shipped one


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ldcq-kitchen-mixd", "unknown recipe 'ldcq-kitchen-mixd'. Did you mean ldcq-kitchen-mixed, "),
        ("kitchen-partial", "Did you mean ldcq-kitchen-partial?"),
        ("agents/ldcq-kitchen-mixed.toml", "does not exist. Did you mean ldcq-kitchen-mixed"),
        ("nothing-like-it", "unknown recipe 'nothing-like-it'. `latent-skills recipes` lists the"),
    ],
)
def test_unknown_recipe_is_one_line_naming_the_close_matches(tmp_path, monkeypatch, name, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        load_recipe(name)
    assert message in str(error.value) and "\n" not in str(error.value)
    result = CliRunner().invoke(main, ["recipes", name])
    assert result.exit_code == 2 and result.output == f"Error: {error.value}\n"


def test_recipes_command_lists_every_shipped_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["recipes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "AGENT", "DATASET", "PRESET", "DESCRIPTION"]
    listed = {line.split()[0]: line.split()[1:4] for line in lines[1 : len(SHIPPED) + 1]}
    assert listed["ldcq-kitchen-mixed"] == ["LDCQ", "D4RL/kitchen/mixed-v2", "paper"]
    assert sorted(listed) == SHIPPED and "train --recipe NAME" in lines[-1]

    result = CliRunner().invoke(main, ["recipes", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["name"] for row in rows] == SHIPPED
    quick = next(row for row in rows if row["name"] == "ldcq-pointmaze-umaze-quick")
    assert quick["preset"] == "quick" and quick["horizon"] == 30 and quick["description"]


def test_recipes_command_prints_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["recipes", "ldgc-antmaze-large-diverse"])
    assert result.exit_code == 0, result.output
    assert result.output == (RECIPE_DATA / "ldgc-antmaze-large-diverse.toml").read_text().rstrip("\n") + "\n"
    result = CliRunner().invoke(main, ["recipes", "ldgc-antmaze-large-diverse.toml", "--json"])
    shown = json.loads(result.output)
    assert shown["name"] == "ldgc-antmaze-large-diverse" and shown["agent"] == "LDGC"
    assert shown["dataset"] == "D4RL/antmaze/large-diverse-v1" and shown["eval_episodes"] == 100


def test_the_wheel_ships_the_recipes(tmp_path):
    """What `pip install` installs holds the recipes (built from a copy, so the checkout stays clean)."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):  # LICENSE: pyproject's license-files
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "latent_skills", source / "latent_skills", ignore=shutil.ignore_patterns("__pycache__")
    )
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
    built = subprocess.run([*command, "-w", str(tmp_path / "dist"), "-q"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("latent_skills-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"latent_skills/recipe_data/{name}.toml" for name in SHIPPED} <= names
    assert "latent_skills/recipe_data/README.md" in names


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


def test_train_with_a_recipe_and_command_line_overrides(umaze, tmp_path):
    dataset_id = umaze.spec.dataset_id
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


def test_train_takes_a_recipe_by_name_from_any_folder(minari_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the shipped recipe is found and read; the (absent, not downloaded) dataset is what stops it
    result = CliRunner().invoke(main, ["train", "--recipe", "ldcq-kitchen-mixed", "--out", "run"])
    assert result.exit_code == 2, result.output
    assert "recipe ldcq-kitchen-mixed: Venkatraman et al. 2023 Table 1, kitchen-mixed-v0" in result.output
    assert "D4RL/kitchen/mixed-v2" in result.output and "Traceback" not in result.output


def test_train_recipe_errors_are_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["train", "--recipe", "ldcq-kitchen-mixd"])
    assert result.exit_code == 2 and "--recipe" in result.output
    assert "unknown recipe 'ldcq-kitchen-mixd'. Did you mean ldcq-kitchen-mixed" in result.output
    result = CliRunner().invoke(main, ["train", "--recipe", "runs/ldcq-bx.toml"])
    assert result.exit_code == 2 and "recipe file runs/ldcq-bx.toml does not exist" in result.output
    result = CliRunner().invoke(main, ["train", "--agent", "LDQC"])
    assert result.exit_code == 2 and "unknown agent 'LDQC'" in result.output

    bad = _write(tmp_path, BASE + "[config]\nskils_steps = 3\n", "bad.toml")
    result = CliRunner().invoke(main, ["train", "--recipe", str(bad)])
    assert result.exit_code == 2 and "Did you mean 'skills_steps'" in result.output
    assert "Traceback" not in result.output


def test_train_help_says_the_command_line_overrides_the_recipe():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0 and "--recipe" in result.output and "override" in result.output
