"""``latent-skills evaluate`` and ``push``: a checkpoint (a folder or a Hub repo) scored, and shared."""

from __future__ import annotations

from pathlib import Path

import click

from .main import UserError, main
from .options import (
    device_option,
    eval_envs_option,
    given,
    json_output_option,
    parse_settings,
    report,
    seed_option,
    settings_option,
    token_option,
    write_json_output,
)


@main.command()
@click.argument("checkpoint")
@click.option("--episodes", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--envs", type=click.IntRange(min=1), default=10, show_default=True)
@seed_option()
@device_option()
@click.option("--stochastic", is_flag=True, help="Sample decoder actions instead of taking their means.")
@click.option(
    "--protocol",
    type=click.Choice(["auto", "d4rl", "dataset"]),
    default="auto",
    show_default=True,
    help="d4rl: D4RL's evaluation env and score (kitchen, antmaze, single-goal maze2d); dataset: the "
    "dataset's evaluation env as stored; auto: d4rl where it applies, else dataset.",
)
@settings_option("Override an acting field (e.g. sampler_steps=20, exec_horizon=5).")
@click.option("--revision", default=None, help="Hub only: branch, tag or commit [default: main].")
@token_option("Hub only: access token for a private repo [default: logged-in token].")
@json_output_option("the result (every episode's return)")
@click.option(
    "--video",
    "video_path",
    type=click.Path(),
    default=None,
    metavar="OUT.mp4|DIR",
    help="Also record one episode (seed --seed) as an MP4; a folder (one that exists, or a path ending "
    "in /) gets DIR/replay.mp4. Needs the video extra "
    '(pip install "latent-skills[video]") and, with no display, EGL or OSMesa (see README).',
)
@click.option(
    "--video-length",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many frames in the video [default: the whole episode].",
)
def evaluate(
    checkpoint: str,
    episodes: int,
    envs: int,
    seed: int,
    device: str,
    stochastic: bool,
    protocol: str,
    settings: tuple[str, ...],
    revision: str | None,
    token: str | None,
    json_path: str | None,
    video_path: str | None,
    video_length: int | None,
) -> None:
    """Evaluate a saved agent: mean return, normalised score and success rate, under --protocol.

    CHECKPOINT is a checkpoint folder or a Hugging Face Hub repo id (owner/name), downloaded into the
    Hub cache (offline once cached, or with HF_HUB_OFFLINE=1)."""

    from latent_skills.agents import LatentSkillAgent
    from latent_skills.config import ConfigError
    from latent_skills.hub import CheckpointError, from_pretrained

    json_to_stdout = json_path == "-"
    video_file = None if video_path is None else _video_file(video_path)
    try:
        agent = from_pretrained(LatentSkillAgent, checkpoint, revision=revision, device=device, token=token)
        if settings:
            agent.set_acting(**parse_settings(settings))
    except (CheckpointError, ConfigError) as exc:
        raise UserError(str(exc)) from exc
    from latent_skills.envs.video import VideoUnavailable, record_video

    try:
        result = agent.evaluate(
            n_episodes=episodes,
            n_envs=envs,
            seed=seed,
            deterministic=not stochastic,
            progress_bar=True,
            protocol=protocol,
        )
        report(result, None if json_path is None or json_to_stdout else Path(json_path), err=json_to_stdout)
        if json_to_stdout:
            write_json_output(result, json_path)
        if video_file is not None:
            recorded = record_video(
                agent, video_file, seed=seed, deterministic=not stochastic, video_length=video_length
            )
            click.echo(
                f"video            {video_file} ({recorded['frames']} frames at {recorded['fps']} fps)",
                err=json_to_stdout,
            )
    except (ValueError, VideoUnavailable) as exc:  # an env the checkpoint may not build or render
        raise UserError(str(exc)) from exc
    except OSError as exc:  # an output file that cannot be written (permissions, a full disk)
        raise UserError(f"cannot write {exc.filename or 'an output file'}: {exc.strerror or exc}") from exc


def _video_file(video_path: str):
    """``--video``'s file: the path itself, or DIR/replay.mp4 for a folder (one that exists, or a path
    ending in a separator); its folder is made, so a bad path fails before the evaluation runs."""
    import os

    path = Path(video_path)
    if path.is_dir() or video_path.endswith(("/", os.sep)):
        path = path / "replay.mp4"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot make the folder {path.parent}: {exc.strerror or exc}", param_hint="--video"
        ) from exc
    return path


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.argument("repo_id")
@click.option(
    "--eval-episodes",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Evaluate first and publish the results (eval_results.json, the card's metrics); 0 skips "
    "(the card then says it was not evaluated). By default only where an evaluation env is recorded.",
)
@eval_envs_option()
@click.option(
    "--no-video",
    is_flag=True,
    help="Do not record replay.mp4 (recorded by default where the video extra is installed and the env renders).",
)
@click.option(
    "--reproduce",
    default=None,
    metavar="COMMAND",
    help="The command the card gives to train it again [default: `latent-skills train` with its config].",
)
@click.option("--revision", default=None, help="Push to this branch (created from main if needed).")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to the branch.")
@click.option(
    "--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility)."
)
@token_option("Hub access token with write access [default: logged-in token].")
@click.option("--message", "commit_message", default=None, help="Commit message.")
@device_option("Device for the evaluation.")
@json_output_option("the repo, the commit's URL and the pull request's")
def push(
    checkpoint: str,
    repo_id: str,
    eval_episodes: int,
    eval_envs: int,
    no_video: bool,
    reproduce: str | None,
    revision: str | None,
    create_pr: bool,
    private: bool,
    token: str | None,
    commit_message: str | None,
    device: str,
    json_path: str | None,
) -> None:
    """Publish CHECKPOINT (a folder from `train` or `agent.save`) to the Hugging Face Hub repo REPO_ID
    (owner/name, created if needed) in one commit: config.json, model.safetensors, a model card, the
    evaluation results (--eval-episodes), a replay video (replay.mp4) and, from
    CHECKPOINT/logs/progress.csv, a learning curve."""

    from huggingface_hub.utils import HfHubHTTPError

    from latent_skills.agents import load_agent
    from latent_skills.hub import CheckpointError, push_to_hub

    try:
        agent = load_agent(checkpoint, device=device)
    except CheckpointError as exc:
        raise UserError(str(exc)) from exc
    from latent_skills.envs.video import VideoUnavailable

    progress = Path(checkpoint) / "logs" / "progress.csv"
    try:
        url = push_to_hub(
            agent,
            repo_id,
            token=token,
            private=private or None,
            commit_message=commit_message,
            # the default evaluates only where an evaluation env is recorded; a given number always
            eval_episodes=eval_episodes if given("eval_episodes") else None,
            eval_envs=eval_envs,
            video=False if no_video else None,
            reproduce=reproduce,
            revision=revision,
            create_pr=create_pr,
            progress_csv=progress if progress.is_file() else None,
        )
    except (HfHubHTTPError, ValueError, VideoUnavailable) as exc:  # ValueError: a malformed repo id
        raise UserError(f"push to {repo_id} failed: {exc}") from exc
    to_stderr = json_path == "-"
    click.echo(f"pushed {checkpoint} to {url}", err=to_stderr)
    pr_url = getattr(url, "pr_url", None)
    if pr_url:
        click.echo(f"pull request: {pr_url}", err=to_stderr)
    try:
        write_json_output(
            {"checkpoint": checkpoint, "repo_id": repo_id, "url": str(url), "pr_url": pr_url}, json_path
        )
    except OSError as exc:
        raise UserError(f"cannot write {json_path}: {exc.strerror or exc}") from exc
