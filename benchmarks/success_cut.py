"""The value at a success cut, measured: LDCQ's quick preset with ``success_cut`` = bootstrap,
terminal and hold, on goal-conditioned PointMaze data (episodes cut at every goal reached).

    python -m benchmarks.success_cut --maze umaze --seeds 0 1 2

Per seed, the skills and the prior are trained once and shared (``reuse_stages``), so the choices
differ only in the Q stage and its critic starts from the same weights: a paired comparison. Each
choice is evaluated on the same deterministic episodes (seeds 0..). The Q stage logs its mean target;
the last logged value is kept (``q_target``), since an unanchored value drifts upwards.

Writes benchmarks/results/success_cut/{maze}-seed{seed}.json. Table: ``python -m benchmarks.summarize``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.record import RESULTS, pointmaze_dataset, scores, use_temporary_datasets_path, write_result

CHOICES = ("bootstrap", "terminal", "hold")


class LastTarget(BaseCallback):
    """Keeps the Q stage's last logged ``target`` (the mean of y over the batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.target: float | None = None

    def _on_step(self) -> bool:
        logs = self.locals.get("logs") or {}
        if self.locals.get("name") == "q" and "target" in logs:
            self.target = float(logs["target"])
        return True


def run(maze: str, seed: int, steps: int, episodes: int, envs: int, choices: list[str]) -> dict[str, Any]:
    from latent_skills import LDCQ

    dataset_id, _ = pointmaze_dataset(maze, steps)
    base = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed)
    t = time.perf_counter()
    base.learn(stages=["skills", "prior"])
    shared_s = time.perf_counter() - t
    results: dict[str, Any] = {}
    for choice in choices:
        agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed, success_cut=choice)
        agent.reuse_stages(base, ("skills", "prior"))
        watcher = LastTarget()
        t = time.perf_counter()
        agent.learn(stages=["q"], callback=watcher)
        q_s = time.perf_counter() - t
        t = time.perf_counter()
        evaluated = agent.evaluate(n_episodes=episodes, n_envs=envs, seed=0)
        results[choice] = {
            **scores(evaluated),
            "q_s": q_s,
            "eval_s": time.perf_counter() - t,
            "q_target": watcher.target,
        }
    return {
        "benchmark": "success cut",
        "maze": maze,
        "task": "goal-conditioned",
        "dataset_id": dataset_id,
        "seed": seed,
        "shared_stages_s": shared_s,
        "eval_episodes": episodes,
        "config": base.config.to_dict(),
        "choices": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.success_cut",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000, help="dataset steps, if it must be made")
    parser.add_argument("--choices", nargs="+", default=list(CHOICES), choices=CHOICES)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--envs", type=int, default=10)
    args = parser.parse_args()
    use_temporary_datasets_path()
    for seed in args.seeds:
        result = run(args.maze, seed, args.steps, args.episodes, args.envs, args.choices)
        write_result(
            RESULTS / "success_cut" / f"{args.maze}-seed{seed}.json", result, dataset=result["dataset_id"]
        )
        summary = ", ".join(
            f"{c} {r['normalized_score']:.1f} (target {r['q_target']:.2f})"
            for c, r in result["choices"].items()
        )
        print(f"{args.maze} seed {seed}: {summary}", flush=True)


if __name__ == "__main__":
    main()
