"""Sweeps (latent_skills.sweep, `latent-skills sweep`) and the statistics they report (latent_skills.stats)."""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from agent_helpers import TINY
from click.testing import CliRunner
from conftest import UMAZE_ID, copy_umaze

from latent_skills.cli import main
from latent_skills.stats import bootstrap_ci, bootstrap_distribution, iqm, summarize

# ---------------------------------------------------------------- the statistics, against values by hand


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([5.0], 5.0),  # n < 4: nothing is cut, the plain mean
        ([1, 2], 1.5),
        ([3, 1, 2], 2.0),
        ([4, 1, 3, 2], 2.5),  # cut 1 each end: (2 + 3) / 2
        ([10, 1, 2, 3, 100], 5.0),  # cut 1: (2 + 3 + 10) / 3
        ([0, 1, 2, 3, 4, 100], 2.5),  # cut floor(6 / 4) = 1: (1 + 2 + 3 + 4) / 4
        ([8, 7, 6, 5, 4, 3, 2, 1], 4.5),  # cut 2: (3 + 4 + 5 + 6) / 4
    ],
)
def test_iqm_is_the_mean_of_the_middle_half(scores, expected):
    assert iqm(scores) == pytest.approx(expected)


def test_iqm_along_an_axis_and_over_all():
    rows = np.array([[4, 1, 3, 2], [5, 6, 7, 80]])
    np.testing.assert_allclose(iqm(rows, axis=1), [2.5, 6.5])
    assert iqm(rows) == pytest.approx((3 + 4 + 5 + 6) / 4)  # 8 scores, cut 2: sorted 1 2 [3 4 5 6] 7 80
    with pytest.raises(ValueError, match="no scores"):
        iqm([])


def test_bootstrap_of_two_runs_matches_the_exact_distribution():
    # resamples of [0, 1]: {0,0} 1/4, {0,1} twice 1/2, {1,1} 1/4 -> means 0, 0.5, 1
    values = bootstrap_distribution([0.0, 1.0], np.mean, n_resamples=20_000, seed=1)
    outcomes, counts = np.unique(values, return_counts=True)
    np.testing.assert_allclose(outcomes, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.015)
    assert bootstrap_ci([0.0, 1.0], np.mean, n_resamples=20_000) == (0.0, 1.0)  # 2.5 % and 97.5 % points


def test_bootstrap_resamples_within_each_stratum():
    # task A [0, 1], task B [10, 11], two runs each: every resample keeps two of each, so the mean is
    # (20 + sA + sB) / 4 with sA + sB ~ 0..4 w.p. 1, 4, 6, 4, 1 / 16; pooled resampling could reach 0.
    for scores in ([[0.0, 1.0], [10.0, 11.0]], np.array([[0.0, 10.0], [1.0, 11.0]])):  # strata, (runs, tasks)
        values = bootstrap_distribution(scores, np.mean, n_resamples=32_000, seed=2)
        outcomes, counts = np.unique(values, return_counts=True)
        np.testing.assert_allclose(outcomes, [5.0, 5.25, 5.5, 5.75, 6.0])
        np.testing.assert_allclose(counts / counts.sum(), np.array([1, 4, 6, 4, 1]) / 16, atol=0.01)
    # strata of different sizes
    ragged = bootstrap_distribution([[0.0], [10.0, 10.0, 10.0]], np.mean, n_resamples=100)
    np.testing.assert_allclose(ragged, 7.5)


def test_bootstrap_iqm_matches_enumerating_every_resample():
    scores = np.array([0.0, 1.0, 2.0, 10.0])
    exact = np.array(
        [iqm(scores[list(i)]) for i in itertools.product(range(4), repeat=4)]
    )  # 256, equally likely
    values = bootstrap_distribution(scores, iqm, n_resamples=40_000, seed=3)
    for outcome in np.unique(exact):
        assert np.mean(values == outcome) == pytest.approx(np.mean(exact == outcome), abs=0.01)
    low, high = bootstrap_ci(scores, n_resamples=40_000, seed=3)
    assert (low, high) == (pytest.approx(np.quantile(exact, 0.025)), pytest.approx(np.quantile(exact, 0.975)))


def test_bootstrap_is_seeded_and_degenerates_on_equal_scores():
    assert bootstrap_ci([3.0, 1.0, 4.0, 1.0, 5.0], seed=7) == bootstrap_ci([3.0, 1.0, 4.0, 1.0, 5.0], seed=7)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)


def test_summarize_by_hand():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["mean"] == 2.5 and s["iqm"] == 2.5
    assert s["std"] == pytest.approx(np.sqrt(5 / 3))  # sample std: Σ(x − 2.5)² = 5, over n − 1 = 3
    assert 1.0 <= s["iqm_ci"][0] <= 2.5 <= s["iqm_ci"][1] <= 4.0
    assert summarize([7.0]) == {"n": 1, "mean": 7.0, "std": 0.0, "iqm": 7.0, "iqm_ci": [7.0, 7.0]}
    assert summarize([])["iqm"] is None


