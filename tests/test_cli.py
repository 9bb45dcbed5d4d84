from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from conftest import wandb_records

from latent_skills.cli import main

COMMANDS = [
    [],
    ["collect"],
    ["collect", "pointmaze"],
    ["info"],
    ["train"],
    ["evaluate"],
    ["push"],
    ["recipes"],
    ["sweep"],
]


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
    assert result.exit_code == 2
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
    saved = json.loads((out / "eval.json").read_text())
    assert saved["n_episodes"] == 2 and saved["protocol"] == "d4rl"  # the maze2d env: D4RL's
    assert (out / "logs" / "progress.csv").read_text().count("\n") > 1

    result = CliRunner().invoke(
        main, ["evaluate", str(out), "--episodes", "1", "--envs", "1", "--set", "sampler_steps=3"]
    )
    assert result.exit_code == 0, result.output
    assert "success rate" in result.output and "protocol         d4rl" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(out), "--episodes", "1", "--protocol", "dataset"])
    assert result.exit_code == 0 and "protocol         dataset" in result.output, result.output
    result = CliRunner().invoke(main, ["evaluate", str(out), "--set", "latent_dim=3"])
    assert result.exit_code == 2 and "only" in result.output


def test_evaluate_with_a_protocol_that_does_not_apply_is_a_clear_error(pointmaze_dataset, tmp_path):
    from agent_helpers import TINY

    from latent_skills import BCQH

    BCQH.from_dataset(pointmaze_dataset, preset="quick", **TINY).save(tmp_path / "agent")
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "agent"), "--protocol", "d4rl"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "protocol 'd4rl' does not apply" in result.output and "'dataset'" in result.output


def test_train_rejects_unknown_fields(minari_root, box_dataset):
    result = CliRunner().invoke(main, ["train", "test/box/mixed-v0", "--set", "skils_steps=3"])
    assert result.exit_code == 2 and "Did you mean 'skills_steps'" in result.output


def _tiny_args(**extra: object) -> list[str]:
    from agent_helpers import TINY

    values = {**TINY, "horizon": 2, **extra}
    settings = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values.items()]
    return [x for kv in settings for x in ("--set", kv)]


def test_train_refuses_a_used_folder_and_resumes_an_interrupted_run(minari_root, box_dataset, tmp_path):
    from latent_skills import LDCQ

    out = tmp_path / "run"
    args = ["train", "test/box/mixed-v0", "--out", str(out), "--eval-episodes", "0"]
    first = CliRunner().invoke(main, [*args, *_tiny_args()])
    assert first.exit_code == 0, first.output
    csv = (out / "logs" / "progress.csv").read_text()
    again = CliRunner().invoke(main, [*args, *_tiny_args()])
    assert again.exit_code == 2 and "--resume" in again.output and "--overwrite" in again.output
    assert (out / "logs" / "progress.csv").read_text() == csv  # nothing was touched

    # an interrupted run (as Ctrl-C leaves it), resumed from the command line
    agent = LDCQ.from_dataset(box_dataset, **{**dict(_pairs(_tiny_args())), "seed": 0})

    def ctrl_c(locals_, globals_) -> bool:
        if locals_["name"] == "prior" and locals_["step"] == 4:
            raise KeyboardInterrupt
        return True

    with pytest.raises(KeyboardInterrupt):
        agent.learn(save_path=tmp_path / "cut", callback=ctrl_c)
    resumed = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "cut"), "--eval-episodes", "0"])
    assert resumed.exit_code == 0, resumed.output
    assert LDCQ.load(tmp_path / "cut").stages_completed == ["skills", "prior", "q"]
    both = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "cut"), "--set", "seed=1"])
    assert both.exit_code == 2 and "leave out settings" in both.output
    done = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "cut")])
    assert done.exit_code == 2 and "Nothing to resume" in done.output and "Traceback" not in done.output


def _pairs(args: list[str]):
    for value in args[1::2]:
        key, _, text = value.partition("=")
        yield key, text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "q_widths=0,4"], "q_widths"),
        (["--set", "grad_clip=0"], "grad_clip"),
        (["--set", "skills_lr=inf"], "skills_lr"),
        (["--set", "seed=-1"], "seed"),
        (["--device", "cuda:7"], "device"),
    ],
)
def test_user_errors_are_one_line_without_traceback(minari_root, box_dataset, tmp_path, extra, message):
    import torch

    if extra[0] == "--device" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that device")
    result = CliRunner().invoke(main, ["train", "test/box/mixed-v0", "--out", str(tmp_path / "r"), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_set_seed_is_the_seed(minari_root, box_dataset, tmp_path):
    args = ["train", "test/box/mixed-v0", "--eval-episodes", "0", *_tiny_args(skills_steps=2, prior_steps=2)]
    result = CliRunner().invoke(
        main, [*args, "--set", "q_steps=2", "--set", "seed=5", "--out", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "config.json").read_text())["config"]["seed"] == 5


def test_train_n_timesteps_splits_the_steps_and_json_dash_prints_the_run(minari_root, box_dataset, tmp_path):
    """`-n` as in the zoo (gradient steps here, split in the config's proportions); `--json -` puts the
    run's JSON alone on stdout."""
    args = [
        "train",
        "test/box/mixed-v0",
        "--eval-episodes",
        "0",
        *_tiny_args(skills_steps=10, prior_steps=10),
    ]
    result = CliRunner().invoke(
        main, [*args, "--set", "q_steps=20", "-n", "8", "--out", str(tmp_path / "a"), "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run == {
        "out": str(tmp_path / "a"),
        "agent": "LDCQ",
        "dataset": "test/box/mixed-v0",
        "evaluation": None,
    }
    assert "saved" in result.stderr
    state = json.loads((tmp_path / "a" / "config.json").read_text())
    assert state["num_timesteps"] == 8  # 10 : 10 : 20 of 8 steps
    resumed = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "a"), "-n", "4"])
    assert resumed.exit_code == 2 and "leave out n_timesteps" in resumed.output


