"""The whole family on one PointMaze dataset: LDCQ, LDGC, LDCP, BCQH, LatentDiffuser and behaviour
cloning, quick preset, the same evaluation episodes for all.

    python -m benchmarks.family --maze medium --seeds 0 1 2
    python -m benchmarks.family --maze large --seeds 0
    python -m benchmarks.family --maze large --task single-goal --steps 1000000 --agents LDGC BCQH

As in the paper, the variants share one skill VAE per seed: LDCQ trains skills → prior → q, and each
variant copies the stages it has in common with it (`reuse_stages`) and trains only its own:
LDGC its goal-conditioned prior, LDCP its world model (reusing the prior), BCQH its Q-function over
Gaussian-prior candidates, LatentDiffuser its energy model (reusing prior and Q). Each agent's
`train_s` counts its own stages plus the shared ones it reused, i.e. what training it alone would cost.
BC is trained for a fixed wall-clock budget (--bc-seconds).

Each (maze, seed) writes benchmarks/results/family[_single_goal]/{maze}-seed{seed}.json (a run with
--agents updates only those agents' entries; the stamp is the last run's) and keeps LDCQ's checkpoint
in runs/family[_single_goal]/ for later runs. A run whose --agents leave LDCQ out, with no LDCQ
checkpoint kept, trains an LDCQ *donor* with only the stages the agents reuse (the skills for LDGC and
BCQH): the same seed and config as LDCQ's own runs (quick_preset), so on this deterministic CPU training
the donor's skills are the ones those LDCQ runs trained; the donor is neither scored nor kept.
`--set FIELD=VALUE --tag T` changes the config of every scored agent that has FIELD (not the donor's)
and writes to family[_single_goal]_T/. The dataset is made once per maze with
`collect_pointmaze(maze, steps=100_000, seed=0)` into MINARI_DATASETS_PATH (a temporary folder unless
set). Tables: `python -m benchmarks.summarize` (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.bc_baseline import evaluate_bc, train_bc
from benchmarks.record import (
    RESULTS,
    pointmaze_dataset,
    scores,
    stage_names,
    use_temporary_datasets_path,
    write_result,
)

OUT = RESULTS / "family"
RUNS = Path("runs") / "family"
TASKS = ("goal-conditioned", "single-goal")
AGENTS = ("LDCQ", "LDGC", "LDCP", "BCQH", "LatentDiffuser")
# stages each variant copies from the seed's LDCQ (which trains skills, prior, q)
REUSED = {
    "LDCQ": (),
    "LDGC": ("skills",),
    "LDCP": ("skills", "prior"),
    "BCQH": ("skills",),
    "LatentDiffuser": ("skills", "prior", "q"),
}


def train_and_evaluate(
    name: str,
    dataset_id: str,
    seed: int,
    ldcq: Any,
    episodes: int,
    envs: int,
    overrides: dict[str, str] | None = None,
) -> tuple[Any, dict]:
    import latent_skills

    cls = getattr(latent_skills, name)
    fields = set(cls.config_class.field_names())
    settings = {k: v for k, v in (overrides or {}).items() if k in fields}
    t = time.perf_counter()
    agent = cls.from_dataset(dataset_id, preset="quick", seed=seed, **settings)
    stage_s: dict[str, float] = {"load": time.perf_counter() - t}
    if REUSED[name]:
        agent.reuse_stages(ldcq["agent"], REUSED[name])
        stage_s.update({s: ldcq["stage_s"][s] for s in REUSED[name]})
    for stage in stage_names(agent):
        if stage in REUSED[name]:
            continue
        t = time.perf_counter()
        agent.learn(stages=[stage])
        stage_s[stage] = time.perf_counter() - t
    t = time.perf_counter()
    result = agent.evaluate(n_episodes=episodes, n_envs=envs, seed=0)
    eval_s = time.perf_counter() - t
    summary = {
        **scores(result),
        "stage_s": stage_s,
        "train_s": sum(stage_s.values()),
        "eval_s": eval_s,
        "config": agent.config.to_dict(),
    }
    return agent, summary


def results_folder(task: str, tag: str | None) -> Path:
    """benchmarks/results/family[_single_goal][_TAG]."""
    return OUT.with_name(OUT.name + task_suffix(task) + (f"_{tag}" if tag else ""))


def task_suffix(task: str) -> str:
    """The results/runs folder suffix of a dataset kind: '' for the default, '_single_goal'."""
    return "" if task == TASKS[0] else "_" + task.replace("-", "_")


def train_donor(dataset_id: str, seed: int, stages: list[str]) -> dict[str, Any]:
    """An LDCQ with only ``stages`` trained, for variants that reuse them, and those stages' times."""
    from latent_skills import LDCQ

    donor = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed)
    stage_s: dict[str, float] = {}
    for stage in stages:
        t = time.perf_counter()
        donor.learn(stages=[stage])
        stage_s[stage] = time.perf_counter() - t
    return {"agent": donor, "stage_s": stage_s}


