"""``latent-skills collect``, ``info`` and ``recipes``: datasets and training recipes."""

from __future__ import annotations

import json

import click

from .main import UserError, main
from .options import download_option, json_flag, print_summary, seed_option


@main.group()
def collect() -> None:
    """Make offline RL datasets locally (no network needed)."""


@collect.command("pointmaze")
@click.option("--maze", type=click.Choice(["umaze", "medium", "large"]), default="umaze", show_default=True)
@click.option(
    "--task",
    type=click.Choice(["goal-conditioned", "single-goal"]),
    default="goal-conditioned",
    show_default=True,
    help="goal-conditioned: the goal the expert drives to is observed, episodes cut at each success "
    "(Minari D4RL/pointmaze). single-goal: goal and rewards relabelled to the evaluation goal, episodes "
    "cut by time (D4RL maze2d, the LDCQ paper's Table 1).",
)
@click.option("--steps", type=click.IntRange(min=1), default=100_000, show_default=True, help="Env steps.")
@seed_option()
@click.option(
    "--dataset-id",
    default=None,
    help="Minari id to write, NAMESPACE/NAME-vN or NAME-vN [default: latent-skills/pointmaze/MAZE-v0, "
    "or latent-skills/pointmaze/MAZE-single-goal-v0 with --task single-goal].",
)
@click.option(
    "--action-noise",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Std of action noise.",
)
@click.option(
    "--ref-episodes",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Episodes averaged for each reference score.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a local dataset with the same id (once the new one is complete).",
)
@click.option(
    "--observation",
    type=click.Choice(["states", "pixels"]),
    default="states",
    show_default=True,
    help="states: PointMaze's vectors. pixels: a top-down RGB frame of the maze (id ...-pixels-v0).",
)
@click.option(
    "--image-size",
    type=click.IntRange(8, 512),
    default=64,
    show_default=True,
    help="Frame side in pixels (--observation pixels).",
)
@click.option(
    "--keys",
    multiple=True,
    type=click.Choice(["observation", "achieved_goal", "desired_goal"]),
    help="A state field stored beside the frame (repeatable; --observation pixels).",
)
def collect_pointmaze_command(
    maze: str,
    task: str,
    steps: int,
    seed: int,
    dataset_id: str | None,
    action_noise: float,
    ref_episodes: int,
    overwrite: bool,
    observation: str,
    image_size: int,
    keys: tuple[str, ...],
) -> None:
    """A PointMaze dataset made the way D4RL's were: a noisy waypoint expert driving to random goals,
    stored goal-conditioned (cut at every success) or single-goal (D4RL maze2d, cut by time).

    The dataset is written aside and moved into place when complete: an interrupted or failed run
    leaves nothing under the id."""
    from latent_skills.data.makers import InvalidDatasetIdError, check_dataset_id, collect_pointmaze

    if keys and observation != "pixels":
        raise click.BadParameter(
            "state fields beside the frame need --observation pixels", param_hint="'--keys'"
        )
    if dataset_id is not None:  # before anything runs: a bad id must not cost a collection
        try:
            check_dataset_id(dataset_id)
        except InvalidDatasetIdError as exc:
            raise click.BadParameter(str(exc), param_hint="'--dataset-id'") from exc
    try:
        dataset = collect_pointmaze(
            maze=maze,
            steps=steps,
            seed=seed,
            dataset_id=dataset_id,
            action_noise=action_noise,
            ref_episodes=ref_episodes,
            overwrite=overwrite,
            progress=True,
            task=task,
            observation=observation,
            image_size=image_size,
            keys=keys,
        )
    except (FileExistsError, InvalidDatasetIdError) as exc:
        raise UserError(str(exc)) from exc
    print_summary(dataset)


@main.command()
@click.argument("dataset")
@download_option("Download the dataset with Minari if it is not local.")
@json_flag()
def info(dataset: str, download: bool, as_json: bool) -> None:
    """Episodes, steps, spaces, reference scores and evaluation env of DATASET (a Minari id)."""
    from latent_skills.data import DatasetNotFoundError, load_dataset

    try:
        loaded = load_dataset(dataset, download=download)
    except DatasetNotFoundError as exc:
        raise UserError(str(exc)) from exc
    print_summary(loaded, as_json)


@main.command()
@click.argument("name", required=False)
@json_flag()
def recipes(name: str | None, as_json: bool) -> None:
    """List the training recipes shipped with latent-skills, or print recipe NAME (a name or a file).

    `latent-skills train --recipe NAME` trains one; `latent-skills recipes NAME > mine.toml` makes a copy
    to edit and train with `--recipe mine.toml`."""
    from dataclasses import asdict
    from pathlib import Path

    from latent_skills.recipes import load_recipe, recipe_text, shipped_recipes

    if name is not None:
        try:
            text, recipe = recipe_text(name), load_recipe(name)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from exc
        shown = {"name": Path(name).name.removesuffix(".toml"), **asdict(recipe)}
        click.echo(json.dumps(shown, indent=2) if as_json else text.rstrip("\n"))
        return
    found = shipped_recipes()
    if as_json:
        click.echo(json.dumps([{"name": key, **asdict(recipe)} for key, recipe in found.items()], indent=2))
        return
    rows = [("NAME", "AGENT", "DATASET", "PRESET", "DESCRIPTION")]
    rows += [(key, r.agent, r.dataset, r.preset, r.description) for key, r in found.items()]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        click.echo("  ".join([*(row[column].ljust(widths[column]) for column in range(4)), row[4]]))
    click.echo("\n`latent-skills recipes NAME` prints one; `latent-skills train --recipe NAME` trains it.")
