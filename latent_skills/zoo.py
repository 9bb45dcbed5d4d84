"""The model zoo: the reference agents published on the Hugging Face Hub, listed in a manifest
(``hub/manifest.toml`` in a source checkout), and the one command that makes them::

    python -m latent_skills.zoo release hub/manifest.toml [--only NAME] [--endpoint URL] [--token T] [--runs DIR]
    python -m latent_skills.zoo readme hub/manifest.toml      # only regenerate hub/README.md

``release`` trains each entry's recipe for each of its seeds (reusing the checkpoint already in
``--runs``, or resuming an interrupted one), evaluates it, pushes it with its model card, evaluation,
learning curve and replay video, records the results in ``results.json`` beside the manifest, and
regenerates ``README.md`` there: every agent with its score beside the paper's and a link, and which
entries are not yet published.

A manifest is TOML, one ``[[agent]]`` table per published agent::

    [[agent]]
    name = "ldcq-kitchen-mixed"          # unique; the README's row and the runs/ folder
    recipe = "ldcq-kitchen-mixed"        # a shipped recipe name, or a TOML file (relative to the manifest)
    repo_id = "latent-skills/ldcq-kitchen-mixed"   # with several seeds: one repo per seed, REPO-seedN
    seeds = [0]                          # [default: [0]]
    eval_episodes = 100                  # [default: the recipe's]
    paper_score = 62.3                   # the paper's normalised score, if it reports one
    paper = "paper 000, Table 1"         # where that number is from
    status = "planned"                   # "release" [default] or "planned": listed, not yet trained
    video_length = 1000                  # frames of replay.mp4 at most [default: 1000]

``release`` makes the ``release`` entries, or those ``--only`` names (planned ones included).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import ConfigError
from .recipes import Recipe, find_recipe, load_recipe, recipe_names

if TYPE_CHECKING:
    from .agents import LatentSkillAgent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

RESULTS_NAME = "results.json"
README_NAME = "README.md"
STATUSES = ("release", "planned")
DEFAULT_ENDPOINT = "https://huggingface.co"
SAVE_EVERY = 5000  # steps between resumable checkpoints while training an entry


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


# ---------------------------------------------------------------------------------------- results
def read_results(manifest: Manifest) -> dict[str, Any]:
    """``results.json`` beside the manifest: entry name -> what the last release published."""
    path = manifest.folder / RESULTS_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_results(manifest: Manifest, results: dict[str, Any]) -> None:
    path = manifest.folder / RESULTS_NAME
    path.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What results.json keeps of one seed's evaluation."""
    keys = ("protocol", "mean_return", "std_return", "normalized_score", "success_rate", "n_episodes", "seed")
    return {key: result.get(key) for key in keys}


