"""A tiny run's time to its first score (issue #21): the quick preset cut to 50 steps per stage on the
README's UMaze dataset, trained, evaluated (20 episodes, 10 envs) and saved by the CLI, as a new user
would try it:

    python -m benchmarks.first_number [--baseline PATH] [--runs 1]
    python -m benchmarks.first_number --readme     # the README's main job instead

    latent-skills train --preset quick --set skills_steps=50 --set prior_steps=50 --set q_steps=50
    latent-skills train --preset quick                                   (--readme)

The command runs as ``python -m latent_skills ...`` with the checkout first on ``PYTHONPATH`` (and, with
``--baseline``, again from another checkout of the project, e.g. one at an earlier commit), one process
at a time. The dataset is made first if missing (not timed). The seconds each part took are read from
the progress bars' final lines. Writes ``benchmarks/results/first_number.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.record import REPO, RESULTS, pointmaze_dataset, use_temporary_datasets_path, write_result

README_ARGS = ["train", "--preset", "quick"]
ARGS = [*README_ARGS, "--set", "skills_steps=50", "--set", "prior_steps=50", "--set", "q_steps=50"]
# "LDCQ skills: 100%|...| 50/50 [00:06<00:00, ..." -> ("LDCQ skills", "00:06")
BAR = re.compile(r"([A-Za-z ]+): 100%\|[^|]*\|\s*\d+/\d+ \[(\d+):(\d+)<")


def part_seconds(log: str) -> dict[str, int]:
    """Seconds per progress bar (its final line), e.g. {"LDCQ skills": 6, "evaluate": 39}."""
    parts: dict[str, int] = {}
    for line in log.replace("\r", "\n").splitlines():
        match = BAR.search(line)
        if match:
            parts[match.group(1).strip()] = int(match.group(2)) * 60 + int(match.group(3))
    return parts


def run_once(checkout: Path, args: list[str], keep: Path | None = None) -> dict[str, Any]:
    """Time one run of the command; ``keep``: copy its output folder there (a checkpoint to measure
    further, e.g. with ``benchmarks.sampler_speed``)."""
    with tempfile.TemporaryDirectory() as out:
        env = {
            **os.environ,
            "PYTHONPATH": str(checkout),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "latent_skills", *args, "--out", str(Path(out) / "run")],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"the run failed in {checkout}:\n{done.stderr[-2000:]}")
        result = json.loads((Path(out) / "run" / "eval.json").read_text())
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(Path(out) / "run", keep)
    return {
        "wall_s": wall,
        "parts_s": part_seconds(done.stderr),
        "normalized_score": result.get("normalized_score"),
        "success_rate": result.get("success_rate"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.first_number",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to time too")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--readme", action="store_true", help="time the README's main job instead")
    parser.add_argument("--keep", type=Path, help="copy this checkout's last run folder here")
    args = parser.parse_args()
    timed = README_ARGS if args.readme else ARGS
    use_temporary_datasets_path()
    dataset_id, _ = pointmaze_dataset("umaze", 100_000)
    checkouts = {"this": REPO} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    for _ in range(args.runs):
        for name, checkout in checkouts.items():
            runs[name].append(run_once(checkout, timed, args.keep if name == "this" else None))
            print(name, runs[name][-1], flush=True)
    baseline_commit = None
    if args.baseline:
        baseline_commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=args.baseline, capture_output=True, text=True
        ).stdout.strip()
    result = {
        "benchmark": "the README's main job" if args.readme else "a tiny run's first number",
        "timed_command": "latent-skills " + " ".join(timed),
        "dataset_id": dataset_id,
        "runs": runs,
        "baseline_commit": baseline_commit,
        "note": args.note,
    }
    name = "readme_first_command.json" if args.readme else "first_number.json"
    write_result(RESULTS / name, result, dataset=dataset_id)


if __name__ == "__main__":
    main()
