"""How LDCQ's acting settings change its score, on agents trained once with the quick preset.

    python -m benchmarks.acting_sweep --maze umaze --seeds 0 1 2

For each seed: train (or load, if runs/sweep-{maze}-seed{seed} exists) an LDCQ quick agent, then
evaluate it under each setting of `act_candidates` (the number of prior samples the Q-function picks
from) and `exec_horizon` (steps between replanning), all on the same evaluation episodes. Writes
benchmarks/results/acting_sweep-{maze}.json (runs are appended to the file's earlier ones).
Tables: `python -m benchmarks.summarize` (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.record import RESULTS, pointmaze_dataset, use_temporary_datasets_path, write_result

SETTINGS = [
    {"act_candidates": 16, "exec_horizon": 15},
    {"act_candidates": 64, "exec_horizon": 15},
    {"act_candidates": 500, "exec_horizon": 15},
    {"act_candidates": 500, "exec_horizon": 5},
    {"act_candidates": 500, "exec_horizon": 30},
]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.acting_sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--envs", type=int, default=10)
    args = parser.parse_args()
    use_temporary_datasets_path()

    from latent_skills import LDCQ

    dataset_id, _ = pointmaze_dataset(args.maze, 100_000)
    out = RESULTS / f"acting_sweep-{args.maze}.json"
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    for seed in args.seeds:
        folder = Path("runs") / f"sweep-{args.maze}-seed{seed}"
        if (folder / "model.safetensors").exists():
            agent = LDCQ.load(folder)
        else:
            agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed).learn(save_path=folder)
        for setting in SETTINGS:
            agent.set_acting(**setting)
            t = time.perf_counter()
            r = agent.evaluate(n_episodes=args.episodes, n_envs=args.envs, seed=0)
            run = {
                "seed": seed,
                **setting,
                "normalized_score": r["normalized_score"],
                "success_rate": r["success_rate"],
                "eval_s": time.perf_counter() - t,
            }
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    results.update(benchmark="acting settings", dataset_id=dataset_id, eval_episodes=args.episodes)
    write_result(out, results, dataset=dataset_id)


if __name__ == "__main__":
    main()
