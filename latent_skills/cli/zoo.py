"""``latent-skills zoo``: publish the reference agents a manifest lists (:mod:`latent_skills.zoo`)."""

from __future__ import annotations

from pathlib import Path

import click

from .main import Commands, UserError, main
from .options import device_option, eval_envs_option, token_option


@main.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def zoo() -> None:
    """The model zoo: publish the reference agents a manifest lists (see hub/manifest.toml)."""


@zoo.command("release")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--only", multiple=True, metavar="NAME", help="Only this entry (repeatable; planned ones too).")
@click.option("--endpoint", default=None, help="Hub endpoint [default: HF_ENDPOINT or huggingface.co].")
@token_option("Hub token with write access [default: logged-in token].")
@click.option(
    "--runs",
    type=click.Path(file_okay=False),
    default="runs/zoo",
    show_default=True,
    help="Checkpoints: RUNS/NAME/seedN, reused when present (resumed when interrupted).",
)
@device_option()
@eval_envs_option()
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

    from latent_skills.config import ConfigError
    from latent_skills.envs.video import VideoUnavailable
    from latent_skills.zoo import README_NAME, release
    from latent_skills.zoo.readme import score_cell

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
        raise UserError(str(exc)) from exc
    for name, published in released.items():
        click.echo(f"{name}: {score_cell(published)}")
    click.echo(f"wrote {Path(manifest).parent / README_NAME}")


@zoo.command("readme")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
def readme_command(manifest: str) -> None:
    """Regenerate README.md beside MANIFEST from it and results.json (no training, no Hub)."""
    from latent_skills.config import ConfigError
    from latent_skills.zoo import write_readme

    try:
        click.echo(f"wrote {write_readme(manifest)}")
    except ConfigError as exc:
        raise UserError(str(exc)) from exc