def run(
    maze: str,
    seed: int,
    steps: int,
    episodes: int,
    envs: int,
    bc_seconds: float,
    agents: list[str],
    task: str = TASKS[0],
    overrides: dict[str, str] | None = None,
    tag: str | None = None,
) -> dict:
    from latent_skills import LDCQ

    dataset_id, _ = pointmaze_dataset(maze, steps, task)
    path = results_folder(task, tag) / f"{maze}-seed{seed}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    results: dict[str, dict] = previous.get("agents", {})
    # LDCQ's checkpoint is kept so that a later run (e.g. --agents LDGC) can reuse its stages
    ldcq_folder = RUNS.with_name(RUNS.name + task_suffix(task)) / f"{maze}-seed{seed}-ldcq"
    if overrides and "LDCQ" in agents:
        raise ValueError("--set applies to the variants: leave LDCQ out (it is their shared donor)")
    ldcq: dict[str, Any] = {}
    if "LDCQ" not in agents and "LDCQ" in results and (ldcq_folder / "config.json").exists():
        ldcq = {"agent": LDCQ.load(ldcq_folder), "stage_s": results["LDCQ"]["stage_s"]}
    elif "LDCQ" not in agents:
        shared = {s for a in agents if a in REUSED for s in REUSED[a]}
        order = ("skills", "prior", "q")
        ldcq = train_donor(dataset_id, seed, [s for s in order if s in shared])
    for name in [a for a in AGENTS if a in agents or (a == "LDCQ" and not ldcq)]:
        agent, summary = train_and_evaluate(name, dataset_id, seed, ldcq, episodes, envs, overrides)
        if name == "LDCQ":
            ldcq = {"agent": agent, "stage_s": summary["stage_s"]}
            agent.save(ldcq_folder)
        results[name] = summary
        print(
            f"{maze} seed {seed} {name}: score {summary['normalized_score']:.1f} "
            f"success {summary['success_rate']:.2f} train {summary['train_s']:.0f}s",
            flush=True,
        )
    if "BC" in agents:
        if not ldcq:
            ldcq = train_donor(dataset_id, seed, [])
        bc, bc_train = train_bc(dataset_id, ldcq["agent"].spec, seconds=bc_seconds, seed=seed)
        bc_eval = evaluate_bc(bc, n_episodes=episodes, n_envs=envs, seed=0)
        results["BC"] = {**scores(bc_eval), **bc_train, "train_s": bc_train["train_seconds"]}
    return {
        "benchmark": "agent family, quick preset",
        "maze": maze,
        "task": task,
        "overrides": overrides or {},
        "dataset_id": dataset_id,
        "dataset_steps": steps,
        "seed": seed,
        "eval_episodes": episodes,
        "agents": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.family",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--maze", default="medium", choices=["umaze", "medium", "large"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--task", default=TASKS[0], choices=TASKS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--tag", help="name of the variant --set makes (its results folder's suffix)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--bc-seconds", type=float, default=120.0)
    parser.add_argument(
        "--agents", nargs="+", default=[*AGENTS, "BC"], choices=[*AGENTS, "BC"], help="A subset to (re)run."
    )
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides)
    if overrides and not args.tag:
        parser.error("--set changes the agents: name the variant with --tag, so its results stay apart")
    use_temporary_datasets_path()
    for seed in args.seeds:
        result = run(
            args.maze,
            seed,
            args.steps,
            args.episodes,
            args.envs,
            args.bc_seconds,
            args.agents,
            args.task,
            overrides,
            args.tag,
        )
        out = results_folder(args.task, args.tag)
        write_result(out / f"{args.maze}-seed{seed}.json", result, dataset=result["dataset_id"])


if __name__ == "__main__":
    main()
