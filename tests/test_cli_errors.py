"""Bad input on the command line is one line naming the fix, exit code 2, never a traceback (issue 25):
every command, with the mistakes a careless user makes (a missing or wrong path, a bad value, a
malformed file, an output that cannot be written)."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from latent_skills.cli import main


@pytest.fixture(scope="module")
def folder(tiny_ldcq_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("mistakes")
    shutil.copytree(tiny_ldcq_checkpoint, root / "ck")
    (root / "empty").mkdir()
    (root / "afile").write_text("x")
    (root / "bad.toml").write_text("[[[ not toml")
    (root / "manifest.toml").write_text("nonsense = 1\n")
    return root


CASES = {
    "evaluate an empty folder": (["evaluate", "W/empty"], "config.json is missing"),
    "evaluate a file": (["evaluate", "W/afile"], "is a file"),
    "evaluate a bad sampler": (["evaluate", "W/ck", "--set", "sampler=nosuch"], "sampler must be one of"),
    "evaluate a bad integer": (["evaluate", "W/ck", "--set", "act_candidates=abc"], "must be int"),
    "evaluate a learned field": (
        ["evaluate", "W/ck", "--set", "latent_dim=3"],
        "change what the agent learned",
    ),
    "a negative seed": (["evaluate", "W/ck", "--seed", "-1"], "-1 is not in the range x>=0"),
    "evaluate into a missing folder": (
        ["evaluate", "W/ck", "--episodes", "1", "--envs", "1", "--json", "W/nodir/x.json"],
        "cannot write",
    ),
    "a video inside a file": (
        ["evaluate", "W/ck", "--episodes", "1", "--envs", "1", "--video", "W/afile/v.mp4"],
        "cannot make the folder",
    ),
    "resume an empty folder": (["train", "--resume", "W/empty"], "config.json is missing"),
    "a recipe that is not TOML": (["train", "--recipe", "W/bad.toml"], "not valid TOML"),
    "an unknown log format": (["train", "--log", "csv,nosuch"], "choose from"),
    "a width that is not a number": (
        ["train", "--set", "q_widths=abc", "--out", "W/o"],
        "q_widths must be int",
    ),
    "train into a file": (["train", "--out", "W/afile"], "is a file"),
    "curves from an empty folder": (["plot", "curves", "W/empty"], "no progress.csv"),
    "a world model LDCQ has not": (["plot", "world-model", "W/ck"], "needs an LDCP agent"),
    "push an empty folder": (["push", "W/empty", "me/x"], "config.json is missing"),
    "push to a malformed repo id": (
        ["push", "W/ck", "not a repo id", "--eval-episodes", "0", "--no-video"],
        "push to not a repo id failed",
    ),
    "an unknown recipe": (["sweep", "--recipe", "nosuch", "--seeds", "0"], "unknown recipe"),
    "a manifest without agents": (["zoo", "readme", "W/manifest.toml"], "unknown top-level key"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line_without_a_traceback(case, folder, minari_root):
    args, message = CASES[case]
    result = CliRunner().invoke(main, [a.replace("W/", f"{folder}/") for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines()[-1].startswith("Error: ") or "Error: " in result.output
