from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from latent_skills.cli import main

COMMANDS = [[], ["collect"], ["collect", "pointmaze"], ["info"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_info_prints_the_dataset(box_dataset):
    result = CliRunner().invoke(main, ["info", "test/box/mixed-v0", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["steps"] == box_dataset.total_steps and summary["episodes"] == 7


def test_info_unknown_id_is_one_clear_error(minari_root):
    result = CliRunner().invoke(main, ["info", "nobody/nothing/none-v0"])
    assert result.exit_code == 1
    assert "minari download nobody/nothing/none-v0" in result.output
    assert "Traceback" not in result.output