def test_summary_and_table_from_run_records():
    from latent_skills.sweep import SweepResult, summarize_runs

    def run(agent, seed, status="ok", **values):
        empty = {"normalized_score": None, "mean_return": None, "error": None}
        return {"agent": agent, "seed": seed, "status": status, **empty, **values}

    runs = [
        run("LDCQ", 0, normalized_score=10.0, mean_return=1.0),
        run("LDCQ", 1, normalized_score=30.0, mean_return=3.0),
        run("LDCQ", 2, "failed", error="RuntimeError: " + "x" * 300),
        run("BCQH", 0, mean_return=5.0),  # no reference scores: the mean return is the score
        run("LDGC", 0),  # trained, not evaluated
    ]
    summary = summarize_runs(runs)
    assert summary["LDCQ"]["scores"] == {"0": 10.0, "1": 30.0, "2": None}
    assert (summary["LDCQ"]["n_ok"], summary["LDCQ"]["mean"], summary["LDCQ"]["iqm"]) == (2, 20.0, 20.0)
    assert summary["LDCQ"]["std"] == pytest.approx(np.sqrt(200))  # (10² + 10²) / (2 − 1)
    assert summary["BCQH"]["metric"] == "mean_return" and summary["BCQH"]["iqm_ci"] == [5.0, 5.0]
    assert summary["LDGC"]["mean"] is None
    table = SweepResult(runs, summary, {}).table().splitlines()
    assert (
        table[1].split()[:5] == ["LDCQ", "normalized_score", "2/3", "0:", "10.0"] and "2: failed" in table[1]
    )
    assert "20.0 ± 14.1" in table[1] and "20.0 [10.0, 30.0]" in table[1]
    assert "0: -" in table[3] and table[3].endswith("n/a")
    assert table[4].startswith("failed: LDCQ-seed2: RuntimeError: xxx") and len(table[4]) < 200


# ---------------------------------------------------------------- sweeps of a tiny recipe

DATASET = UMAZE_ID


@pytest.fixture(scope="module")
def sweep_data(umaze_source, tmp_path_factory):
    """A small PointMaze dataset (conftest's ``umaze``) in a module-wide Minari store
    (MINARI_DATASETS_PATH set in os.environ, so Ray workers started from here inherit it)."""
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        patch.delenv("RAY_ADDRESS", raising=False)
        copy_umaze(umaze_source, root)
        yield root


