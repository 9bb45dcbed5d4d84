"""``latent-skills sweep``: a recipe over several seeds (and agents), each run a Ray task."""

from __future__ import annotations

import click

from latent_skills.runs import ensure_dataset, made_here

from .main import UserError, main
from .options import (
    AgentName,
    device_option,
    download_option,
    eval_envs_option,
    parse_settings,
    recipe_option,
    settings_option,
)


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
@recipe_option(
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
@settings_option("Override a config field in every run.")
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
@eval_envs_option()
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
@device_option()
@download_option("Download the recipe's dataset with Minari if it is not local.")
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

    from latent_skills.loggers import MissingExtraError
    from latent_skills.recipes import Recipe, load_recipe
    from latent_skills.sweep import run_sweep

    try:
        seed_values = [int(seed) for seed in _split_values(seeds)]
    except ValueError as exc:
        raise click.BadParameter(f"seeds are integers: {exc}", param_hint="'--seeds'") from exc
    if len(set(seed_values)) != len(seed_values):
        raise click.BadParameter(f"seeds repeat: {' '.join(map(str, seed_values))}", param_hint="'--seeds'")
    names = [AgentName().convert(name, None, None) for name in _split_values(agent_names)]
    options = parse_settings(settings)
    if "seed" in options:
        raise click.UsageError("every run has its own seed: give them with --seeds, not --set seed=")
    try:
        recipe = load_recipe(recipe_path)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--recipe'") from exc

    def prepare(loaded: Recipe) -> None:
        if made_here(loaded.dataset) is not None:  # made here (no network) if missing
            ensure_dataset(loaded.dataset, echo=click.echo)

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
        raise UserError(str(exc)) from exc
    except ConnectionError as exc:  # ray.init could not reach $RAY_ADDRESS
        raise UserError(
            f"{exc} (RAY_ADDRESS={os.environ.get('RAY_ADDRESS')}): start the cluster, or unset RAY_ADDRESS "
            "to start a local Ray instance, or run with --local"
        ) from exc
    click.echo("\n" + result.table())
    out = result.info["out"]
    click.echo(f"\nwrote {out}/sweep.json and {out}/sweep.csv")
    if result.failed:  # not the user's mistake: status 1, as a failed build
        raise click.ClickException(f"{len(result.failed)} of {len(result.runs)} runs failed (see the table)")
