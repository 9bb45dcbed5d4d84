from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from latent_skills.cli import main

COMMANDS = [[], ["collect"], ["collect", "pointmaze"], ["info"], ["train"], ["evaluate"], ["push"]]


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


def test_train_then_evaluate_from_the_command_line(minari_root, tmp_path):
    from agent_helpers import TINY

    from latent_skills.data.makers import collect_pointmaze

    collect_pointmaze(
        "umaze", steps=800, seed=2, dataset_id="test/pointmaze/cli-v0", ref_episodes=2, progress=False
    )
    settings = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    out = tmp_path / "run"
    args = ["train", "test/pointmaze/cli-v0", "--out", str(out), "--eval-episodes", "2", "--eval-envs", "2"]
    result = CliRunner().invoke(main, [*args, *[x for kv in settings for x in ("--set", kv)]])
    assert result.exit_code == 0, result.output
    assert "normalized score" in result.output
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "eval.json", "logs"}
    assert json.loads((out / "eval.json").read_text())["n_episodes"] == 2
    assert (out / "logs" / "progress.csv").read_text().count("\n") > 1

    result = CliRunner().invoke(
        main, ["evaluate", str(out), "--episodes", "1", "--envs", "1", "--set", "sampler_steps=3"]
    )
    assert result.exit_code == 0, result.output
    assert "success rate" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(out), "--set", "latent_dim=3"])
    assert result.exit_code == 1 and "only" in result.output


def test_train_rejects_unknown_fields(minari_root, box_dataset):
    result = CliRunner().invoke(main, ["train", "test/box/mixed-v0", "--set", "skils_steps=3"])
    assert result.exit_code == 1 and "Did you mean 'skills_steps'" in result.output
