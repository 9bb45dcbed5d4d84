"""The `latent-skills` command."""

from __future__ import annotations

import json

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="latent-skills")
def main() -> None:
    """Learn temporally-abstract skills from offline RL datasets and act with them."""


@main.group()
def collect() -> None:
    """Make offline RL datasets locally (no network needed)."""


@collect.command("pointmaze")
@click.option("--maze", type=click.Choice(["umaze", "medium", "large"]), default="umaze", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=100_000, show_default=True, help="Env steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--dataset-id", default=None, help="Minari id to write [default: latent-skills/pointmaze/MAZE-v0]."
)
@click.option("--action-noise", type=float, default=0.5, show_default=True, help="Std of action noise.")
@click.option(
    "--ref-episodes",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Episodes averaged for each reference score.",
)
@click.option("--overwrite", is_flag=True, help="Replace a local dataset with the same id.")
def collect_pointmaze_command(
    maze: str,
    steps: int,
    seed: int,
    dataset_id: str | None,
    action_noise: float,
    ref_episodes: int,
    overwrite: bool,
) -> None:
    """A PointMaze dataset made the way D4RL's were: a noisy waypoint expert, cut at every success."""
    from .data.makers import collect_pointmaze

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
        )
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_summary(dataset)


@main.command()
@click.argument("dataset")
@click.option("--download", is_flag=True, help="Download the dataset with Minari if it is not local.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(dataset: str, download: bool, as_json: bool) -> None:
    """Episodes, steps, spaces, reference scores and evaluation env of DATASET (a Minari id)."""
    from .data import DatasetNotFoundError, load_dataset

    try:
        loaded = load_dataset(dataset, download=download)
    except DatasetNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_summary(loaded, as_json)


def _print_summary(dataset, as_json: bool = False) -> None:
    from .data import dataset_summary

    summary = dataset_summary(dataset)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    width = max(map(len, summary))
    for key, value in summary.items():
        click.echo(f"{key:<{width}}  {value}")
