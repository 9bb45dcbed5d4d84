"""LDCQ from pixels (issue 23, the LDCQ paper's App. C) beside LDCQ from states and BC from pixels, on
the same episodes and seeds.

    python -m benchmarks.pixels --maze umaze --seeds 0 1 2
    python -m benchmarks.pixels --maze large --task single-goal --seeds 0 1 2

The two datasets are one stream collected twice with ``collect_pointmaze(maze, steps, seed=0, task)``:
once as states, once as ``--image-size`` top-down frames (the same episodes, actions and rewards). Each
arm runs in its own process (so its peak memory is its own) with the quick preset and the same seed:

- ``ldcq_pixels``: LDCQ with the image β-VAE stage first (``images``), then skills, prior, Q;
- ``ldcq_states``: LDCQ on the state dataset (the ``images`` stage is skipped);
- ``bc_pixels``: behaviour cloning (:mod:`benchmarks.bc_baseline`) on the frames, through the image
  encoder the pixel LDCQ trained (its states), for as long as that LDCQ trained.

Each (maze, task, seed) writes ``benchmarks/results/pixels/{maze}[-single-goal]-seed{seed}.json``: per
stage the wall time and the process's peak RSS after it (a high-water mark: ``ru_maxrss``), and each
arm's scores over the same deterministic evaluation episodes (seeds 0..). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from typing import Any

from benchmarks.bc_baseline import evaluate_bc, train_bc
from benchmarks.record import RESULTS, scores, stage_names, use_temporary_datasets_path, write_result

OUT = RESULTS / "pixels"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dataset(maze: str, task: str, steps: int, image_size: int | None) -> str:
    """The id of the dataset (states, or frames of ``image_size`` px), collected here if missing."""
    from latent_skills.data.loading import is_local
    from latent_skills.data.makers import collect_pointmaze, default_dataset_id

    observation = "states" if image_size is None else "pixels"
    dataset_id = default_dataset_id(maze, task, observation)
    if not is_local(dataset_id):
        pixels = {} if image_size is None else {"image_size": image_size}
        collect_pointmaze(
            maze, steps=steps, seed=0, task=task, observation=observation, progress=False, **pixels
        )
    return dataset_id


def ldcq_arm(
    dataset_id: str, seed: int, episodes: int, envs: int, overrides: dict[str, str], bc: bool
) -> dict:
    """One LDCQ trained stage by stage and evaluated, and (``bc``) BC on its encoded states."""
    import torch

    from latent_skills import LDCQ

    torch.set_num_threads(1)
    t = time.perf_counter()
    agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed, **overrides)
    stages = {"load": {"s": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}}
    for stage in stage_names(agent):
        t = time.perf_counter()
        agent.learn(stages=[stage])
        stages[stage] = {"s": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}
    train_s = sum(s["s"] for s in stages.values())
    t = time.perf_counter()
    result = agent.evaluate(n_episodes=episodes, n_envs=envs, seed=0)
    arm: dict[str, Any] = {
        "dataset_id": dataset_id,
        "stages": stages,
        "train_s": train_s,
        "eval_s": time.perf_counter() - t,
        "config": agent.config.to_dict(),
        **scores(result),
    }
    if bc:  # BC from the frames, through the encoder this LDCQ trained, for as long as it trained
        windows = agent.data.windows
        encode = lambda flat: agent.policy.encode(flat).cpu().numpy()  # noqa: E731
        policy, trained = train_bc(
            dataset_id, agent.spec, seconds=train_s, seed=seed, episodes=windows.episodes, encode=encode
        )
        arm["bc"] = {**scores(evaluate_bc(policy, episodes, envs, seed=0)), **trained}
        arm["bc"]["peak_rss_mb"] = peak_rss_mb()
    return arm


def in_own_process(*args: Any) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(ldcq_arm, args)


def run(
    maze: str,
    task: str,
    seed: int,
    steps: int,
    image_size: int,
    episodes: int,
    envs: int,
    overrides: dict[str, str],
) -> dict:
    pixels_id = dataset(maze, task, steps, image_size)
    states_id = dataset(maze, task, steps, None)
    pixels = in_own_process(pixels_id, seed, episodes, envs, overrides, True)
    states = in_own_process(states_id, seed, episodes, envs, overrides, False)
    return {
        "benchmark": "LDCQ from pixels vs from states vs BC from pixels",
        "maze": maze,
        "task": task,
        "seed": seed,
        "dataset_steps": steps,
        "image_size": image_size,
        "eval_episodes": episodes,
        "overrides": overrides,
        "ldcq_pixels": {k: v for k, v in pixels.items() if k != "bc"},
        "bc_pixels": pixels["bc"],
        "ldcq_states": states,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pixels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--task", default="goal-conditioned", choices=["goal-conditioned", "single-goal"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--out", default=str(OUT), help="results folder (a tiny trial run: a scratch one)")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides)
    use_temporary_datasets_path()
    suffix = "" if args.task == "goal-conditioned" else "-single-goal"
    for seed in args.seeds:
        result = run(
            args.maze, args.task, seed, args.steps, args.image_size, args.episodes, args.envs, overrides
        )
        write_result(
            f"{args.out}/{args.maze}{suffix}-seed{seed}.json",
            result,
            dataset=result["ldcq_pixels"]["dataset_id"],
        )
        print(
            f"{args.maze}{suffix} seed {seed}: LDCQ pixels {result['ldcq_pixels']['normalized_score']:.1f}, "
            f"states {result['ldcq_states']['normalized_score']:.1f}, BC pixels "
            f"{result['bc_pixels']['normalized_score']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
