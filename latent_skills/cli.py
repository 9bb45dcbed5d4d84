"""The `latent-skills` command."""

from __future__ import annotations

import json
import sys

import click

from latent_skills import __version__  # the package is loaded anyway (it is cli.py's parent)

# Errors that mean bad input (a config value, a checkpoint, a dataset id), not a bug: the CLI prints
# their message, which names the fix, without a traceback. Named by module, not imported: this module
# imports only click and the standard library at the top, so that `--help` stays fast (heavy imports
# are inside the commands).
_USER_ERRORS = (
    ("latent_skills.config", "ConfigError"),
    ("latent_skills.checkpoint.format", "CheckpointError"),
    ("latent_skills.data.loading", "DatasetNotFoundError"),
    ("latent_skills.agents.divergence", "TrainingDivergedError"),
    ("latent_skills.envs.safe_make", "UntrustedEnvSpecError"),
)


def _user_errors() -> tuple[type[Exception], ...]:
    """The classes of :data:`_USER_ERRORS` whose modules are loaded (an error can only have been
    raised from a loaded module, so a bad command line is not made to import torch to be reported),
    and FileExistsError."""
    loaded = [getattr(sys.modules[module], name) for module, name in _USER_ERRORS if module in sys.modules]
    return (*loaded, FileExistsError)


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, _user_errors()):
                raise click.ClickException(str(exc)) from exc
            raise


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="latent-skills")
def main() -> None:
    """Learn temporally-abstract skills from offline RL datasets and act with them."""


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
@click.option("--seed", type=int, default=0, show_default=True)
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
def collect_pointmaze_command(
    maze: str,
    task: str,
    steps: int,
    seed: int,
    dataset_id: str | None,
    action_noise: float,
    ref_episodes: int,
    overwrite: bool,
) -> None:
    """A PointMaze dataset made the way D4RL's were: a noisy waypoint expert driving to random goals,
    stored goal-conditioned (cut at every success) or single-goal (D4RL maze2d, cut by time).

    The dataset is written aside and moved into place when complete: an interrupted or failed run
    leaves nothing under the id."""
    from .data.makers import InvalidDatasetIdError, check_dataset_id, collect_pointmaze

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
        )
    except (FileExistsError, InvalidDatasetIdError) as exc:
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


EMBEDDED_DATASET = "latent-skills/pointmaze/umaze-v0"


def _parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        settings[key.strip()] = value.strip()
    return settings


