"""Time ``collect_pointmaze("umaze", steps=20000, seed=0)`` end to end, reference scores included.

Run from the repository root::

    python -m benchmarks.collect_speed [--steps 20000] [--maze umaze] [--ref-episodes 50]
    python -m benchmarks.collect_speed --observation pixels --steps 100000 [--image-size 64]

Writes ``benchmarks/results/collect_speed.json`` (``collect_speed_pixels.json`` for pixels), with the
dataset's size on disk. The dataset goes to a temporary
``MINARI_DATASETS_PATH`` that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.record import RESULTS, dataset_info, write_result


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.collect_speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--maze", default="umaze")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ref-episodes", type=int, default=50)
    parser.add_argument("--observation", choices=["states", "pixels"], default="states")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="default: results/collect_speed[_pixels].json")
    args = parser.parse_args()
    pixels = args.observation == "pixels"
    out = args.out or RESULTS / ("collect_speed_pixels.json" if pixels else "collect_speed.json")

    with tempfile.TemporaryDirectory() as tmp:
        # Set before minari resolves its dataset root, so nothing lands in ~/.minari.
        os.environ["MINARI_DATASETS_PATH"] = tmp
        t_import = time.perf_counter()
        from latent_skills.data.makers import collect_pointmaze, reference_scores

        import_s = time.perf_counter() - t_import
        t0 = time.perf_counter()
        ds = collect_pointmaze(
            args.maze,
            steps=args.steps,
            seed=args.seed,
            ref_episodes=args.ref_episodes,
            progress=False,
            observation=args.observation,
            image_size=args.image_size,
        )
        wall = time.perf_counter() - t0
        disk_mb = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20
        meta = ds.storage.metadata
        lengths = [len(ep.rewards) for ep in ds.iterate_episodes()]
        stamp = dataset_info(ds)  # read before the temporary folder goes
        # The reference-score part alone (run again, same seed, so same numbers).
        t1 = time.perf_counter()
        reference_scores(args.maze, args.ref_episodes, args.seed)
        ref_s = time.perf_counter() - t1

    result = {
        "benchmark": "collect_pointmaze",
        "maze": args.maze,
        "steps": args.steps,
        "observation": args.observation,
        **({"image_size": args.image_size} if pixels else {}),
        "disk_mb": round(disk_mb, 1),
        "seed": args.seed,
        "ref_episodes": args.ref_episodes,
        "wall_time_s": round(wall, 3),
        "steps_per_s_including_ref_and_save": round(args.steps / wall, 1),
        "reference_scores_s": round(ref_s, 3),
        "import_time_s": round(import_s, 3),
        "episodes": len(lengths),
        "mean_episode_length": round(sum(lengths) / len(lengths), 2),
        "ref_min_score": meta["ref_min_score"],
        "ref_max_score": meta["ref_max_score"],
    }
    write_result(out, result, dataset=stamp)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
