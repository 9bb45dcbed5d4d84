"""The model zoo (latent_skills.zoo): a tiny manifest and recipe released end to end against the
loopback Hub (tests/hub_server.py), and the shipped hub/manifest.toml."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from agent_helpers import TINY
from click.testing import CliRunner
from hub_server import FakeHub
from huggingface_hub import ModelCard, constants

from latent_skills import LDCQ
from latent_skills.cli import main
from latent_skills.zoo import ManifestError, load_manifest, readme_text

TOKEN = "hf_zoo_token"
REPO_ROOT = Path(__file__).resolve().parents[1]


def toml_value(value) -> str:
    return json.dumps(list(value)) if isinstance(value, tuple) else json.dumps(value)


@pytest.fixture
def zoo(tmp_path, monkeypatch, umaze):
    """A loopback Hub, a tiny local PointMaze dataset, a tiny recipe file and a manifest listing it
    beside a planned (never trained) paper entry."""
    server = FakeHub(require_token=TOKEN).start()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    dataset = umaze
    config = "\n".join(f"{key} = {toml_value(value)}" for key, value in TINY.items() if key != "horizon")
    (tmp_path / "tiny.toml").write_text(
        f'agent = "LDCQ"\ndataset = "{dataset.spec.dataset_id}"\npreset = "quick"\nhorizon = 5\n'
        f'eval_episodes = 2\ndescription = "a tiny test recipe"\n\n[config]\n{config}\n'
    )
    (tmp_path / "manifest.toml").write_text(
        """
[[agent]]
name = "tiny"
recipe = "tiny.toml"
repo_id = "zoo/tiny"
eval_episodes = 2
video_length = 3

[[agent]]
name = "ldcq-kitchen-mixed"
recipe = "ldcq-kitchen-mixed"
repo_id = "zoo/ldcq-kitchen-mixed"
paper_score = 62.3
paper = "Table 1, kitchen-mixed-v0"
status = "planned"
"""
    )
    yield server, tmp_path
    server.stop()


def test_release_trains_evaluates_pushes_and_writes_the_readme(zoo):
    hub, folder = zoo
    started = time.perf_counter()
    args = ["zoo", "release", str(folder / "manifest.toml"), "--endpoint", hub.endpoint, "--token", TOKEN]
    result = CliRunner().invoke(main, [*args, "--runs", str(folder / "runs")])
    assert result.exit_code == 0, result.output
    assert "tiny seed 0: training LDCQ" in result.output
    assert set(hub.repos) == {"zoo/tiny"}  # the planned entry is listed, not trained

    files = hub.files("zoo/tiny")
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "eval_results.json",
        "learning_curve.png",
    } <= set(files)
    card = ModelCard(files["README.md"].decode())
    # the replay video where this machine renders (tests/test_video.py covers it, or says why not)
    assert ("replay.mp4" in files) == ("<video" in card.text)
    assert "latent-skills train --recipe tiny.toml --seed 0" in card.text and card.data.license == "mit"
    evaluation = json.loads(files["eval_results.json"])
    assert evaluation["n_episodes"] == 2

    results = json.loads((folder / "results.json").read_text())
    seed0 = results["tiny"]["seeds"]["0"]
    assert seed0["repo_id"] == "zoo/tiny" and seed0["url"] == f"{hub.endpoint}/zoo/tiny"
    assert seed0["normalized_score"] == pytest.approx(evaluation["normalized_score"])
    readme = (folder / "README.md").read_text()
    assert f"[zoo/tiny]({hub.endpoint}/zoo/tiny)" in readme
    # every score names its protocol, in results.json and beside the score in the table
    assert seed0["protocol"] == evaluation["protocol"]
    assert (
        f"| tiny | `tiny.toml` | {evaluation['normalized_score']:.1f} | `{evaluation['protocol']}` |"
        in readme
    )
    assert (
        "| ldcq-kitchen-mixed | `ldcq-kitchen-mixed` | — | — | — | 62.3 (Table 1, kitchen-mixed-v0) |"
        in readme
    )
    assert "Not yet published (1 of 2): ldcq-kitchen-mixed" in readme
    first = time.perf_counter() - started

    # a second release reuses the checkpoint: no training, the same agent, the same score
    result = CliRunner().invoke(main, [*args, "--runs", str(folder / "runs"), "--only", "tiny"])
    assert result.exit_code == 0, result.output
    assert "reusing the checkpoint" in result.output and "training" not in result.output
    assert json.loads((folder / "results.json").read_text())["tiny"]["seeds"]["0"] == seed0
    pushed = LDCQ.from_pretrained("zoo/tiny")
    assert pushed.config == LDCQ.load(folder / "runs" / "tiny" / "seed0").config
    assert first < 25 and time.perf_counter() - started < 30  # tiny: well within the suite's budget


def test_manifest_errors_name_the_entry_and_the_fix(zoo):
    _, folder = zoo
    path = folder / "manifest.toml"
    text = path.read_text()
    cases = {
        text.replace('repo_id = "zoo/tiny"', 'repo_id = "tiny"'): "repo_id must be a Hub repo id",
        text.replace("eval_episodes = 2", "eval_episodes = 0"): "eval_episodes must be an integer ≥ 1",
        text.replace('status = "planned"', 'status = "later"'): "status must be one of",
        text.replace(
            'recipe = "tiny.toml"', 'recipe = "nope.toml"'
        ): r"recipe file \S*nope.toml does not exist",
        text.replace("video_length = 3", "video_lenght = 3"): "unknown key 'video_lenght'",
        text.replace('name = "ldcq-kitchen-mixed"', 'name = "tiny"'): "name 'tiny' appears twice",
    }
    for bad, message in cases.items():
        path.write_text(bad)
        with pytest.raises(ManifestError, match=message):
            load_manifest(path)
    path.write_text(text)
    with pytest.raises(ManifestError, match="no entry 'tinny'"):
        load_manifest(path).select(["tinny"])
    result = CliRunner().invoke(main, ["zoo", "release", str(path), "--only", "tinny"])
    assert result.exit_code == 2 and "no entry 'tinny'; entries: tiny, ldcq-kitchen-mixed" in result.output


def test_the_shipped_manifest_lists_the_cpu_agent_and_the_papers_table_1():
    manifest = load_manifest(REPO_ROOT / "hub" / "manifest.toml")
    released = [e.name for e in manifest.select()]
    assert released == ["ldcq-pointmaze-umaze-quick"]  # the one that can be made on a CPU
    planned = {e.name: e.paper_score for e in manifest.entries if e.status == "planned"}
    assert planned == {
        "ldcq-pointmaze-large": 150.1,
        "ldgc-pointmaze-large": 206.8,
        "ldcq-antmaze-medium-diverse": 68.9,
        "ldgc-antmaze-medium-diverse": 75.6,
        "ldcq-antmaze-large-diverse": 57.7,
        "ldgc-antmaze-large-diverse": 73.6,
        "ldcq-kitchen-partial": 67.8,
        "ldcq-kitchen-mixed": 62.3,
    }
    for entry in manifest.entries:  # every recipe is shipped and valid
        manifest.recipe(entry)
    # the committed README is what the manifest and results.json generate
    assert (REPO_ROOT / "hub" / "README.md").read_text() == readme_text(manifest)
