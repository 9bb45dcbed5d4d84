"""Training recipes: one TOML file per (agent, task) of the papers' tables, kept in ``agents/``.

A recipe names the agent, the Minari dataset, the preset, the skill horizon H, the config fields that
differ from the preset for that task, and how many episodes to evaluate:

    recipe = load_recipe("agents/ldcq-kitchen-mixed.toml")
    agent = recipe.make_agent(download=True).learn()

``latent-skills train --recipe FILE`` does the same from the command line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import agents
from .agents import LatentSkillAgent
from .agents.spec import default_horizon
from .cli import AGENT_NAMES
from .config import AgentConfig, ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is the same parser, published before tomllib
    import tomli as tomllib

DEFAULT_EVAL_EPISODES = 20  # as `latent-skills train --eval-episodes`
RECIPES_FOLDER = Path("agents")  # where `latent-skills train` looks for recipes to list


class RecipeError(ConfigError):
    """A recipe file that cannot be used as written; the message names the file and the fix."""


@dataclass(frozen=True)
class Recipe:
    agent: str  # one of latent_skills.cli.AGENT_NAMES
    dataset: str  # Minari dataset id
    preset: str = "paper"  # "paper" or "quick"
    horizon: int | None = None  # H; None: the task's H from the dataset id (mazes 30, kitchen 20, else 10)
    config: dict[str, Any] = field(default_factory=dict)  # config fields that differ from the preset
    description: str = ""  # what it reproduces: paper, table, row
    eval_episodes: int = DEFAULT_EVAL_EPISODES

    @property
    def agent_class(self) -> type[LatentSkillAgent]:
        return getattr(agents, self.agent)

    def overrides(self) -> dict[str, Any]:
        """The config fields the recipe sets, H included: ``from_dataset``'s ``**config``."""
        return dict(self.config) if self.horizon is None else {**self.config, "horizon": self.horizon}

    def agent_config(self) -> AgentConfig:
        """The config ``make_agent`` builds (seed aside), validated: raises ConfigError."""
        config_class = self.agent_class.config_class
        values = self.overrides()
        values.setdefault("horizon", default_horizon(self.dataset))
        return config_class.from_preset(self.preset, **values)

    def make_agent(self, **options: Any) -> LatentSkillAgent:
        """An untrained agent on the recipe's dataset; ``options`` (``seed``, ``device``, ``download``,
        ``env``, ``preset`` or any config field) override the recipe."""
        preset = options.pop("preset", self.preset)
        return self.agent_class.from_dataset(self.dataset, preset=preset, **{**self.overrides(), **options})


RECIPE_KEYS = tuple(f.name for f in fields(Recipe))
REQUIRED_KEYS = ("agent", "dataset")
# key -> (accepted types, what the error calls it); bool is an int in Python, so ints exclude it below
_KEY_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "agent": (str, "a string"),
    "dataset": (str, "a Minari dataset id string"),
    "preset": (str, 'a string ("paper" or "quick")'),
    "horizon": (int, "a positive integer"),
    "config": (dict, "a table ([config])"),
    "description": (str, "a string"),
    "eval_episodes": (int, "an integer ≥ 0"),
}


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe: unknown keys, an unknown agent, or a config field the agent's
    config class lacks are RecipeError (a ConfigError) naming the file and the fix; a missing file is
    FileNotFoundError listing the recipes in ``agents/``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(_missing_recipe_message(path))
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})") from exc
    missing = [key for key in REQUIRED_KEYS if key not in table]
    if missing:
        raise RecipeError(f'{path}: missing {missing[0]!r}; add e.g. {missing[0]} = "..." at the top')
    agent = _agent_name(path, table["agent"])
    _check_keys(path, table, agent)
    recipe = Recipe(**{**table, "agent": agent})
    try:
        recipe.agent_config()
    except ConfigError as exc:
        raise RecipeError(f"{path}: {exc}") from exc
    return recipe


def available_recipes(folder: str | Path = RECIPES_FOLDER) -> list[Path]:
    """The recipe files in ``folder`` (default ``agents/``), sorted; empty if it does not exist."""
    return sorted(Path(folder).glob("*.toml"))


def _agent_name(path: Path, name: object) -> str:
    """The canonical agent name; case is forgiven, as on the command line."""
    by_lower = {known.lower(): known for known in AGENT_NAMES}
    if isinstance(name, str) and name.lower() in by_lower:
        return by_lower[name.lower()]
    # a transposition ("LDQC") is the likeliest slip; difflib alone ties it between LDCQ and LDGC
    same_letters = [known for known in AGENT_NAMES if sorted(known.lower()) == sorted(str(name).lower())]
    hint = same_letters or difflib.get_close_matches(str(name), AGENT_NAMES, n=1, cutoff=0.5)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise RecipeError(f"{path}: unknown agent {name!r}.{suggestion} Agents: {', '.join(AGENT_NAMES)}")


def _check_keys(path: Path, table: dict[str, Any], agent: str) -> None:
    config_fields = set(getattr(agents, agent).config_class.field_names())
    for key, value in table.items():
        if key not in RECIPE_KEYS:
            raise RecipeError(f"{path}: unknown key {key!r}. {_top_level_hint(key, config_fields)}")
        types, what = _KEY_TYPES[key]
        wrong_type = not isinstance(value, types) or (types is int and isinstance(value, bool))
        if wrong_type or (key == "horizon" and value <= 0) or (key == "eval_episodes" and value < 0):
            raise RecipeError(f"{path}: {key} must be {what}, got {value!r}")
    for key in table.get("config", {}):
        if key in RECIPE_KEYS:  # TOML puts every key after the [config] header into the table
            raise RecipeError(
                f"{path}: {key!r} is a recipe key, not a config field: move it above the [config] table"
            )


def _top_level_hint(key: str, config_fields: set[str]) -> str:
    if key in config_fields:
        return "It is a config field: move it below the [config] header."
    hint = difflib.get_close_matches(key, RECIPE_KEYS, n=1)
    suggestion = f"Did you mean {hint[0]!r}? " if hint else ""
    return f"{suggestion}Recipe keys: {', '.join(RECIPE_KEYS)}; config fields go under [config]."


def _missing_recipe_message(path: Path) -> str:
    if path.is_dir():
        return f"recipe {path} is a folder; pass one of its .toml files"
    found = available_recipes()
    if found:
        names = "\n".join(f"  {recipe}" for recipe in found)
        return f"recipe file {path} does not exist. Recipes in {RECIPES_FOLDER}/:\n{names}"
    return f"recipe file {path} does not exist (and there is no {RECIPES_FOLDER}/ folder here to list)"


__all__ = ["Recipe", "RecipeError", "available_recipes", "load_recipe"]
