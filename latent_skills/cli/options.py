"""What several commands share: option declarations, parameter types, and how results are printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from latent_skills.runs import write_eval

F = TypeVar("F", bound=Callable[..., Any])


def device_option(help: str | None = None) -> Callable[[F], F]:
    return click.option("--device", default="auto", show_default=True, help=help)


def seed_option(help: str | None = None) -> Callable[[F], F]:
    # gymnasium seeds resets with non-negative integers only
    return click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=help)


def eval_envs_option() -> Callable[[F], F]:
    return click.option("--eval-envs", type=click.IntRange(min=1), default=10, show_default=True)


def settings_option(help: str) -> Callable[[F], F]:
    """``--set KEY=VALUE``, repeatable (read with :func:`parse_settings`)."""
    return click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help=help)


def download_option(help: str) -> Callable[[F], F]:
    return click.option("--download", is_flag=True, help=help)


def json_flag() -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def json_output_option(what: str) -> Callable[[F], F]:
    """``--json FILE|-``: ``what`` as JSON in a file, or on stdout with ``-`` (the text then on stderr)."""
    return click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, allow_dash=True),
        default=None,
        metavar="FILE|-",
        help=f"Also write {what} to this JSON file; - prints it to stdout (the text report then goes to stderr).",
    )


def write_json_output(data: dict[str, Any], json_path: str | None) -> None:
    """What ``--json`` asked for: nothing, stdout (``-``) or a file."""
    if json_path == "-":
        click.echo(json.dumps(data, indent=2))
    elif json_path is not None:
        Path(json_path).write_text(json.dumps(data, indent=2) + "\n")


def recipe_option(*, required: bool, help: str) -> Callable[[F], F]:
    return click.option(
        "--recipe", "recipe_path", metavar="NAME|FILE", required=required, default=None, help=help
    )


def token_option(help: str) -> Callable[[F], F]:
    return click.option("--token", default=None, help=help)


def parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        settings[key.strip()] = value.strip()
    return settings


class AgentName(click.ParamType):
    """A registered agent name (latent_skills.agents.registry), any case; checked against the
    registry's names, which imports no agent (nor torch) for the library's own."""

    name = "agent"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "NAME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from latent_skills.agents.registry import canonical_name

        try:
            return canonical_name(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class LogFormats(click.ParamType):
    name = "FORMAT[,FORMAT...]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if isinstance(value, tuple):
            return value
        from latent_skills.loggers import FORMATS

        formats = tuple(dict.fromkeys(f.strip().lower() for f in str(value).split(",") if f.strip()))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats:
            self.fail(f"{', '.join(unknown) or 'none'}: choose from {', '.join(FORMATS)}", param, ctx)
        return formats


def positive_int(text: str, key: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise click.BadParameter(f"{key} must be a whole number >= 1, got {text!r}", param_hint="--set")
    return value


def given(param: str) -> bool:
    """Whether the command line (not a default) set ``param`` of the current command."""
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source(param)
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def report(result: dict[str, Any], path: Path | None = None, err: bool = False) -> None:
    """An evaluation's scores, one per line; also written to ``path`` (eval.json) when given."""
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
        write_eval(result, path)


def print_summary(dataset: Any, as_json: bool = False) -> None:
    """A dataset's summary (``latent_skills.data.dataset_summary``) as aligned lines or JSON."""
    from latent_skills.data import dataset_summary

    summary = dataset_summary(dataset)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    width = max(map(len, summary))
    for key, value in summary.items():
        click.echo(f"{key:<{width}}  {value}")
