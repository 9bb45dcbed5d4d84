"""The paper's figures (latent_skills.plots), `latent-skills plot ...` and examples/plotting.py, drawn
from tiny agents trained on a tiny PointMaze dataset made in the test."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from agent_helpers import TINY
from click.testing import CliRunner
from stable_baselines3.common.logger import configure

from latent_skills.agents.ldcp import LDCP
from latent_skills.cli import main
from latent_skills.config import LDCPConfig
from latent_skills.data.makers import collect_pointmaze
from latent_skills.plots import (
    PCA,
    plot_latents_by_horizon,
    plot_learning_curves,
    plot_prior_samples,
    plot_world_model,
    read_stage_series,
)
from latent_skills.plots._windows import select_windows

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    **{k: v for k, v in TINY.items() if k in LDCPConfig.field_names()},
    "dynamics_widths": (32, 32),
    "dynamics_batch_size": 32,
    "dynamics_steps": 30,
    "plan_candidates": 4,
}
LOG_INTERVAL = 10


def png_size(path: Path) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An LDCP (H = 5, every stage, CSV-logged) and a skills-only one (H = 2), saved; the dataset stays
    in a temporary Minari store for the whole module (the CLI reloads it by id)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        dataset = collect_pointmaze("umaze", steps=1500, seed=1, ref_episodes=2, progress=False)
        runs = tmp_path_factory.mktemp("runs")
        full = LDCP.from_dataset(dataset, **SETTINGS)
        full.set_logger(configure(str(runs / "h5" / "logs"), ["csv"]))
        full.learn(log_interval=LOG_INTERVAL, save_path=runs / "h5")
        full.logger.close()
        short = LDCP.from_dataset(dataset, **{**SETTINGS, "horizon": 2}).learn(stages=["skills"])
        short.save(runs / "h2")
        yield {"full": full, "short": short, "runs": runs}


def test_pca_finds_the_line_the_data_lies_along():
    rng = np.random.default_rng(0)
    direction = np.array([1.0, -2.0, 2.0]) / 3.0
    x = 5.0 + rng.normal(size=(200, 1)) * direction + 0.01 * rng.normal(size=(200, 3))
    pca = PCA.fit(x)
    np.testing.assert_allclose(pca.components[0], direction, atol=0.01)  # signed: largest entry > 0
    assert pca.explained_variance_ratio[0] > 0.999
    assert abs(pca.components[0] @ pca.components[1]) < 1e-9
    np.testing.assert_allclose(pca.transform(x.mean(0, keepdims=True)), 0.0, atol=1e-9)
    # 1-D data: the second axis is all zeros
    flat = PCA.fit(rng.normal(size=(10, 1)))
    assert flat.transform(np.ones((3, 1)))[:, 1].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="at least 2 points"):
        PCA.fit(np.ones((1, 3)))


def test_window_choice(trained):
    agent = trained["full"]
    w = agent.data.windows
    starts = select_windows(agent, "starts", max_points=10_000, seed=0)
    assert (w.step_in_episode[starts] == 0).all() and len(starts) == w.episodes.n_episodes
    few = select_windows(agent, "all", max_points=50, seed=0)
    assert len(few) == 50 and np.all(np.diff(few) > 0)
    np.testing.assert_array_equal(few, select_windows(agent, "all", max_points=50, seed=0))
    with pytest.raises(ValueError, match="windows must be one of"):
        select_windows(agent, "middle", max_points=50, seed=0)


def test_latent_figures_are_drawn_at_their_size_and_seeded(trained, tmp_path):
    full, short = trained["full"], trained["short"]
    fig2 = plot_latents_by_horizon([full, short], tmp_path / "fig2.png", windows="all", max_points=300)
    assert png_size(fig2) == (800, 400)  # one 4-inch panel per agent at 100 dpi
    fig3 = plot_prior_samples(full, tmp_path / "fig3.png", samples_per_state=2)
    assert png_size(fig3) == (1200, 400)
    again = plot_prior_samples(full, tmp_path / "again.png", samples_per_state=2)
    assert again.read_bytes() == fig3.read_bytes()  # same seed: same windows and samples
    other = plot_prior_samples(full, tmp_path / "other.png", samples_per_state=2, seed=1)
    assert other.read_bytes() != fig3.read_bytes()


def test_latent_figures_need_trained_stages(trained, tmp_path):
    untrained = LDCP.from_dataset(trained["full"].spec.dataset_id, **SETTINGS)
    with pytest.raises(ValueError, match=r"learn\(stages=\['skills'\]\)"):
        plot_latents_by_horizon([untrained], tmp_path / "x.png")
    with pytest.raises(ValueError, match="'prior' stage"):
        plot_prior_samples(trained["short"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_world_model_figure(trained, tmp_path):
    agent = trained["full"]
    fig5 = plot_world_model(agent, tmp_path / "fig5.png", reset_cell=(2, 3), n_samples=50)
    assert png_size(fig5) == (500, 400)
    with pytest.raises(ValueError, match="wall"):
        plot_world_model(agent, tmp_path / "x.png", reset_cell=(0, 0))
    with pytest.raises(ValueError, match="'dynamics' stage"):
        plot_world_model(trained["short"], tmp_path / "x.png")

    class NoWorldModel:
        pass

    with pytest.raises(TypeError, match="needs an LDCP agent"):
        plot_world_model(NoWorldModel(), tmp_path / "x.png")  # type: ignore[arg-type]


def test_learning_curves_one_panel_per_stage(trained, tmp_path):
    run = trained["runs"] / "h5"
    series = read_stage_series(run / "logs" / "progress.csv")
    assert list(series) == ["skills", "prior", "dynamics"]
    done = 0
    for stage, (x, y) in series.items():
        n = SETTINGS[f"{stage}_steps"]
        assert len(y) == n // LOG_INTERVAL and np.isfinite(y).all()
        # the agent logs SB3's time/total_timesteps: each point sits at its gradient step
        assert x.tolist() == [done + LOG_INTERVAL * (i + 1) for i in range(len(y))]
        done += n
    assert png_size(plot_learning_curves(run, tmp_path / "curves.png")) == (1200, 300)
    # a log with SB3's step column is drawn against steps; without it, against the logged points
    bare = tmp_path / "bare.csv"
    bare.write_text("skills/loss\n2.0\n1.5\n")
    assert read_stage_series(bare)["skills"][0].tolist() == [1, 2]
    csv = tmp_path / "progress.csv"
    csv.write_text("time/total_timesteps,skills/loss,prior/loss\n10,2.0,\n20,1.5,\n30,,0.7\n")
    assert {k: v[0].tolist() for k, v in read_stage_series(csv).items()} == {
        "skills": [10.0, 20.0],
        "prior": [30.0],
    }
    with pytest.raises(ValueError, match="no STAGE/kl columns"):
        plot_learning_curves(csv, tmp_path / "kl.png", metric="kl")
    with pytest.raises(FileNotFoundError, match="logs/progress.csv"):
        plot_learning_curves(tmp_path / "nowhere", tmp_path / "x.png")


def test_missing_matplotlib_names_the_extra(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    with pytest.raises(ImportError, match=r'pip install "latent-skills\[plot\]"'):
        plot_learning_curves(trained["runs"] / "h5", tmp_path / "x.png")


def test_plot_commands(trained, tmp_path):
    runs, runner = trained["runs"], CliRunner()
    for command in ([], ["latents"], ["prior"], ["world-model"], ["curves"]):
        result = runner.invoke(main, ["plot", *command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
    calls = {
        "latents.png": ["latents", str(runs / "h2"), str(runs / "h5"), "--windows", "all"],
        "prior.png": ["prior", str(runs / "h5"), "--max-points", "100"],
        "world.png": ["world-model", str(runs / "h5"), "--cell", "1", "3", "--samples", "20"],
        "curves.png": ["curves", str(runs / "h5")],
    }
    for name, args in calls.items():
        result = runner.invoke(main, ["plot", *args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert f"wrote {tmp_path / name}" in result.output and png_size(tmp_path / name)[0] > 0
    result = runner.invoke(main, ["plot", "world-model", str(runs / "h2"), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "'dynamics' stage" in result.output and "Traceback" not in result.output


def test_example_runs_tiny(minari_root, tmp_path):
    spec = importlib.util.spec_from_file_location("plotting_example", ROOT / "examples" / "plotting.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    figures = example.main(["--tiny", "--out", str(tmp_path)])
    assert sorted(figures) == ["latents_by_horizon", "learning_curves", "prior_samples", "world_model"]
    for path in figures.values():
        assert path.parent == tmp_path and png_size(path)[1] > 0
    assert (tmp_path / "checkpoints" / "ldcp-h30" / "model.safetensors").is_file()
