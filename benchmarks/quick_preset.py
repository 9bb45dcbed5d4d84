"""LDCQ's quick preset end to end on a D4RL-procedure PointMaze dataset, beside behaviour cloning
trained on the same data for the same wall time.

    python -m benchmarks.quick_preset --maze umaze --seeds 0 1 2 3 4
    python -m benchmarks.quick_preset --maze large --seeds 0 1 2

Each (maze, seed) writes benchmarks/results/quick_preset/{maze}-seed{seed}.json: the stage wall times,
the end-to-end time (dataset made if missing + training + evaluation), and both agents' scores over
the same evaluation episodes (deterministic, seeds 0..). The dataset is made once per maze with
`collect_pointmaze(maze, steps=100_000, seed=0)` into a temporary MINARI_DATASETS_PATH unless one is set.
Tables: `python -m benchmarks.summarize` (BENCHMARKS.md).

A variant of the preset (`--set success_cut=terminal --tag terminal`) writes to its own folder,
quick_preset[_single_goal]_{tag}/; `--no-bc` leaves BC out (it does not depend on LDCQ's settings).
"""

from __future__ import annotations

import argparse
import time

from benchmarks.bc_baseline import evaluate_bc, train_bc
from benchmarks.record import (
    RESULTS,
    pointmaze_dataset,
    scores,
    stage_names,
    use_temporary_datasets_path,
    write_result,
)

OUT = RESULTS / "quick_preset"


def run(
    maze: str,
    seed: int,
    steps: int,
    episodes: int,
    envs: int,
    task: str = "goal-conditioned",
    overrides: dict[str, str] | None = None,
    with_bc: bool = True,
    acting_variants: list[dict[str, str]] | None = None,
    save_to: str | None = None,
) -> dict:
    from latent_skills import LDCQ
    from latent_skills.data import EpisodeArrays, load_dataset

    dataset_id, made_s = pointmaze_dataset(maze, steps, task)
    collect_s = made_s or 0.0

    t = time.perf_counter()
    agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed, **(overrides or {}))
    stage_s = {"load": time.perf_counter() - t}
    for stage in stage_names(agent):
        t = time.perf_counter()
        agent.learn(stages=[stage])
        stage_s[stage] = time.perf_counter() - t
    train_s = sum(stage_s.values())
    t = time.perf_counter()
    ldcq = agent.evaluate(n_episodes=episodes, n_envs=envs, seed=0)
    eval_s = time.perf_counter() - t
    if save_to is not None:  # after the timed parts: kept for acting studies without retraining
        agent.save(save_to)

    variants = []
    config = agent.config.to_dict()  # as trained and evaluated above
    preset_acting = {name: config[name] for name in agent.config.ACTING}
    for changes in acting_variants or []:  # the same trained agent, each variant from the preset's acting
        t = time.perf_counter()
        other = agent.set_acting(**{**preset_acting, **changes}).evaluate(
            n_episodes=episodes, n_envs=envs, seed=0
        )
        variants.append({"set_acting": changes, "eval_s": time.perf_counter() - t, **scores(other)})
    bc_result = None
    if with_bc:
        bc, bc_train = train_bc(dataset_id, agent.spec, seconds=train_s, seed=seed)
        bc_eval = evaluate_bc(bc, n_episodes=episodes, n_envs=envs, seed=0)
        bc_result = {**scores(bc_eval), **bc_train}
    # episodes whose stale first goal loading repaired (0 before the repair existed); counted
    # outside the timed parts, by the same loader the agents use
    repaired = EpisodeArrays.from_minari(load_dataset(dataset_id)).stale_goals_repaired
    return {
        "benchmark": "quick preset end to end",
        "maze": maze,
        "task": task,
        "dataset_id": dataset_id,
        "dataset_steps": steps,
        "seed": seed,
        "dataset_made_s": made_s,
        "stale_goals_repaired": repaired,
        "stage_s": stage_s,
        "train_s": train_s,
        "eval_s": eval_s,
        "end_to_end_s": collect_s + train_s + eval_s,
        "eval_episodes": episodes,
        "overrides": overrides or {},
        "config": config,
        "ldcq": scores(ldcq),
        "acting_variants": variants,
        "bc": bc_result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quick_preset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--envs", type=int, default=10)
    # single-goal (D4RL maze2d's setting) results go to their own folder, apart from the table above
    parser.add_argument("--task", default="goal-conditioned", choices=["goal-conditioned", "single-goal"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--tag", help="name of the variant --set makes (its results folder's suffix)")
    parser.add_argument("--no-bc", dest="with_bc", action="store_false")
    parser.add_argument(
        "--also-act",
        action="append",
        default=[],
        metavar="FIELD=VALUE[,FIELD=VALUE]",
        help="evaluate the trained agent again with these acting settings (after the timed evaluation)",
    )
    parser.add_argument("--save", metavar="DIR", help="save each trained agent to DIR/{maze}-seed{seed}")
    args = parser.parse_args()
    acting = [dict(item.split("=", 1) for item in spec.split(",")) for spec in args.also_act]
    overrides = dict(item.split("=", 1) for item in args.overrides)
    if overrides and not args.tag:
        parser.error("--set changes the preset: name the variant with --tag, so its results stay apart")
    use_temporary_datasets_path()
    out = OUT if args.task == "goal-conditioned" else RESULTS / "quick_preset_single_goal"
    if args.tag:
        out = out.with_name(f"{out.name}_{args.tag}")
    for seed in args.seeds:
        result = run(
            args.maze,
            seed,
            args.steps,
            args.episodes,
            args.envs,
            args.task,
            overrides,
            args.with_bc,
            acting,
            None if args.save is None else f"{args.save}/{args.maze}-seed{seed}",
        )
        write_result(out / f"{args.maze}-seed{seed}.json", result, dataset=result["dataset_id"])
        bc = "" if result["bc"] is None else f" BC {result['bc']['normalized_score']:.1f}"
        print(
            f"{args.maze} seed {seed}: LDCQ {result['ldcq']['normalized_score']:.1f}{bc} "
            f"end-to-end {result['end_to_end_s']:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
