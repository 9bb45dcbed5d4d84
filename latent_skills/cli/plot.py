"""``latent-skills plot``: the paper's figures and learning curves as PNG files."""

from __future__ import annotations

import click

from .main import UserError, main
from .options import device_option, seed_option


@main.group()
def plot() -> None:
    """Draw the paper's figures and learning curves as PNG files (needs matplotlib:
    pip install "latent-skills[plot]").

    CHECKPOINT arguments are checkpoint folders or Hub repo ids; the figures that read the training
    data need the checkpoint's dataset to be local (see `latent-skills info`)."""


class _PlotErrors:
    """A missing matplotlib, checkpoint, dataset or file, or an unusable input: one clear line."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        # CheckpointError is a ValueError, DatasetNotFoundError a FileNotFoundError
        if isinstance(exc, (ImportError, OSError, ValueError, TypeError)):
            raise UserError(str(exc)) from exc


def _load_agents(checkpoints: tuple[str, ...], device: str) -> list:
    from latent_skills.agents import load_agent

    return [load_agent(checkpoint, device=device) for checkpoint in checkpoints]


_WINDOWS_OPTION = click.option(
    "--windows",
    type=click.Choice(["starts", "all"]),
    default="starts",
    show_default=True,
    help="Windows that start episodes (the paper's choice) or every window.",
)
_SEED_OPTION = seed_option("Seeds subsampling and sampling.")
_DEVICE_OPTION = device_option()


@plot.command("latents", short_help="Encoder latents across horizons H (paper Fig. 2).")
@click.argument("checkpoints", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), default="latents.png", show_default=True)
@_WINDOWS_OPTION
@click.option(
    "--max-points", type=click.IntRange(min=2), default=2000, show_default=True, help="Windows per panel."
)
@_SEED_OPTION
@_DEVICE_OPTION
def plot_latents_command(
    checkpoints: tuple[str, ...], out: str, windows: str, max_points: int, seed: int, device: str
) -> None:
    """Encoder latents across horizons (paper Fig. 2): a PCA of the skill encoder's latents, one panel
    per CHECKPOINT (agents trained with different horizons H), coloured in mazes by the direction each
    window moves."""
    from latent_skills.plots import plot_latents_by_horizon

    with _PlotErrors():
        agents = _load_agents(checkpoints, device)
        path = plot_latents_by_horizon(agents, out, windows=windows, max_points=max_points, seed=seed)
    click.echo(f"wrote {path}")


@plot.command("prior", short_help="Ground-truth vs prior-sampled latents (paper Fig. 3).")
@click.argument("checkpoint")
@click.option("--out", type=click.Path(dir_okay=False), default="prior.png", show_default=True)
@_WINDOWS_OPTION
@click.option(
    "--max-points", type=click.IntRange(min=2), default=1000, show_default=True, help="Start states."
)
@click.option("--samples-per-state", type=click.IntRange(min=1), default=1, show_default=True)
@_SEED_OPTION
@_DEVICE_OPTION
def plot_prior_command(
    checkpoint: str, out: str, windows: str, max_points: int, samples_per_state: int, seed: int, device: str
) -> None:
    """Ground truth vs prior samples (paper Fig. 3): encoder latents vs diffusion-prior samples vs the
    VAE's Gaussian-prior samples at the same start states, on the ground truth's PCA axes."""
    from latent_skills.plots import plot_prior_samples

    with _PlotErrors():
        (agent,) = _load_agents((checkpoint,), device)
        path = plot_prior_samples(
            agent, out, windows=windows, max_points=max_points, samples_per_state=samples_per_state, seed=seed
        )
    click.echo(f"wrote {path}")


@plot.command("world-model", short_help="LDCP's predicted skill end states on the maze (paper Fig. 5).")
@click.argument("checkpoint")
@click.option("--out", type=click.Path(dir_okay=False), default="world_model.png", show_default=True)
@click.option(
    "--cell",
    type=(int, int),
    default=None,
    metavar="ROW COL",
    help="Start in this maze cell [default: the evaluation env's reset].",
)
@click.option("--samples", type=click.IntRange(min=1), default=200, show_default=True, help="Prior samples.")
@_SEED_OPTION
@_DEVICE_OPTION
def plot_world_model_command(
    checkpoint: str, out: str, cell: tuple[int, int] | None, samples: int, seed: int, device: str
) -> None:
    """World-model end states on the maze (paper Fig. 5): where an LDCP CHECKPOINT's world model says
    skills sampled from its prior at one state of its evaluation env end, with the start and goal."""
    from latent_skills.plots import plot_world_model

    with _PlotErrors():
        (agent,) = _load_agents((checkpoint,), device)
        path = plot_world_model(agent, out, reset_cell=cell, n_samples=samples, seed=seed)
    click.echo(f"wrote {path}")


@plot.command("curves", short_help="Learning curves, one panel per stage, from progress.csv.")
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", type=click.Path(dir_okay=False), default="learning_curves.png", show_default=True)
@click.option("--metric", default="loss", show_default=True, help="Column STAGE/METRIC to draw (e.g. kl, q).")
def plot_curves_command(source: str, out: str, metric: str) -> None:
    """Learning curves: one panel per training stage, from SOURCE, a progress.csv or a run folder
    (`latent-skills train --out DIR` writes DIR/logs/progress.csv)."""
    from latent_skills.plots import plot_learning_curves

    with _PlotErrors():
        path = plot_learning_curves(source, out, metric=metric)
    click.echo(f"wrote {path}")
