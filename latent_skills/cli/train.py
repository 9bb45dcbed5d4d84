"""``latent-skills train``: one run of :mod:`latent_skills.runs`'s flow, resumable, data-parallel
under torchrun."""

from __future__ import annotations

import click

from latent_skills.runs import EMBEDDED_DATASET, ensure_dataset, evaluate, made_here
from latent_skills.runs import train as train_run

from .main import UserError, main
from .options import (
    AgentName,
    LogFormats,
    device_option,
    download_option,
    eval_envs_option,
    given,
    json_output_option,
    parse_settings,
    positive_int,
    recipe_option,
    report,
    seed_option,
    settings_option,
    write_json_output,
)


@main.command()
@click.argument("dataset", default=EMBEDDED_DATASET)
@recipe_option(
    required=False,
    help="A training recipe: a shipped one by name (e.g. ldcq-kitchen-mixed; `latent-skills recipes` "
    "lists them) or a TOML file. It gives the agent, dataset, preset, H, config and evaluation episodes; "
    "DATASET, options given on the command line and --set override it.",
)
@click.option(
    "--agent",
    "agent_name",
    type=AgentName(),
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
@settings_option("Override a config field (repeatable).")
@seed_option()
@device_option()
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
@download_option("Download DATASET with Minari if it is not local.")
@click.option(
    "--eval-episodes", type=click.IntRange(min=0), default=20, show_default=True, help="0 skips evaluation."
)
@eval_envs_option()
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
    type=LogFormats(),
    default="csv",
    show_default=True,
    help="Log formats, comma-separated: csv, json, log (text) and tensorboard under OUT/logs, stdout "
    "(the terminal), wandb (W&B project: $WANDB_PROJECT or latent-skills; WANDB_MODE=offline works "
    "without an account).",
)
@click.option(
    "-n",
    "--n-timesteps",
    type=click.IntRange(min=1),
    default=None,
    help="Gradient steps over all stages, split in the config's proportions [default: the config's "
    "*_steps]. Not environment steps: training is offline.",
)
@json_output_option("the run (its folder, agent, dataset and evaluation)")
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
    n_timesteps: int | None,
    json_path: str | None,
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

    from latent_skills.loggers import MissingExtraError, require_formats

    # Mistakes on the command line are reported before torch loads (the agents import it).
    try:
        require_formats(log_formats)  # before loading any data
    except MissingExtraError as exc:
        raise UserError(str(exc)) from exc
    if resume_dir is not None:
        set_here = [
            p
            for p in (
                "dataset",
                "recipe_path",
                "agent_name",
                "preset",
                "out_dir",
                "settings",
                "seed",
                "n_timesteps",
            )
            if given(p)
        ]
        if set_here:
            raise click.UsageError(
                f"--resume continues the saved run with its own settings: leave out {', '.join(set_here)}"
            )
    else:
        recipe = training_recipe(dataset, recipe_path, agent_name, preset, eval_episodes)
        options = parse_settings(settings)
        seed_value: int | str = options.pop("seed", seed)  # --set seed=N is --seed N
        # log_interval is learn()'s, not a config field: --set log_interval=N is --log-interval N
        if "log_interval" in options:
            log_interval = positive_int(options.pop("log_interval"), "log_interval")
        recipe.agent_config(seed=seed_value, **options)  # a bad --set: ConfigError
        if made_here(recipe.dataset) is None:  # downloaded (--download) or reported, naming the fix
            ensure_dataset(recipe.dataset, download=download)

    from latent_skills.agents import TrainingInterrupted, distributed, load_agent

    distributed.init()
    main_rank = distributed.is_main()
    to_stderr = json_path == "-"  # stdout carries the JSON alone

    def echo(message: str) -> None:
        if main_rank:
            click.echo(message, err=to_stderr)

    if resume_dir is not None:
        out = Path(resume_dir)
        agent = load_agent(str(out), device=device)
        if not agent.can_resume:
            raise UserError(
                f"Nothing to resume: {out} holds a finished run (or one saved by save()). Train a new "
                "one with --out, or more stages from Python with learn(stages=[...])."
            )
        echo(f"resuming {type(agent).__name__} from {out}")
        resume = True
    else:
        eval_episodes = recipe.eval_episodes
        if made_here(recipe.dataset) is not None:  # made here (no network) if missing, by rank 0
            if main_rank:
                ensure_dataset(recipe.dataset, echo=echo)
            distributed.barrier()
        agent = recipe.make_agent(seed=seed_value, device=device, download=download, **options)
        out = Path(out_dir or f"runs/{type(agent).__name__.lower()}-{short_name(recipe.dataset)}")
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise click.UsageError(
                f"{out} already holds a run: continue it with --resume {out}, train into it anyway with "
                "--overwrite, or choose another --out."
            )
        echo(
            f"{type(agent).__name__} on {recipe.dataset} ({len(agent.data.windows)} windows, "
            f"H={agent.config.horizon}), preset {recipe.preset!r}"
        )
        resume = False
    distributed.barrier()  # every rank has checked --out before rank 0 writes to it
    if distributed.world_size() > 1:
        echo(f"data-parallel training on {distributed.world_size()} processes (torch.distributed)")
    if eval_freq and agent.spec.eval_env_spec is None:
        raise click.UsageError(
            f"--eval-freq needs an evaluation env, and none is recorded for {agent.spec.dataset_id}"
        )
    try:
        train_run(
            agent,
            out,
            log_formats=log_formats if main_rank else None,  # the other ranks keep a silent logger
            resume=resume,
            total_timesteps=n_timesteps,
            progress_bar=True,
            save_every=save_every or None,
            log_interval=log_interval,
            eval_freq=eval_freq or None,
            eval_episodes=eval_freq_episodes,
            eval_envs=eval_envs,
            compile=compile_networks,
            precision=precision,
        )
    except TrainingInterrupted as exc:
        click.get_current_context().exit(128 + exc.signal_number)
    if not main_rank:
        return
    echo(
        f"saved {out}"
        + (f" (the best evaluated: {out / 'best'})" if eval_freq and (out / "best").is_dir() else "")
    )
    result = None
    if eval_episodes:
        result = evaluate(agent, out, episodes=eval_episodes, envs=eval_envs, seed=seed, progress_bar=True)
        report(result, err=to_stderr)
    run = {
        "out": str(out),
        "agent": type(agent).__name__,
        "dataset": agent.spec.dataset_id,
        "evaluation": result,
    }
    try:
        write_json_output(run, json_path)
    except OSError as exc:
        raise UserError(f"cannot write {json_path}: {exc.strerror or exc}") from exc


def training_recipe(dataset: str, recipe_path: str | None, agent_name: str, preset: str, eval_episodes: int):
    """The recipe the command line describes: --recipe NAME|FILE, with what the command line sets explicitly
    winning over it."""
    from dataclasses import replace

    from latent_skills.recipes import Recipe, load_recipe

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
    set_here = [field for field, param in params.items() if given(param)]
    recipe = replace(loaded, **{field: getattr(recipe, field) for field in set_here})
    click.echo(
        f"recipe {recipe_path}: {recipe.description or recipe.agent + ' on ' + recipe.dataset}",
        err=given("json_path") and click.get_current_context().params.get("json_path") == "-",
    )
    return recipe


def short_name(dataset_id: str) -> str:
    """``latent-skills/pointmaze/umaze-v0`` → ``umaze``; ``D4RL/kitchen/mixed-v2`` → ``kitchen-mixed``."""
    parts = dataset_id.split("/")[1:] or [dataset_id]
    name = "-".join(p.rsplit("-v", 1)[0] for p in parts)
    return name.removeprefix("pointmaze-")