def test_train_logs_to_tensorboard_and_wandb_and_evaluates_during_training(
    pointmaze_dataset, tmp_path, offline_wandb
):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    tiny = _tiny_args(skills_steps=4, prior_steps=4, q_steps=6)
    args = [
        "train",
        "test/pointmaze/random-v0",
        "--out",
        str(out),
        "--eval-episodes",
        "0",
        "--eval-envs",
        "1",
    ]
    during = ["--eval-freq", "3", "--eval-freq-episodes", "1", "--log", "csv,tensorboard,wandb"]
    result = CliRunner().invoke(main, [*args, *during, *tiny])
    assert result.exit_code == 0, result.output
    assert "the best evaluated" in result.output
    logs = out / "logs"
    assert json.loads((logs / "config.json").read_text())["agent"] == "LDCQ"
    assert "eval/mean_reward" in (logs / "progress.csv").read_text().splitlines()[0]
    assert list(logs.glob("events.out.tfevents.*"))
    recorded = wandb_records(logs, [b"eval/success_rate", b"q/loss"])
    assert b"eval/success_rate" in recorded and b"q/loss" in recorded
    assert json.loads((out / "best" / "eval.json").read_text())["step"] in (3, 6)


@pytest.mark.parametrize("fmt, module", [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_a_missing_log_package_is_one_line_naming_the_extra(fmt, module, monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # as if not installed
    result = CliRunner().invoke(main, ["train", "--log", f"csv,{fmt}", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert f'pip install "latent-skills[{fmt}]"' in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # refused before any work


def test_train_rejects_unknown_log_formats_and_eval_freq_without_env(minari_root, box_dataset, tmp_path):
    result = CliRunner().invoke(main, ["train", "test/box/mixed-v0", "--log", "csv,mlflow"])
    assert result.exit_code == 2 and "mlflow" in result.output and "tensorboard" in result.output
    args = ["train", "test/box/mixed-v0", "--eval-freq", "5", "--out", str(tmp_path / "r"), *_tiny_args()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--eval-freq needs an evaluation env" in result.output


def test_train_takes_bf16_precision_and_keeps_float32_weights(minari_root, box_dataset, tmp_path):
    from safetensors.torch import load_file

    args = ["train", "test/box/mixed-v0", "--eval-episodes", "0", *_tiny_args(skills_steps=3, prior_steps=3)]
    result = CliRunner().invoke(
        main, [*args, "--set", "q_steps=3", "--precision", "bf16", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    tensors = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert tensors and all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point())
    refused = CliRunner().invoke(main, [*args, "--precision", "fp8"])
    assert refused.exit_code == 2 and "'fp8' is not one of 'float32', 'bf16'" in refused.output


def test_help_lists_every_log_format_and_the_log_interval():
    result = CliRunner().invoke(main, ["train", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("csv", "json", "log (text)", "stdout", "tensorboard", "wandb", "--log-interval"):
        assert name in result.output, name


def test_set_log_interval_is_the_log_interval(minari_root, box_dataset, tmp_path):
    """README and docs name log_interval as a setting: --set log_interval=N works as --log-interval N."""
    args = ["train", "test/box/mixed-v0", "--eval-episodes", "0", *_tiny_args(skills_steps=4, prior_steps=4)]
    rows = {}
    for name, extra in (
        ("set", ["--set", "log_interval=2"]),
        ("flag", ["--log-interval", "2"]),
        ("default", []),
    ):
        result = CliRunner().invoke(main, [*args, *extra, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        rows[name] = (tmp_path / name / "logs" / "progress.csv").read_text().count("\n")
    assert rows["set"] == rows["flag"] > rows["default"]
    for bad in ("0", "many"):
        result = CliRunner().invoke(
            main, [*args, "--set", f"log_interval={bad}", "--out", str(tmp_path / "b")]
        )
        assert result.exit_code == 2 and "log_interval must be a whole number" in result.output
        assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def evaluated_checkpoint(tiny_ldcq_checkpoint, tmp_path_factory):
    """A copy of conftest's tiny trained LDCQ checkpoint."""
    return shutil.copytree(tiny_ldcq_checkpoint, tmp_path_factory.mktemp("agent") / "run")


def test_evaluate_json_dash_prints_to_stdout_and_a_file_still_works(
    evaluated_checkpoint, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", str(evaluated_checkpoint), "--episodes", "2", "--envs", "1", "--seed", "4"]
    result = CliRunner().invoke(main, [*args, "--json", "-"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)  # stdout holds the JSON alone; the text report went to stderr
    assert shown["n_episodes"] == 2 and shown["seed"] == 4 and len(shown["returns"]) == 2
    assert "mean return" in result.stderr
    assert not (tmp_path / "-").exists()
    result = CliRunner().invoke(main, [*args, "--json", "eval.json"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())["returns"] == shown["returns"]
    assert "mean return" in result.stdout


def test_evaluate_video_to_a_path_that_cannot_be_a_folder_is_one_line(evaluated_checkpoint, tmp_path):
    (tmp_path / "a-file").write_text("")
    result = CliRunner().invoke(
        main, ["evaluate", str(evaluated_checkpoint), "--video", str(tmp_path / "a-file" / "sub" / "v.mp4")]
    )
    assert result.exit_code == 2 and "cannot make the folder" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OSError)