# ---------------------------------------------------------------------------------------- release
def release(
    manifest_path: str | os.PathLike,
    *,
    only: Iterable[str] | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    runs: str | os.PathLike = "runs/zoo",
    device: str = "auto",
    eval_envs: int = 10,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (what ``runs`` lacks), evaluate and push every selected entry of the manifest, then
    record the results and regenerate the README beside it. Returns the results of this release."""
    from huggingface_hub import constants

    from . import __version__
    from .hub import push_to_hub

    manifest = load_manifest(manifest_path)
    results = read_results(manifest)
    released: dict[str, Any] = {}
    site = (endpoint or constants.ENDPOINT or DEFAULT_ENDPOINT).rstrip("/")
    for entry in manifest.select(only):
        recipe = manifest.recipe(entry)
        episodes = entry.eval_episodes or recipe.eval_episodes or 10
        seeds: dict[str, Any] = {}
        for seed in entry.seeds:
            folder = Path(runs) / entry.name / f"seed{seed}"
            agent = _trained(entry, recipe, seed, folder, device, progress, echo)
            echo(f"{entry.name} seed {seed}: evaluating {episodes} episodes")
            result = agent.evaluate(
                n_episodes=episodes, n_envs=min(eval_envs, episodes), seed=seed, progress_bar=progress
            )
            repo_id = entry.repo_for(seed)
            csv = folder / "logs" / "progress.csv"
            info = push_to_hub(
                agent,
                repo_id,
                token=token,
                endpoint=endpoint,
                eval_results=result,
                video_length=entry.video_length,
                reproduce=f"latent-skills train --recipe {entry.recipe} --seed {seed}"
                + ("" if recipe.dataset.startswith("latent-skills/") else " --download"),
                commit_message=f"Release {entry.name} (seed {seed}): {_score_text(result)}",
                progress_csv=csv if csv.is_file() else None,
            )
            echo(f"{entry.name} seed {seed}: pushed {info}")
            seeds[str(seed)] = {**_summary(result), "repo_id": repo_id, "url": f"{site}/{repo_id}"}
        released[entry.name] = {
            "recipe": entry.recipe,
            "dataset": recipe.dataset,
            "agent": recipe.agent,
            "seeds": seeds,
            "released": _dt.date.today().isoformat(),
            "library_version": __version__,
        }
    results.update(released)
    _write_results(manifest, results)
    write_readme(manifest, results)
    return released


def _trained(
    entry: ZooEntry,
    recipe: Recipe,
    seed: int,
    folder: Path,
    device: str,
    progress: bool,
    echo: Callable[[str], None],
) -> LatentSkillAgent:
    """The entry's agent for ``seed``: the finished checkpoint in ``folder``, the interrupted one
    there trained on, or a new one trained into it."""
    from stable_baselines3.common.logger import configure

    from .agents import load_agent
    from .agents.resume import append_csv_logger

    expected = recipe.agent_config().replace(seed=seed)
    if (folder / "config.json").is_file():
        agent = load_agent(str(folder), device=device)
        if type(agent).__name__ != recipe.agent or agent.config != expected:
            raise ManifestError(
                f"{folder} holds a run of another agent or config than recipe {entry.recipe!r} with seed "
                f"{seed}: remove it (or pass another --runs) to train this entry afresh."
            )
        if not agent.can_resume:
            echo(f"{entry.name} seed {seed}: reusing the checkpoint in {folder}")
            return agent
        echo(f"{entry.name} seed {seed}: resuming the run in {folder}")
        agent.set_logger(append_csv_logger(folder / "logs"))
        return agent.learn(progress_bar=progress, save_path=folder, save_every=SAVE_EVERY, resume=True)
    _make_local_dataset(recipe.dataset, echo)
    agent = recipe.make_agent(seed=seed, device=device, download=True)
    echo(f"{entry.name} seed {seed}: training {recipe.agent} on {recipe.dataset} into {folder}")
    agent.set_logger(configure(str(folder / "logs"), ["csv"]))
    return agent.learn(progress_bar=progress, save_path=folder, save_every=SAVE_EVERY)


def _make_local_dataset(dataset_id: str, echo: Callable[[str], None]) -> None:
    """Collect a missing dataset that the library makes itself (``latent-skills/pointmaze/...``) as
    ``latent-skills collect pointmaze`` does; other ids are downloaded by Minari when trained."""
    from .data.loading import is_local
    from .data.makers import MAZES, TASKS, collect_pointmaze, default_dataset_id

    if is_local(dataset_id):
        return
    for maze in MAZES:
        for task in TASKS:
            if default_dataset_id(maze, task) == dataset_id:
                echo(f"{dataset_id} is not local: making it (100k steps, no network needed)")
                collect_pointmaze(maze, steps=100_000, seed=0, task=task, progress=True)
                return


# ---------------------------------------------------------------------------------------- README
def _score_text(result: dict[str, Any]) -> str:
    score = result.get("normalized_score")
    if score is not None:
        return f"normalised score {score:.1f}"
    return f"mean return {result['mean_return']:.2f}"


def _mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return f"{mean:.1f} ± {std:.1f}"


def _score_cell(published: dict[str, Any]) -> str:
    seeds = list(published["seeds"].values())
    scores = [s["normalized_score"] for s in seeds]
    if all(s is not None for s in scores):
        return _mean_std(scores)
    return f"return {_mean_std([s['mean_return'] for s in seeds])}"


def _protocol_cell(published: dict[str, Any]) -> str:
    # a result recorded before protocols existed was scored on the dataset's own env
    names = sorted({s.get("protocol") or "dataset" for s in published["seeds"].values()})
    return "/".join(f"`{name}`" for name in names)


def _success_cell(published: dict[str, Any]) -> str:
    rates = [s["success_rate"] for s in published["seeds"].values()]
    return "—" if any(r is None for r in rates) else f"{sum(rates) / len(rates):.2f}"


def readme_text(manifest: Manifest, results: dict[str, Any] | None = None) -> str:
    """The zoo's README: a table of every manifest entry, published or not."""
    results = read_results(manifest) if results is None else results
    rows = []
    missing = []
    for entry in manifest.entries:
        published = results.get(entry.name)
        paper = "—" if entry.paper_score is None else f"{entry.paper_score:g}"
        if entry.paper and entry.paper_score is not None:
            paper += f" ({entry.paper})"
        if published:
            links = ", ".join(f"[{s['repo_id']}]({s['url']})" for s in published["seeds"].values())
            episodes = {s["n_episodes"] for s in published["seeds"].values()}
            rows.append(
                f"| {entry.name} | `{entry.recipe}` | {_score_cell(published)} | {_protocol_cell(published)} "
                f"| {_success_cell(published)} "
                f"| {paper} | {len(published['seeds'])} × {'/'.join(map(str, sorted(episodes)))} | {links} |"
            )
        else:
            why = "not yet trained (a GPU run)" if entry.status == "planned" else "not yet published"
            missing.append(entry.name)
            rows.append(
                f"| {entry.name} | `{entry.recipe}` | — | — | — | {paper} | — | {why}: `{entry.repo_id}` |"
            )
    lines = [
        "# Model zoo",
        "",
        "<!-- Generated by `python -m latent_skills.zoo release hub/manifest.toml` (or `... readme ...`); "
        "edit manifest.toml, not this file. -->",
        "",
        "Reference agents trained with the shipped recipes (`latent-skills recipes`) and published on the "
        "Hugging Face Hub, each with its model card, evaluation (`eval_results.json`), learning curve and "
        "replay video. Load one with `LDCQ.from_pretrained(REPO)` or evaluate it with "
        "`latent-skills evaluate REPO`.",
        "",
        "Score: the D4RL-normalised score (0–100, mean over the evaluation episodes; mean ± std over seeds "
        "where there are several), or the mean return where the dataset has no reference scores. "
        "Protocol: how it was measured: `d4rl` is D4RL's evaluation env and score for the dataset's "
        "family (kitchen, antmaze, single-goal maze2d), the one to set beside the paper; `dataset` is the "
        "dataset's evaluation env as stored. Paper: the score the LDCQ paper reports for that setting "
        "(its D4RL datasets; the recipes use Minari's ports of them).",
        "",
        "| agent | recipe | score | protocol | success rate | paper | seeds × episodes | Hub |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    if missing:
        lines += [
            f"Not yet published ({len(missing)} of {len(manifest.entries)}): {', '.join(missing)}. "
            "The paper's settings need the D4RL downloads and a GPU: "
            "`python -m latent_skills.zoo release hub/manifest.toml --only NAME` trains and publishes one.",
            "",
        ]
    lines += [
        "Release: `python -m latent_skills.zoo release hub/manifest.toml [--only NAME] [--runs DIR]` "
        "trains what `--runs` (default `runs/zoo`) lacks, evaluates, pushes, and rewrites "
        "`results.json` and this file.",
        "",
    ]
    return "\n".join(lines)


def write_readme(manifest: Manifest | str | os.PathLike, results: dict[str, Any] | None = None) -> Path:
    """Regenerate ``README.md`` beside the manifest; return its path."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    path = manifest.folder / README_NAME
    path.write_text(readme_text(manifest, results), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- command line
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The model zoo: publish the reference agents a manifest lists (see hub/manifest.toml)."""


@main.command("release")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--only", multiple=True, metavar="NAME", help="Only this entry (repeatable; planned ones too).")
@click.option("--endpoint", default=None, help="Hub endpoint [default: HF_ENDPOINT or huggingface.co].")
@click.option("--token", default=None, help="Hub token with write access [default: logged-in token].")
@click.option(
    "--runs",
    type=click.Path(file_okay=False),
    default="runs/zoo",
    show_default=True,
    help="Checkpoints: RUNS/NAME/seedN, reused when present (resumed when interrupted).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--eval-envs", type=click.IntRange(min=1), default=10, show_default=True)
def release_command(
    manifest: str,
    only: tuple[str, ...],
    endpoint: str | None,
    token: str | None,
    runs: str,
    device: str,
    eval_envs: int,
) -> None:
    """Train what is missing, evaluate, push each entry, and regenerate README.md beside MANIFEST."""
    from huggingface_hub.utils import HfHubHTTPError

    from .envs.video import VideoUnavailable

    try:
        released = release(
            manifest,
            only=only or None,
            endpoint=endpoint,
            token=token,
            runs=runs,
            device=device,
            eval_envs=eval_envs,
            echo=click.echo,
        )
    except (ConfigError, FileNotFoundError, HfHubHTTPError, VideoUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    for name, published in released.items():
        click.echo(f"{name}: {_score_cell(published)}")
    click.echo(f"wrote {Path(manifest).parent / README_NAME}")


@main.command("readme")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
def readme_command(manifest: str) -> None:
    """Regenerate README.md beside MANIFEST from it and results.json (no training, no Hub)."""
    try:
        click.echo(f"wrote {write_readme(manifest)}")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()
