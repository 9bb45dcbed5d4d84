"""Writing benchmark results: every JSON in ``benchmarks/results`` is stamped the same way.

:func:`write_result` adds to a benchmark's own numbers:

- ``command``: the command line that produced it (``python -m benchmarks.NAME ARGS``);
- ``git``: the commit of the working tree and whether tracked files outside ``benchmarks/results``
  differed from it (``dirty``, with the changed paths);
- ``dataset``: the Minari dataset id (with its ``-vN``), its version, the ``minari_version`` that
  wrote it, its steps and episodes, and the maker's ``task`` where recorded;
- ``machine``: CPU model, core counts, memory, Python, torch version and threads, ``OMP_NUM_THREADS``,
  package versions, and the load average when the result was written (how busy the machine was:
  on the 2-core machine these results come from, a load above ~2 means other work shared it);
- ``date_utc``: when it was written.

The helpers below also give every benchmark the same dataset handling: a temporary
``MINARI_DATASETS_PATH`` unless one is set, and a PointMaze dataset made once when it is missing.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
PACKAGES = (
    "latent-skills",
    "torch",
    "numpy",
    "minari",
    "gymnasium",
    "gymnasium-robotics",
    "mujoco",
    "stable-baselines3",
)


def command_line() -> str:
    """How this process was started, as one shell line: ``python -m benchmarks.NAME ARGS``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"-m {spec.name}" if spec is not None and spec.name else shlex.quote(sys.argv[0])
    return f"python {program} {shlex.join(sys.argv[1:])}".strip()


def git_info() -> dict[str, Any] | None:
    """The commit of the repository and the tracked files that differ from it (results excluded)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results")
    except (OSError, subprocess.SubprocessError):
        return None
    paths = [line[3:] for line in changed.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(paths), "changed": paths[:50]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict[str, Any]:
    """The machine, the software on it, and how busy it was (load average) right now."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": _memory_gb(),
        "python": sys.version.split()[0],
        "versions": versions,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch_threads"] = None
    if hasattr(os, "getloadavg"):
        info["load_average"] = dict(zip(("1m", "5m", "15m"), os.getloadavg(), strict=True))
    return info


def dataset_info(dataset: Any) -> dict[str, Any] | None:
    """What identifies a Minari dataset (an id or a ``MinariDataset``); an id that is not local is
    recorded as such."""
    if dataset is None:
        return None
    if isinstance(dataset, str):
        from latent_skills.data import load_dataset
        from latent_skills.data.loading import is_local

        if not is_local(dataset):
            return {"id": dataset, "local": False}
        dataset = load_dataset(dataset)
    spec = dataset.spec
    meta = dataset.storage.metadata
    return {
        "id": spec.dataset_id,
        "version": spec.version,
        "minari_version": spec.minari_version,
        "total_steps": spec.total_steps,
        "total_episodes": spec.total_episodes,
        "task": meta.get("task"),
    }


# The code a benchmark runs is the code it imported: the commit when it started, not when it wrote
# (runs take long enough for the tree to move on in between).
GIT_AT_START = git_info()


def write_result(path: str | Path, result: dict[str, Any], *, dataset: Any = None) -> Path:
    """Write ``result`` as JSON at ``path`` (under ``benchmarks/results``), stamped with the command
    line, the git commit, ``dataset`` (an id, a ``MinariDataset`` or an already made
    :func:`dataset_info` dict), the machine and the date. The file is replaced whole."""
    stamp = {
        "command": command_line(),
        "git": GIT_AT_START,
        "dataset": dataset if isinstance(dataset, dict) or dataset is None else dataset_info(dataset),
        "machine": machine_info(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**result, **stamp}, indent=2) + "\n"
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(text)
    mask = os.umask(0)  # a temp file is 0600: give the result a plain file's mode
    os.umask(mask)
    os.chmod(tmp.name, 0o666 & ~mask)
    os.replace(tmp.name, path)
    print(f"wrote {path}", flush=True)
    return path


def use_temporary_datasets_path() -> str:
    """Point ``MINARI_DATASETS_PATH`` at a fresh temporary folder unless it is set; return it."""
    if "MINARI_DATASETS_PATH" not in os.environ:
        os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="latent-skills-bench-")
    return os.environ["MINARI_DATASETS_PATH"]


def pointmaze_dataset(
    maze: str, steps: int = 100_000, task: str = "goal-conditioned"
) -> tuple[str, float | None]:
    """The id of the PointMaze dataset of ``maze`` and ``task``, made with
    ``collect_pointmaze(maze, steps=steps, seed=0, task=task)`` if it is not local
    (:func:`latent_skills.runs.ensure_dataset`), and the seconds that took (None when it was already
    there)."""
    from latent_skills.data.makers import default_dataset_id
    from latent_skills.runs import ensure_dataset

    dataset_id = default_dataset_id(maze, task)
    return dataset_id, ensure_dataset(dataset_id, steps=steps, progress=False, echo=None)


def scores(result: dict[str, Any]) -> dict[str, Any]:
    """What a benchmark keeps of an evaluation: :data:`latent_skills.runs.SCORE_KEYS` and every
    episode's return."""
    from latent_skills.runs import scores as run_scores

    return run_scores(result, "returns")


def stage_names(agent: Any) -> list[str]:
    """The agent's training stages in order, less the optional ones its config skips
    (``agent.stage_names()``; before the agents' rewrite, the keys of ``agent.config.stage_steps()``)."""
    names = getattr(agent, "stage_names", None)
    if callable(names):
        skipped = agent.skipped_stages() if hasattr(agent, "skipped_stages") else []
        return [name for name in names() if name not in skipped]
    return list(agent.config.stage_steps())
