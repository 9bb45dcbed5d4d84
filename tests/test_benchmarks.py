"""The benchmarks package: its tables are up to date, its results are stamped, it runs as modules.

The benchmarks themselves take many CPU minutes and are not run here (DESIGN: speed and score
targets live in benchmarks/, with results committed, not in timed tests). Each check runs
``python -m benchmarks...`` from the repository root, as users do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = (
    "acting_sweep",
    "bc_baseline",
    "collect_speed",
    "family",
    "fingerprint",
    "peers",
    "quick_preset",
    "record",
    "sampler_speed",
    "skill_sac",
    "stage_speed",
    "startup_speed",
    "success_cut",
    "summarize",
    "windows_memory",
)


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, **kwargs
    )


@pytest.mark.parametrize(
    "doc, results",
    [
        ("BENCHMARKS.md", "benchmarks/results"),
        ("benchmarks/results/archive/README.md", "benchmarks/results/archive"),
    ],
)
def test_the_tables_match_the_results(doc, results):
    """Regenerating the tables from the committed JSON files changes nothing."""
    done = run("-m", "benchmarks.summarize", "--check", "--doc", doc, "--results", results)
    assert done.returncode == 0, done.stderr + "\nrun: python -m benchmarks.summarize (see its --help)"


def test_every_benchmark_imports_as_a_module_without_touching_sys_path():
    code = (
        "import importlib, sys\n"
        "before = list(sys.path)\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module('benchmarks.' + name)\n"
        "assert sys.path == before, 'a benchmark edited sys.path'\n"
    )
    done = run("-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    for path in (REPO / "benchmarks").glob("*.py"):
        assert "sys.path" not in path.read_text(), path


def test_a_result_is_stamped_with_command_commit_data_machine_and_date(tmp_path):
    out = tmp_path / "result.json"
    code = (
        "from benchmarks.record import write_result\n"
        f"write_result({str(out)!r}, {{'score': 1.5}}, dataset={{'id': 'ns/data-v3', 'version': 3}})\n"
    )
    done = run("-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["score"] == 1.5
    assert result["command"].startswith("python ")
    assert result["dataset"] == {"id": "ns/data-v3", "version": 3}
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"] and machine["versions"]["torch"]
    assert "torch_threads" in machine and "load_average" in machine
    assert result["date_utc"].endswith("Z")
    if result["git"] is not None:  # None only outside a git checkout
        assert len(result["git"]["commit"]) == 40 and isinstance(result["git"]["dirty"], bool)


def test_every_committed_result_says_where_it_came_from():
    """Each JSON result names its command, commit, machine and a date (stamped when it ran, or,
    for results older than the stamps, the commit that added them)."""
    paths = sorted((REPO / "benchmarks" / "results").rglob("*.json"))
    assert paths
    for path in paths:
        result = json.loads(path.read_text())
        assert result.get("command"), path
        assert result.get("git", {}).get("commit"), path
        assert result.get("machine"), path
        assert result.get("date_utc") or result["git"].get("committed_utc"), path


def test_peers_see_the_dataset_as_our_agents_do(box_dataset):
    """d3rlpy's transitions: s_t without each episode's final observation, a terminal only where the
    episode terminated, a timeout where it was cut, and every reward once."""
    from benchmarks.peers import transitions
    from latent_skills.data import EpisodeArrays

    episodes = EpisodeArrays.from_minari(box_dataset)  # lengths 1, 3, 5, 6, 12, 9, 2; T F T F T F F
    data = transitions(episodes)
    ends = np.cumsum([1, 3, 5, 6, 12, 9, 2]) - 1
    np.testing.assert_array_equal(np.flatnonzero(data["terminals"]), ends[[0, 2, 4]])
    np.testing.assert_array_equal(np.flatnonzero(data["timeouts"]), ends[[1, 3, 5, 6]])
    np.testing.assert_array_equal(data["rewards"], episodes.rewards.astype(np.float32))
    np.testing.assert_array_equal(data["observations"][3], episodes.observations[4])  # episode 1, t = 2
    assert len(data["observations"]) == len(data["actions"]) == episodes.n_steps
