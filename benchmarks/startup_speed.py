"""Start-up time: ``import latent_skills`` and the ``latent-skills`` command's help, recipes and an
argument error, each a whole new process (issue #21).

Run from the repository root::

    python -m benchmarks.startup_speed [--runs 7] [--baseline PATH] [--note TEXT]

Each command runs ``--runs`` times after one warm-up, from this checkout and, with ``--baseline``, from
another checkout of the project (e.g. one at the commit before a change), the two in turn so that both
see the same load. The command runs as ``python -m latent_skills ARGS`` (what the console script does:
import the package, then ``latent_skills.cli``) with the checkout first on ``PYTHONPATH``; wall time,
CPU time (user + sys) and peak RSS of each process are the operating system's (``os.wait4``). Medians
are quoted. Linux counts a child's resident memory from before it starts the new program, so peak RSS
cannot read below this process's own (recorded as ``rss_floor_mib``). Writes
``benchmarks/results/startup_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.record import REPO, RESULTS, write_result

# name -> the arguments after ``python``
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import latent_skills": ["-c", "import latent_skills"],
    "latent-skills --help": ["-m", "latent_skills", "--help"],
    "latent-skills train --help": ["-m", "latent_skills", "train", "--help"],
    "latent-skills recipes": ["-m", "latent_skills", "recipes"],
    "latent-skills train --set no_such_field=1": ["-m", "latent_skills", "train", "--set", "no_such_field=1"],
}


def run_once(args: list[str], checkout: Path) -> dict[str, float]:
    """One process: wall seconds, CPU seconds (user + sys) and peak RSS in MiB."""
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args], cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "exit": process.returncode,
    }


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("wall_s", "cpu_s", "peak_rss_mib"):
        values = [r[key] for r in runs]
        out[key] = {
            "median": round(statistics.median(values), 3),
            "min": round(min(values), 3),
            "max": round(max(values), 3),
        }
    out["exit_codes"] = sorted({int(r["exit"]) for r in runs})
    return out


def checkout_commit(path: Path) -> dict[str, Any] | None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=path, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    try:
        changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.startup_speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--runs", type=int, default=7, help="counted runs of each command (after one warm-up)"
    )
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time the same way")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    parser.add_argument("--out", type=Path, default=RESULTS / "startup_speed.json")
    args = parser.parse_args()

    checkouts = {"this": REPO}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    rows = []
    for name, command in COMMANDS.items():
        runs: dict[str, list[dict[str, float]]] = {label: [] for label in checkouts}
        for path in checkouts.values():  # warm-up: file caches, .pyc files
            run_once(command, path)
        for _ in range(args.runs):
            for label, path in checkouts.items():
                runs[label].append(run_once(command, path))
        row = {"command": name, **{label: summary(found) for label, found in runs.items()}}
        if "baseline" in row:
            row["wall_ratio_median"] = round(
                row["this"]["wall_s"]["median"] / row["baseline"]["wall_s"]["median"], 3
            )
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {
        "benchmark": "startup_speed",
        "runs": args.runs,
        "warmup": 1,
        "python": sys.executable,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "1"),
        "baseline": None
        if args.baseline is None
        else {"path": str(checkouts["baseline"]), "git": checkout_commit(checkouts["baseline"])},
        "note": args.note,
        "rss_floor_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "commands": rows,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
