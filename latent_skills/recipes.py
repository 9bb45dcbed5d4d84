"""Training recipes: one TOML file per (agent, task) of the papers' tables, shipped in the package
(``latent_skills/recipe_data/``, which a source checkout also shows as ``agents/``).

A recipe names the agent, the Minari dataset, the preset, the skill horizon H, the config fields that
differ from the preset for that task, and how many episodes to evaluate. Load a shipped one by name, or
any recipe file by path:

    recipe = load_recipe("ldcq-kitchen-mixed")
    agent = recipe.make_agent(download=True).learn()

``latent-skills train --recipe NAME`` does the same from the command line; ``latent-skills recipes``
lists the shipped ones.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .agents import registry
from .config import AgentConfig, ConfigError, default_horizon

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from .agents import LatentSkillAgent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is the same parser, published before tomllib
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_EVAL_EPISODES = 20  # as `latent-skills train --eval-episodes`
RECIPE_DATA = "recipe_data"  # the package-data folder of latent_skills that holds the shipped recipes


class RecipeError(ConfigError):
    """A recipe file that cannot be used as written; the message names the file and the fix."""


@dataclass(frozen=True)
class Recipe:
    agent: str  # a registered agent name (latent_skills.agents.registry.agent_names())
    dataset: str  # Minari dataset id
    preset: str = "paper"  # "paper" or "quick"
    horizon: int | None = None  # H; None: the task's H from the dataset id (mazes 30, kitchen 20, else 10)
    config: dict[str, Any] = field(default_factory=dict)  # config fields that differ from the preset
    description: str = ""  # what it reproduces: paper, table, row
    eval_episodes: int = DEFAULT_EVAL_EPISODES

    @property
    def agent_class(self) -> type[LatentSkillAgent]:
        return registry.agent_class(self.agent)

    def overrides(self) -> dict[str, Any]:
        """The config fields the recipe sets, H included: ``from_dataset``'s ``**config``."""
        return dict(self.config) if self.horizon is None else {**self.config, "horizon": self.horizon}

    def agent_config(self, **options: Any) -> AgentConfig:
        """The config ``make_agent(**options)`` builds (seed aside unless given), validated: raises
        ConfigError. Loads no data, and imports no agent for the library's own (nor torch), so a bad
        value is reported before anything heavy runs."""
        config_class = registry.config_class(self.agent)
        values = {**self.overrides(), **options}
        preset = values.pop("preset", self.preset)
        for name in _FROM_DATASET_OPTIONS:
            values.pop(name, None)
        values.setdefault("horizon", default_horizon(self.dataset))
        return config_class.from_preset(preset, **values)

    def make_agent(self, **options: Any) -> LatentSkillAgent:
        """An untrained agent on the recipe's dataset; ``options`` (``seed``, ``device``, ``download``,
        ``env``, ``preset`` or any config field) override the recipe."""
        preset = options.pop("preset", self.preset)
        return self.agent_class.from_dataset(self.dataset, preset=preset, **{**self.overrides(), **options})


# make_agent's options that from_dataset takes for itself, not as config fields
_FROM_DATASET_OPTIONS = ("env", "device", "download")
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


def recipe_names() -> list[str]:
    """The names of the recipes shipped with the package, sorted (``latent-skills recipes`` lists them)."""
    folder = _recipe_data()
    return sorted(entry.name[: -len(".toml")] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def shipped_recipes() -> dict[str, Recipe]:
    """Every shipped recipe by name, loaded and validated."""
    return {name: load_recipe(name) for name in recipe_names()}


def find_recipe(name_or_path: str | Path) -> Path | Traversable:
    """Where a recipe is: an existing file wins; otherwise a bare name, with or without ``.toml``, is a
    shipped recipe. Anything else is FileNotFoundError, one line naming the close matches."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise FileNotFoundError(f"recipe {path} is a folder; pass one of its .toml files or a recipe name")
    text = str(name_or_path)
    stem = path.name.removesuffix(".toml")
    names = recipe_names()
    if path.name == text and stem in names:  # a bare name: no folder in it
        return _recipe_data() / f"{stem}.toml"
    close = _close_names(stem, names)
    listed = f"{', '.join(close[:-1])} or {close[-1]}" if len(close) > 1 else "".join(close)
    hint = f" Did you mean {listed}?" if close else ""
    what = f"unknown recipe {text!r}" if path.name == text else f"recipe file {text} does not exist"
    raise FileNotFoundError(f"{what}.{hint} `latent-skills recipes` lists the {len(names)} shipped recipes.")


def recipe_text(name_or_path: str | Path) -> str:
    """The TOML text of a recipe (a shipped name or a file), comments included."""
    return find_recipe(name_or_path).read_text(encoding="utf-8")


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read and validate a recipe, a shipped one by name (``"ldcq-kitchen-mixed"``) or any file by path:
    unknown keys, an unknown agent, or a config field the agent's config class lacks are RecipeError (a
    ConfigError) naming the file and the fix; a recipe that is neither is FileNotFoundError naming the
    close matches."""
    source = find_recipe(name_or_path)
    # errors name the file, or a shipped recipe by its name
    label = Path(name_or_path) if Path(name_or_path).is_file() else source.name.removesuffix(".toml")
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{label}: not valid TOML ({exc})") from exc
    missing = [key for key in REQUIRED_KEYS if key not in table]
    if missing:
        raise RecipeError(f'{label}: missing {missing[0]!r}; add e.g. {missing[0]} = "..." at the top')
    agent = _agent_name(label, table["agent"])
    _check_keys(label, table, agent)
    recipe = Recipe(**{**table, "agent": agent})
    try:
        recipe.agent_config()
    except ConfigError as exc:
        raise RecipeError(f"{label}: {exc}") from exc
    return recipe


def _recipe_data() -> Traversable:
    return resources.files("latent_skills") / RECIPE_DATA


def _close_names(stem: str, names: list[str]) -> list[str]:
    """Shipped names close to ``stem``: those containing it ("kitchen-mixed"), then difflib's."""
    containing = [name for name in names if stem and stem.lower() in name]
    close = containing + difflib.get_close_matches(stem.lower(), names, n=3, cutoff=0.6)
    return list(dict.fromkeys(close))[:4]


def _agent_name(path: Path | str, name: object) -> str:
    """The canonical (registered) agent name; case is forgiven, as on the command line."""
    if isinstance(name, str):
        try:
            return registry.canonical_name(name)
        except ValueError:
            pass
    known = registry.agent_names()
    # a transposition ("LDQC") is the likeliest slip; difflib alone ties it between LDCQ and LDGC
    same_letters = [agent for agent in known if sorted(agent.lower()) == sorted(str(name).lower())]
    hint = same_letters or difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise RecipeError(f"{path}: unknown agent {name!r}.{suggestion} Agents: {', '.join(known)}")


def _check_keys(path: Path | str, table: dict[str, Any], agent: str) -> None:
    config_fields = set(registry.config_class(agent).field_names())
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


__all__ = [
    "Recipe",
    "RecipeError",
    "find_recipe",
    "load_recipe",
    "recipe_names",
    "recipe_text",
    "shipped_recipes",
]
