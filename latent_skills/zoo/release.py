"""``release``: train what is missing (:mod:`latent_skills.runs`), evaluate, push each entry, record
the results and regenerate the README."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latent_skills.recipes import Recipe
from latent_skills.runs import ensure_dataset, evaluate, scores, train

from .manifest import ManifestError, ZooEntry, load_manifest, read_results, write_results
from .readme import score_text, write_readme

if TYPE_CHECKING:
    from latent_skills.agents import LatentSkillAgent

DEFAULT_ENDPOINT = "https://huggingface.co"
SAVE_EVERY = 5000  # steps between resumable checkpoints while training an entry


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What results.json keeps of one seed's evaluation."""
    return {"protocol": result.get("protocol"), **scores(result, "n_episodes", "seed")}


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

    from latent_skills import __version__

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
            result = evaluate(
                agent, folder, episodes=episodes, envs=eval_envs, seed=seed, progress_bar=progress
            )
            repo_id = entry.repo_for(seed)
            csv = folder / "logs" / "progress.csv"
            info = agent.push_to_hub(
                repo_id,
                token=token,
                endpoint=endpoint,
                eval_results=result,
                video_length=entry.video_length,
                reproduce=f"latent-skills train --recipe {entry.recipe} --seed {seed}"
                + ("" if recipe.dataset.startswith("latent-skills/") else " --download"),
                commit_message=f"Release {entry.name} (seed {seed}): {score_text(result)}",
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
    write_results(manifest, results)
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
    from latent_skills.agents import load_agent

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
        return train(agent, folder, resume=True, progress_bar=progress, save_every=SAVE_EVERY)
    ensure_dataset(recipe.dataset, download=True, echo=echo)
    agent = recipe.make_agent(seed=seed, device=device, download=True)
    echo(f"{entry.name} seed {seed}: training {recipe.agent} on {recipe.dataset} into {folder}")
    return train(agent, folder, progress_bar=progress, save_every=SAVE_EVERY)
