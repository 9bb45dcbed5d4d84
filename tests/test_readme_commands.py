"""Every `latent-skills ...` line in the README's shell blocks is what `--help` says (issue 24): its
commands exist, its options exist and take the values shown (every alternative of a choice), and its
placeholders for arguments are the metavars the help prints (CHECKPOINT, CHECKPOINTS..., SOURCE).

Each line is parsed by the command itself (click's ``make_context``, no callback run), in a folder
where the example paths exist, so an option the command lost or an argument it no longer takes fails
here before a reader finds out."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import click
import pytest

from latent_skills.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(\.\.\.)?$")
BRACES = re.compile(r"^\{(.+)\}$")


def readme_command_lines() -> list[str]:
    lines, in_block = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_block = not in_block
        elif in_block and re.match(r"^(\.venv/bin/)?latent-skills ", line):
            lines.append(line)
    return lines


def words(line: str) -> list[str]:
    """The line's words after `latent-skills`: no comment, no redirection, [optional] marks dropped."""
    text = re.split(r"\s+#\s", line)[0].split(" > ")[0]
    return [w for w in shlex.split(text.replace("[", " ").replace("]", " "))[1:] if w != "..."]


def invocations(line: str) -> list[tuple[list[str], click.Command, list[str]]]:
    """(command path, command, its words) for each command the line names ({a,b} = each of a and b)."""
    found = []
    rest = words(line)
    heads: list[tuple[list[str], click.Command, list[str]]] = [([], main, rest)]
    while heads:
        path, command, rest = heads.pop()
        if not isinstance(command, click.Group):
            found.append((path, command, rest))
            continue
        assert rest, f"{line!r}: `{' '.join(path)}` needs a subcommand"
        braced = BRACES.match(rest[0])
        names = braced.group(1).split(",") if braced else [rest[0]]
        for name in names:
            assert name in command.commands, f"{line!r}: no command `{' '.join([*path, name])}`"
            heads.append(([*path, name], command.commands[name], rest[1:]))
    return found


def alternatives(argv: list[str], command: click.Command) -> list[list[str]]:
    """The argv once per alternative an option value offers (`a|b` or `{a,b}`), each choice checked."""
    options = {name: p for p in command.params if isinstance(p, click.Option) for name in p.opts}
    per_word: list[list[str]] = []
    for i, word in enumerate(argv):
        option = options.get(argv[i - 1]) if i > 0 else None
        braced = BRACES.match(word)
        values = braced.group(1).split(",") if braced else word.split("|") if "|" in word else [word]
        if option is not None and isinstance(option.type, click.Choice):
            per_word.append(values)
        elif option is not None and PLACEHOLDER.match(word):  # --steps N: a value of the option's type
            per_word.append([EXAMPLE_VALUES.get(option.type.name, word)])
        else:
            per_word.append([values[0]])
    return [list(choice) for choice in itertools.product(*per_word)]


def make_example_paths(argv: list[str], folder: Path) -> None:
    """The paths a line names exist (an example checkpoint folder, a manifest file, a placeholder)."""
    for i, word in enumerate(argv):
        argument_placeholder = PLACEHOLDER.match(word) and (i == 0 or not argv[i - 1].startswith("-"))
        if argument_placeholder or ("/" in word and not word.startswith("-") and "=" not in word):
            target = folder / word
            if target.suffix in (".toml", ".json", ".csv"):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            else:
                target.mkdir(parents=True, exist_ok=True)


EXAMPLE_VALUES = {"integer": "1", "integer range": "1", "float": "0.5", "float range": "0.5"}
LINES = readme_command_lines()


def test_the_readme_has_command_lines():
    assert len(LINES) >= 10
    assert any(line.startswith("latent-skills plot latents ") for line in LINES)


@pytest.mark.parametrize("line", LINES)
def test_a_readme_command_line_is_what_help_says(line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path, command, argv in invocations(line):
        make_example_paths(argv, tmp_path)
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        for choice in alternatives(argv, command):
            try:
                ctx = command.make_context(" ".join(path), list(choice), resilient_parsing=False)
            except click.ClickException as exc:
                pytest.fail(f"{line!r} as `{' '.join([*path, *choice])}`: {exc.format_message()}")
            for argument in arguments:
                given = ctx.params[argument.name]
                for value in given if isinstance(given, tuple) else [given]:
                    if isinstance(value, str) and PLACEHOLDER.match(value):
                        metavar = argument.make_metavar(ctx).strip("[]")
                        assert value == metavar, (
                            f"{line!r}: `{' '.join(path)}` shows {value} where --help says {metavar}"
                        )