class _AgentName(click.ParamType):
    """A registered agent name (latent_skills.agents.registry), any case; checked against the
    registry's names, which imports no agent (nor torch) for the library's own."""

    name = "agent"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "NAME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from .agents.registry import canonical_name

        try:
            return canonical_name(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _LogFormats(click.ParamType):
    name = "FORMAT[,FORMAT...]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if isinstance(value, tuple):
            return value
        from .loggers import FORMATS

        formats = tuple(dict.fromkeys(f.strip().lower() for f in str(value).split(",") if f.strip()))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats:
            self.fail(f"{', '.join(unknown) or 'none'}: choose from {', '.join(FORMATS)}", param, ctx)
        return formats


def _short_name(dataset_id: str) -> str:
    """``latent-skills/pointmaze/umaze-v0`` → ``umaze``; ``D4RL/kitchen/mixed-v2`` → ``kitchen-mixed``."""
    parts = dataset_id.split("/")[1:] or [dataset_id]
    name = "-".join(p.rsplit("-v", 1)[0] for p in parts)
    return name.removeprefix("pointmaze-")


@main.command()
@click.argument("dataset", default=EMBEDDED_DATASET)
@click.option(
    "--recipe",
    "recipe_path",
    metavar="NAME|FILE",
    default=None,
    help="A training recipe: a shipped one by name (e.g. ldcq-kitchen-mixed; `latent-skills recipes` "
    "lists them) or a TOML file. It gives the agent, dataset, preset, H, config and evaluation episodes; "
    "DATASET, options given on the command line and --set override it.",
)
@click.option(
    "--agent",
    "agent_name",
    type=_AgentName(),
    default="LDCQ",
    show_default=True,
    help="LDCQ, LDGC, LDCP, BCQH, LatentDiffuser or another registered agent (any case).",
)
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Checkpoint folder [default: runs/AGENT-DATASET, e.g. runs/ldcq-umaze]. A folder that is not "
    "empty is refused unless --overwrite.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Continue the interrupted run saved in this folder exactly where it stopped (its own config, "
    "dataset and plan).",
)
@click.option("--overwrite", is_flag=True, help="Train into --out even if it holds an earlier run.")
@click.option(
    "--save-every",
    type=click.IntRange(min=0),
    default=5000,
    show_default=True,
    help="Also save a resumable checkpoint every N steps inside a stage (0: only after each stage).",
)
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--compile",
    "compile_networks",
    is_flag=True,
    help="Compile the networks with torch.compile: ~30 s per stage, then faster steps (long runs).",
)
@click.option(
    "--precision",
    type=click.Choice(["float32", "bf16"]),
    default="float32",
    show_default=True,
    help="bf16: forward passes under bf16 autocast (for GPUs; weights stay float32).",
)
@click.option("--download", is_flag=True, help="Download DATASET with Minari if it is not local.")
@click.option(
    "--eval-episodes", type=click.IntRange(min=0), default=20, show_default=True, help="0 skips evaluation."
)
@click.option("--eval-envs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--eval-freq",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also evaluate every N gradient steps of the last stage (q for LDCQ), log eval/* and keep the "
    "best agent so far in OUT/best (0: off).",
)
@click.option(
    "--eval-freq-episodes",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Episodes of each evaluation during training (over --eval-envs envs).",
)
@click.option(
    "--log",
    "log_formats",
    type=_LogFormats(),
    default="csv",
    show_default=True,
    help="Log formats, comma-separated: csv, json, log (text) and tensorboard under OUT/logs, stdout "
    "(the terminal), wandb (W&B project: $WANDB_PROJECT or latent-skills; WANDB_MODE=offline works "
    "without an account).",
)
@click.option(
    "--log-interval",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Log the metrics every N gradient steps (also --set log_interval=N).",
)
def train(
    dataset: str,
    recipe_path: str | None,
    agent_name: str,
    preset: str,
    out_dir: str | None,
    resume_dir: str | None,
    overwrite: bool,
    save_every: int,
    settings: tuple[str, ...],
    seed: int,
    device: str,
    compile_networks: bool,
    precision: str,
    download: bool,
    eval_episodes: int,
    eval_envs: int,
    eval_freq: int,
    eval_freq_episodes: int,
    log_formats: tuple[str, ...],
    log_interval: int,
) -> None:
    """Train an agent on DATASET (a Minari id; default: the embedded PointMaze UMaze dataset, made
    locally if missing), save it to --out, then evaluate it.

    With --recipe NAME|FILE the recipe gives the agent, dataset, preset, H, config and evaluation episodes;
    DATASET, --agent, --preset, --eval-episodes given on the command line and --set override it (the
    defaults shown below apply only where neither sets a value).

    Ctrl-C or SIGTERM stops at the end of a step and saves a checkpoint; `train --resume DIR` continues
    it exactly.

    Under torchrun (`torchrun --standalone --nproc-per-node N $(which latent-skills) train ...`) the
    N processes train one agent data-parallel; rank 0 logs, saves and evaluates."""
    from pathlib import Path

    from .loggers import MissingExtraError, configure_logger, require_formats

    # Mistakes on the command line are reported before torch loads (the agents import it).
    try:
        require_formats(log_formats)  # before loading any data
    except MissingExtraError as exc:
        raise click.ClickException(str(exc)) from exc
    if resume_dir is not None:
        given = [
            p
            for p in ("dataset", "recipe_path", "agent_name", "preset", "out_dir", "settings", "seed")
            if _given(p)
        ]
        if given:
            raise click.UsageError(
                f"--resume continues the saved run with its own settings: leave out {', '.join(given)}"
            )
    else:
        recipe = _training_recipe(dataset, recipe_path, agent_name, preset, eval_episodes)
        options = _parse_settings(settings)
        seed_value: int | str = options.pop("seed", seed)  # --set seed=N is --seed N
        # log_interval is learn()'s, not a config field: --set log_interval=N is --log-interval N
        if "log_interval" in options:
            log_interval = _positive_int(options.pop("log_interval"), "log_interval")
        recipe.agent_config(seed=seed_value, **options)  # a bad --set: ConfigError
        if recipe.dataset != EMBEDDED_DATASET:
            _require_dataset(recipe.dataset, download)

    from .agents import TrainingInterrupted, distributed, load_agent

    distributed.init()
    main_rank = distributed.is_main()
    echo = click.echo if main_rank else (lambda *args, **kwargs: None)

    if resume_dir is not None:
        out = Path(resume_dir)
        agent = load_agent(str(out), device=device)
        if not agent.can_resume:
            raise click.ClickException(
                f"Nothing to resume: {out} holds a finished run (or one saved by save()). Train a new "
                "one with --out, or more stages from Python with learn(stages=[...])."
            )
        echo(f"resuming {type(agent).__name__} from {out}")
        run = {"resume": True}
    else:
        eval_episodes = recipe.eval_episodes
        if recipe.dataset == EMBEDDED_DATASET:
            if main_rank:
                _make_embedded_dataset()
            distributed.barrier()
        agent = recipe.make_agent(seed=seed_value, device=device, download=download, **options)
        out = Path(out_dir or f"runs/{type(agent).__name__.lower()}-{_short_name(recipe.dataset)}")
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise click.UsageError(
                f"{out} already holds a run: continue it with --resume {out}, train into it anyway with "
                "--overwrite, or choose another --out."
            )
        echo(
            f"{type(agent).__name__} on {recipe.dataset} ({len(agent.data.windows)} windows, "
            f"H={agent.config.horizon}), preset {recipe.preset!r}"
        )
        run = {}
    distributed.barrier()  # every rank has checked --out before rank 0 writes to it
    if distributed.world_size() > 1:
        echo(f"data-parallel training on {distributed.world_size()} processes (torch.distributed)")
    if eval_freq and agent.spec.eval_env_spec is None:
        raise click.UsageError(
            f"--eval-freq needs an evaluation env, and none is recorded for {agent.spec.dataset_id}"
        )
    if main_rank:  # the other ranks keep the agent's silent logger
        agent.set_logger(configure_logger(out / "logs", log_formats, agent=agent, append="resume" in run))
    try:
        agent.learn(
            progress_bar=True,
            save_path=out,
            save_every=save_every or None,
            log_interval=log_interval,
            resume=bool(run.get("resume")),
            eval_freq=eval_freq or None,
            eval_episodes=eval_freq_episodes,
            eval_envs=eval_envs,
            compile=compile_networks,
            precision=precision,
        )
    except TrainingInterrupted as exc:
        click.get_current_context().exit(128 + exc.signal_number)
    finally:
        agent.logger.close()  # flushes TensorBoard, finishes the W&B run
    if not main_rank:
        return
    click.echo(
        f"saved {out}"
        + (f" (the best evaluated: {out / 'best'})" if eval_freq and (out / "best").is_dir() else "")
    )
    if eval_episodes:
        _report(
            agent.evaluate(n_episodes=eval_episodes, n_envs=eval_envs, seed=seed, progress_bar=True),
            out / "eval.json",
        )


def _positive_int(text: str, key: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise click.BadParameter(f"{key} must be a whole number >= 1, got {text!r}", param_hint="--set")
    return value


def _given(param: str) -> bool:
    """Whether the command line (not a default) set ``param`` of the current command."""
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source(param)
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _training_recipe(dataset: str, recipe_path: str | None, agent_name: str, preset: str, eval_episodes: int):
    """The recipe the command line describes: --recipe NAME|FILE, with what the command line sets explicitly
    winning over it."""
    from dataclasses import replace

    from .recipes import Recipe, load_recipe

    recipe = Recipe(agent=agent_name, dataset=dataset, preset=preset, eval_episodes=eval_episodes)
    if recipe_path is None:
        return recipe
    try:
        loaded = load_recipe(recipe_path)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--recipe'") from exc
    params = {
        "agent": "agent_name",
        "dataset": "dataset",
        "preset": "preset",
        "eval_episodes": "eval_episodes",
    }
    given = [field for field, param in params.items() if _given(param)]
    recipe = replace(loaded, **{field: getattr(recipe, field) for field in given})
    click.echo(f"recipe {recipe_path}: {recipe.description or recipe.agent + ' on ' + recipe.dataset}")
    return recipe


@main.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def recipes(name: str | None, as_json: bool) -> None:
    """List the training recipes shipped with latent-skills, or print recipe NAME (a name or a file).

    `latent-skills train --recipe NAME` trains one; `latent-skills recipes NAME > mine.toml` makes a copy
    to edit and train with `--recipe mine.toml`."""
    from dataclasses import asdict
    from pathlib import Path

    from .recipes import load_recipe, recipe_text, shipped_recipes

    if name is not None:
        try:
            text, recipe = recipe_text(name), load_recipe(name)
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
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


def _require_dataset(dataset_id: str, download: bool) -> None:
    """A dataset that is not local is downloaded (with --download) or reported, naming the fix, before
    the agent is made."""
    from .data.loading import is_local, load_dataset

    if not is_local(dataset_id):
        load_dataset(dataset_id, download=download)


def _make_embedded_dataset() -> None:
    from .data.loading import is_local

    if not is_local(EMBEDDED_DATASET):
        from .data.makers import collect_pointmaze

        click.echo(f"{EMBEDDED_DATASET} is not local: making it (100k steps, no network needed).")
        collect_pointmaze("umaze", steps=100_000, seed=0, progress=True)


@main.command()
@click.argument("checkpoint")
@click.option("--episodes", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--envs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--stochastic", is_flag=True, help="Sample decoder actions instead of taking their means.")
@click.option(
    "--protocol",
    type=click.Choice(["auto", "d4rl", "dataset"]),
    default="auto",
    show_default=True,
    help="d4rl: D4RL's evaluation env and score (kitchen, antmaze, single-goal maze2d); dataset: the "
    "dataset's evaluation env as stored; auto: d4rl where it applies, else dataset.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override an acting field (e.g. sampler_steps=20, exec_horizon=5).",
)
@click.option("--revision", default=None, help="Hub only: branch, tag or commit [default: main].")
@click.option(
    "--token", default=None, help="Hub only: access token for a private repo [default: logged-in token]."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    metavar="FILE|-",
    help="Also write the result (every episode's return) to this JSON file; - prints it to stdout "
    "(the text report then goes to stderr).",
)
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
    from pathlib import Path

    from .agents import LatentSkillAgent
    from .config import ConfigError
    from .hub import CheckpointError, from_pretrained

    json_to_stdout = json_path == "-"
    video_file = None if video_path is None else _video_file(video_path)
    try:
        agent = from_pretrained(LatentSkillAgent, checkpoint, revision=revision, device=device, token=token)
        if settings:
            agent.set_acting(**_parse_settings(settings))
    except (CheckpointError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    from .envs.video import VideoUnavailable, record_video

    try:
        result = agent.evaluate(
            n_episodes=episodes,
            n_envs=envs,
            seed=seed,
            deterministic=not stochastic,
            progress_bar=True,
            protocol=protocol,
        )
        _report(result, None if json_path is None or json_to_stdout else Path(json_path), err=json_to_stdout)
        if json_to_stdout:
            click.echo(json.dumps(result, indent=2))
        if video_file is not None:
            recorded = record_video(
                agent, video_file, seed=seed, deterministic=not stochastic, video_length=video_length
            )
            click.echo(
                f"video            {video_file} ({recorded['frames']} frames at {recorded['fps']} fps)",
                err=json_to_stdout,
            )
    except (ValueError, VideoUnavailable) as exc:  # an env the checkpoint may not build or render
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # an output file that cannot be written (permissions, a full disk)
        raise click.ClickException(
            f"cannot write {exc.filename or 'an output file'}: {exc.strerror or exc}"
        ) from exc


def _video_file(video_path: str):
    """``--video``'s file: the path itself, or DIR/replay.mp4 for a folder (one that exists, or a path
    ending in a separator); its folder is made, so a bad path fails before the evaluation runs."""
    import os
    from pathlib import Path

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
@click.option("--eval-envs", type=click.IntRange(min=1), default=10, show_default=True)
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
@click.option("--token", default=None, help="Hub access token with write access [default: logged-in token].")
@click.option("--message", "commit_message", default=None, help="Commit message.")
@click.option("--device", default="auto", show_default=True, help="Device for the evaluation.")
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
) -> None:
    """Publish CHECKPOINT (a folder from `train` or `agent.save`) to the Hugging Face Hub repo REPO_ID
    (owner/name, created if needed) in one commit: config.json, model.safetensors, a model card, the
    evaluation results (--eval-episodes), a replay video (replay.mp4) and, from
    CHECKPOINT/logs/progress.csv, a learning curve."""
    from pathlib import Path

    from huggingface_hub.utils import HfHubHTTPError

    from .agents import load_agent
    from .hub import CheckpointError, push_to_hub

    try:
        agent = load_agent(checkpoint, device=device)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    from .envs.video import VideoUnavailable

    progress = Path(checkpoint) / "logs" / "progress.csv"
    try:
        url = push_to_hub(
            agent,
            repo_id,
            token=token,
            private=private or None,
            commit_message=commit_message,
            # the default evaluates only where an evaluation env is recorded; a given number always
            eval_episodes=eval_episodes if _given("eval_episodes") else None,
            eval_envs=eval_envs,
            video=False if no_video else None,
            reproduce=reproduce,
            revision=revision,
            create_pr=create_pr,
            progress_csv=progress if progress.is_file() else None,
        )
    except (HfHubHTTPError, ValueError, VideoUnavailable) as exc:  # ValueError: a malformed repo id
        raise click.ClickException(f"push to {repo_id} failed: {exc}") from exc
    click.echo(f"pushed {checkpoint} to {url}")
    pr_url = getattr(url, "pr_url", None)
    if pr_url:
        click.echo(f"pull request: {pr_url}")


def _report(result: dict, path=None, err: bool = False) -> None:
    score = result["normalized_score"]
    success = result["success_rate"]
    click.echo(f"protocol         {result['protocol']}", err=err)
    click.echo(
        f"mean return      {result['mean_return']:.2f} ± {result['std_return']:.2f} over {result['n_episodes']} episodes",
        err=err,
    )
    click.echo(f"normalized score {'n/a' if score is None else f'{score:.1f}'}", err=err)
    click.echo(f"success rate     {'n/a' if success is None else f'{success:.2f}'}", err=err)
    if path is not None:
        path.write_text(json.dumps(result, indent=2) + "\n")


def _print_summary(dataset, as_json: bool = False) -> None:
    from .data import dataset_summary

    summary = dataset_summary(dataset)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    width = max(map(len, summary))
    for key, value in summary.items():
        click.echo(f"{key:<{width}}  {value}")


# ---------------------------------------------------------------- latent-skills plot: the paper's figures


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
            raise click.ClickException(str(exc)) from exc


def _load_agents(checkpoints: tuple[str, ...], device: str) -> list:
    from .agents import load_agent

    return [load_agent(checkpoint, device=device) for checkpoint in checkpoints]


_WINDOWS_OPTION = click.option(
    "--windows",
    type=click.Choice(["starts", "all"]),
    default="starts",
    show_default=True,
    help="Windows that start episodes (the paper's choice) or every window.",
)
_SEED_OPTION = click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds subsampling and sampling."
)
_DEVICE_OPTION = click.option("--device", default="auto", show_default=True)


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
    from .plots import plot_latents_by_horizon

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
    from .plots import plot_prior_samples

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
    from .plots import plot_world_model

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
    from .plots import plot_learning_curves

    with _PlotErrors():
        path = plot_learning_curves(source, out, metric=metric)
    click.echo(f"wrote {path}")


# ---------------------------------------------------------------- latent-skills sweep: many runs on Ray


class _ListOptions(click.Command):
    """``--seeds 0 1 2`` and ``--agents LDCQ LDGC``: each takes the values after it up to the next
    option (a click option takes one value per use; ``--seeds 0 --seeds 1`` and ``--seeds 0,1`` work too)."""

    list_options = ("--seeds", "--agents")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        current, taken = None, False
        for position, arg in enumerate(args):
            if arg == "--":
                expanded += args[position:]
                break
            if arg in self.list_options:
                if current and not taken:
                    expanded.append(current)  # an option given no value: click says so
                current, taken = arg, False
            elif current and (not arg.startswith("-") or arg[1:].isdigit()):  # a value (a seed may be < 0)
                expanded += [current, arg]
                taken = True
            else:
                if current and not taken:
                    expanded.append(current)
                current = None
                expanded.append(arg)
        else:
            if current and not taken:
                expanded.append(current)
        return super().parse_args(ctx, expanded)


def _split_values(values: tuple[str, ...]) -> list[str]:
    return [value.strip() for text in values for value in text.split(",") if value.strip()]


@main.command(cls=_ListOptions)
@click.option(
    "--recipe",
    "recipe_path",
    metavar="NAME|FILE",
    required=True,
    help="The training recipe: a shipped one by name (`latent-skills recipes` lists them) or a TOML file.",
)
@click.option("--seeds", multiple=True, required=True, metavar="SEED...", help="Seeds, e.g. --seeds 0 1 2.")
@click.option(
    "--agents",
    "agent_names",
    multiple=True,
    metavar="NAME...",
    help="Agents to train on the recipe, e.g. --agents LDCQ LDGC BCQH [default: the recipe's].",
)
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a config field in every run."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the runs (OUT/AGENT-seedS), sweep.json and sweep.csv [default: runs/sweep-RECIPE]; "
    "on a Ray cluster one that every node sees.",
)
@click.option("--overwrite", is_flag=True, help="Sweep into --out even if it holds an earlier sweep's runs.")
@click.option(
    "--eval-episodes",
    type=click.IntRange(min=0),
    default=None,
    help="Evaluation episodes per run [default: the recipe's]; 0 skips evaluation.",
)
@click.option("--eval-envs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--local", is_flag=True, help="Run one after another in this process, without Ray.")
@click.option("--cpus-per-run", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option(
    "--gpus-per-run",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPU slots per run (fractions share a GPU).",
)
@click.option(
    "--num-cpus",
    type=click.IntRange(min=1),
    default=None,
    help="CPUs of the local Ray instance [default: all]; unused when $RAY_ADDRESS names a cluster.",
)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--download", is_flag=True, help="Download the recipe's dataset with Minari if it is not local."
)
def sweep(
    recipe_path: str,
    seeds: tuple[str, ...],
    agent_names: tuple[str, ...],
    settings: tuple[str, ...],
    out_dir: str | None,
    overwrite: bool,
    eval_episodes: int | None,
    eval_envs: int,
    local: bool,
    cpus_per_run: float,
    gpus_per_run: float,
    num_cpus: int | None,
    device: str,
    download: bool,
) -> None:
    """Train a recipe over several seeds (and agents), each run a Ray task, then evaluate each run and
    report, per agent, the per-seed normalized scores, mean ± std and the interquartile mean with its
    95% stratified-bootstrap confidence interval; the table also goes to OUT/sweep.json and
    OUT/sweep.csv, each run's checkpoint to OUT/AGENT-seedS.

    Ray (pip install 'latent-skills[ray]') attaches to the cluster at $RAY_ADDRESS, or starts a local
    instance for the sweep. A run that fails is reported in the table and the others go on; the command
    then exits with status 1."""
    import os

    from .loggers import MissingExtraError
    from .recipes import Recipe, load_recipe
    from .sweep import run_sweep

    try:
        seed_values = [int(seed) for seed in _split_values(seeds)]
    except ValueError as exc:
        raise click.BadParameter(f"seeds are integers: {exc}", param_hint="'--seeds'") from exc
    if len(set(seed_values)) != len(seed_values):
        raise click.BadParameter(f"seeds repeat: {' '.join(map(str, seed_values))}", param_hint="'--seeds'")
    names = [_AgentName().convert(name, None, None) for name in _split_values(agent_names)]
    options = _parse_settings(settings)
    if "seed" in options:
        raise click.UsageError("every run has its own seed: give them with --seeds, not --set seed=")
    try:
        recipe = load_recipe(recipe_path)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--recipe'") from exc

    def prepare(loaded: Recipe) -> None:
        if loaded.dataset == EMBEDDED_DATASET:
            _make_embedded_dataset()

    try:
        result = run_sweep(
            recipe,
            seed_values,
            agents=names or None,
            settings=options,
            out=out_dir,
            eval_episodes=eval_episodes,
            eval_envs=eval_envs,
            device=device,
            download=download,
            backend="local" if local else "ray",
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
            num_cpus=num_cpus,
            overwrite=overwrite,
            echo=click.echo,
            prepare=prepare,
            name=recipe_path,
        )
    except MissingExtraError as exc:
        raise click.ClickException(str(exc)) from exc
    except ConnectionError as exc:  # ray.init could not reach $RAY_ADDRESS
        raise click.ClickException(
            f"{exc} (RAY_ADDRESS={os.environ.get('RAY_ADDRESS')}): start the cluster, or unset RAY_ADDRESS "
            "to start a local Ray instance, or run with --local"
        ) from exc
    click.echo("\n" + result.table())
    out = result.info["out"]
    click.echo(f"\nwrote {out}/sweep.json and {out}/sweep.csv")
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} of {len(result.runs)} runs failed (see the table)")