def _toml(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


@pytest.fixture
def recipe_file(sweep_data, tmp_path):
    """A tiny LDCQ recipe; its q_* fields make it unusable for LDGC (no Q): a run that fails on purpose."""
    config = "\n".join(f"{key} = {_toml(value)}" for key, value in TINY.items() if key != "horizon")
    path = tmp_path / "tiny-ldcq.toml"
    path.write_text(
        f'agent = "LDCQ"\ndataset = "{DATASET}"\npreset = "quick"\nhorizon = {TINY["horizon"]}\n'
        f'eval_episodes = 2\ndescription = "a tiny LDCQ for the sweep tests"\n\n[config]\n{config}\n'
    )
    return path


def _check_ok_run(run: dict, out) -> None:
    assert run["status"] == "ok" and run["error"] is None, run.get("traceback")
    folder = out / f"{run['agent']}-seed{run['seed']}"
    assert run["path"] == str(folder.absolute())
    assert {"config.json", "model.safetensors", "eval.json", "logs"} <= {p.name for p in folder.iterdir()}
    assert run["n_episodes"] == 2 and run["normalized_score"] is not None


def test_local_sweep_trains_every_seed_and_reports_a_failed_run(recipe_file, tmp_path):
    from latent_skills import LDCQ
    from latent_skills.sweep import run_sweep

    out = tmp_path / "sweep"
    lines: list[str] = []
    result = run_sweep(
        recipe_file, seeds=[0, 1], agents=["ldgc", "LDCQ"], out=out, backend="local", echo=lines.append
    )
    assert [(r["agent"], r["seed"]) for r in result.runs] == [
        ("LDGC", 0),
        ("LDGC", 1),
        ("LDCQ", 0),
        ("LDCQ", 1),
    ]
    failed, ok = result.runs[:2], result.runs[2:]
    for run in failed:  # one line naming the field and the fix; the rest still ran
        assert run["status"] == "failed" and run["error"].startswith("ConfigError: ")
        assert "q_" in run["error"] and "\n" not in run["error"] and "Traceback" in run["traceback"]
    for run in ok:
        _check_ok_run(run, out)
    assert LDCQ.load(out / "LDCQ-seed1").config.seed == 1

    scores = [run["normalized_score"] for run in ok]
    ldcq = result.summary["LDCQ"]
    assert ldcq["metric"] == "normalized_score" and ldcq["scores"] == {"0": scores[0], "1": scores[1]}
    assert ldcq["mean"] == pytest.approx(np.mean(scores)) and ldcq["iqm"] == pytest.approx(np.mean(scores))
    assert ldcq["std"] == pytest.approx(np.std(scores, ddof=1))
    assert min(scores) <= ldcq["iqm_ci"][0] <= ldcq["iqm_ci"][1] <= max(scores)
    assert result.summary["LDGC"] == {**result.summary["LDGC"], "n_ok": 0, "scores": {"0": None, "1": None}}

    saved = json.loads((out / "sweep.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(result.summary)) and len(saved["runs"]) == 4
    assert saved["dataset"] == DATASET and saved["seeds"] == [0, 1] and saved["backend"] == "local"
    with (out / "sweep.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["status"] for row in rows] == ["failed", "failed", "ok", "ok"]
    assert float(rows[2]["score"]) == pytest.approx(scores[0])
    table = result.table()
    assert "LDCQ" in table and "0/2" in table and "failed: LDGC-seed0: ConfigError" in table
    assert any(line.startswith("LDCQ-seed1: ok, score") for line in lines)

    with pytest.raises(FileExistsError, match="overwrite"):  # nothing is replaced unasked
        run_sweep(recipe_file, seeds=[0], out=out, backend="local", echo=None)


def test_sweep_command_local(recipe_file, tmp_path):
    out = tmp_path / "cli"
    args = ["sweep", "--recipe", str(recipe_file), "--seeds", "3", "4", "--agents", "LDCQ", "BCQH"]
    args += ["--out", str(out), "--local", "--eval-episodes", "1", "--set", "q_steps=20"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "sweep.json").read_text())
    assert [(r["agent"], r["seed"], r["status"]) for r in saved["runs"]] == [
        ("LDCQ", 3, "ok"),
        ("LDCQ", 4, "ok"),
        ("BCQH", 3, "ok"),
        ("BCQH", 4, "ok"),
    ]
    assert saved["settings"] == {"q_steps": "20"} and saved["eval_episodes"] == 1
    assert "IQM [95% CI]" in result.output and f"wrote {out / 'sweep.json'}" in result.output
    assert json.loads((out / "BCQH-seed4" / "config.json").read_text())["config"]["q_steps"] == 20

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output


def test_sweep_command_rejects_bad_input_before_running(recipe_file, tmp_path):
    runner = CliRunner()
    base = ["sweep", "--recipe", str(recipe_file), "--out", str(tmp_path / "x"), "--local"]
    result = runner.invoke(main, [*base, "--seeds", "0", "--set", "seed=3"])
    assert result.exit_code == 2 and "--seeds" in result.output
    result = runner.invoke(main, [*base, "--seeds", "0", "--agents", "LDQC"])
    assert result.exit_code == 2 and "LDQC" in result.output
    result = runner.invoke(main, ["sweep", "--recipe", "no-such-recipe", "--seeds", "0", "--local"])
    assert result.exit_code == 2 and "unknown recipe" in result.output
    result = runner.invoke(main, [*base, "--seeds", "0", "0"])
    assert result.exit_code == 2 and "repeat" in result.output
    assert not (tmp_path / "x").exists()


def test_a_failed_run_makes_the_command_fail_after_writing_the_table(recipe_file, tmp_path):
    out = tmp_path / "s"
    args = [
        "sweep",
        "--recipe",
        str(recipe_file),
        "--seeds",
        "0",
        "--agents",
        "LDGC",
        "--out",
        str(out),
        "--local",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "failed: LDGC-seed0: ConfigError" in result.output and "1 of 1 runs failed" in result.output
    assert json.loads((out / "sweep.json").read_text())["runs"][0]["status"] == "failed"


def test_missing_ray_names_the_extra(recipe_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    args = ["sweep", "--recipe", str(recipe_file), "--seeds", "0", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "pip install 'latent-skills[ray]'" in result.output
    assert "--local" in result.output and not (tmp_path / "r").exists()


def test_importing_the_library_does_not_import_ray():
    code = (
        "import sys, latent_skills, latent_skills.sweep, latent_skills.stats\n"
        "assert 'latent_skills.cli' not in sys.modules, 'a library module imported the CLI'\n"
        "import latent_skills.cli\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sweep_on_ray_with_one_run_failing(recipe_file, tmp_path, monkeypatch):
    """Two tiny runs as real Ray tasks on a local Ray instance that the sweep starts and shuts down;
    LDGC fails on purpose (the recipe's q_* fields are not LDGC's) and LDCQ finishes."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'latent-skills[ray]'")
    from latent_skills.sweep import run_sweep

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert os.environ["MINARI_DATASETS_PATH"]  # the workers find the dataset through this
    start = time.perf_counter()
    out = tmp_path / "ray"
    result = run_sweep(
        recipe_file, seeds=[0], agents=["LDCQ", "LDGC"], out=out, backend="ray", num_cpus=2, echo=None
    )
    seconds = time.perf_counter() - start
    assert not ray.is_initialized()  # it shut down what it started
    ldcq, ldgc = result.runs
    _check_ok_run(ldcq, out)
    assert ldgc["status"] == "failed" and ldgc["error"].startswith("ConfigError: ") and "q_" in ldgc["error"]
    assert json.loads((out / "sweep.json").read_text())["backend"] == "ray"
    # generous: on two cores the other pytest-xdist worker runs beside the two Ray tasks
    assert seconds < 150, f"the Ray sweep took {seconds:.0f} s"
