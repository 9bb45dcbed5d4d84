"""The zoo's manifest: one ``[[agent]]`` table per published agent (see :mod:`latent_skills.zoo`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from latent_skills.config import ConfigError
from latent_skills.recipes import Recipe, find_recipe, load_recipe, recipe_names

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

RESULTS_NAME = "results.json"
README_NAME = "README.md"
STATUSES = ("release", "planned")


class ManifestError(ConfigError):
    """A manifest that cannot be used as written; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    recipe: str
    repo_id: str
    seeds: tuple[int, ...] = (0,)
    eval_episodes: int | None = None  # None: the recipe's
    paper_score: float | None = None
    paper: str = ""
    status: str = "release"
    video_length: int = 1000

    def repo_for(self, seed: int) -> str:
        """The Hub repo of one seed: ``repo_id`` for a single seed, ``repo_id-seedN`` for several."""
        return self.repo_id if len(self.seeds) == 1 else f"{self.repo_id}-seed{seed}"


@dataclass(frozen=True)
class Manifest:
    path: Path
    entries: tuple[ZooEntry, ...] = field(default_factory=tuple)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def recipe_path(self, entry: ZooEntry) -> str | Path:
        """A recipe file relative to the manifest, else a shipped recipe's name (else the file, which
        then does not exist: the error names it)."""
        beside = self.folder / entry.recipe
        if beside.is_file() or entry.recipe.removesuffix(".toml") not in recipe_names():
            return beside
        return entry.recipe

    def recipe(self, entry: ZooEntry) -> Recipe:
        return load_recipe(self.recipe_path(entry))

    def select(self, only: Iterable[str] | None = None) -> list[ZooEntry]:
        """The ``release`` entries, or those named in ``only`` (any status); unknown names are an error."""
        if not only:
            return [e for e in self.entries if e.status == "release"]
        names = {e.name: e for e in self.entries}
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ManifestError(f"{self.path}: no entry {unknown[0]!r}; entries: {', '.join(names)}")
        return [names[n] for n in dict.fromkeys(only)]


_ENTRY_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "a string"),
    "recipe": (str, "a recipe name or file"),
    "repo_id": (str, "a Hub repo id (owner/name)"),
    "seeds": (list, "a list of integers"),
    "eval_episodes": (int, "an integer ≥ 1"),
    "paper_score": ((int, float), "a number"),
    "paper": (str, "a string"),
    "status": (str, f"one of {STATUSES}"),
    "video_length": (int, "an integer ≥ 1"),
}


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and check a manifest: keys, types, unique names and repos, and that every recipe exists
    (a ``release`` entry's recipe is also loaded and validated)."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"manifest {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(table) - {"agent"})
    if unknown:
        raise ManifestError(f"{path}: unknown top-level key {unknown[0]!r}; agents are [[agent]] tables")
    rows = table.get("agent", [])
    if not isinstance(rows, list) or not rows:
        raise ManifestError(f"{path}: no [[agent]] tables")
    known = [f.name for f in fields(ZooEntry)]
    entries = []
    for index, row in enumerate(rows):
        where = f"{path}: [[agent]] {row.get('name', f'#{index + 1}')!r}"
        for key in ("name", "recipe", "repo_id"):
            if key not in row:
                raise ManifestError(f"{where}: missing {key!r}")
        for key, value in row.items():
            if key not in known:
                raise ManifestError(f"{where}: unknown key {key!r}; keys: {', '.join(known)}")
            types, what = _ENTRY_TYPES[key]
            bad = not isinstance(value, types) or isinstance(value, bool)
            bad = bad or (key in ("eval_episodes", "video_length") and value < 1)
            bad = bad or (key == "status" and value not in STATUSES)
            bad = bad or (key == "repo_id" and value.count("/") != 1)
            bad = bad or (key == "seeds" and (not value or not all(type(s) is int for s in value)))
            if bad:
                raise ManifestError(f"{where}: {key} must be {what}, got {value!r}")
        values = dict(row)
        values["seeds"] = tuple(values.get("seeds", (0,)))
        if len(set(values["seeds"])) != len(values["seeds"]):
            raise ManifestError(f"{where}: seeds repeat: {list(values['seeds'])}")
        entries.append(ZooEntry(**values))
    for key in ("name", "repo_id"):
        seen = [getattr(e, key) for e in entries]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            raise ManifestError(f"{path}: {key} {twice[0]!r} appears twice")
    manifest = Manifest(path, tuple(entries))
    for entry in entries:
        try:
            if entry.status == "release":
                manifest.recipe(entry)
            else:
                find_recipe(manifest.recipe_path(entry))
        except (ConfigError, FileNotFoundError) as exc:
            raise ManifestError(f"{path}: [[agent]] {entry.name!r}: {exc}") from exc
    return manifest


def read_results(manifest: Manifest) -> dict[str, Any]:
    """``results.json`` beside the manifest: entry name -> what the last release published."""
    path = manifest.folder / RESULTS_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


def write_results(manifest: Manifest, results: dict[str, Any]) -> None:
    path = manifest.folder / RESULTS_NAME
    path.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")
