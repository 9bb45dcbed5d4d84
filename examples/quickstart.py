"""Quickstart: collect a PointMaze dataset, train LDCQ on it, evaluate, save, and (optionally) push.

    python examples/quickstart.py                       # UMaze, quick preset: ~8 min on a 2-core CPU
    python examples/quickstart.py --push me/ldcq-umaze  # also upload to the Hugging Face Hub
    python examples/quickstart.py --tiny                # a seconds-long smoke run (tiny networks)

The dataset goes to Minari's local store (MINARI_DATASETS_PATH, default ~/.minari/datasets) and is
reused on the next run. Pushing needs the network and a token (`hf auth login` or --token).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from latent_skills import LDCQ, load_agent
from latent_skills.data.loading import is_local
from latent_skills.data.makers import collect_pointmaze, default_dataset_id

# Seconds instead of minutes: tiny networks and a few dozen gradient steps per stage.
TINY: dict[str, Any] = {
    "horizon": 5,
    "latent_dim": 4,
    "vae_hidden": 16,
    "skills_steps": 20,
    "diffusion_timesteps": 20,
    "denoiser_widths": (16, 8, 16),
    "prior_steps": 20,
    "sampler_steps": 4,
    "q_steps": 20,
    "q_widths": (32, 32),
    "q_candidates": 4,
    "act_candidates": 8,
    "exec_horizon": None,
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--steps", type=int, default=100_000, help="env steps in the collected dataset")
    parser.add_argument("--out", default="runs/ldcq-umaze", help="checkpoint folder")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--push", metavar="REPO_ID", default=None, help="upload to this Hub repo")
    parser.add_argument("--token", default=None, help="Hub token (default: the logged-in one)")
    parser.add_argument("--tiny", action="store_true", help="tiny settings: a smoke run in seconds")
    args = parser.parse_args(argv)
    steps, episodes = (2_000, 2) if args.tiny else (args.steps, args.episodes)

    # 1. collect: a D4RL-style dataset from a noisy waypoint expert (skipped if already local)
    dataset_id = default_dataset_id(args.maze)
    if not is_local(dataset_id):
        collect_pointmaze(args.maze, steps=steps, seed=args.seed, ref_episodes=2 if args.tiny else 50)

    # 2. train: skill VAE -> latent diffusion prior -> Q, saved after every stage
    agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=args.seed, **(TINY if args.tiny else {}))
    agent.learn(progress_bar=not args.tiny, save_path=args.out)

    # 3. evaluate on the dataset's evaluation env; the checkpoint reloads to the same agent
    results = load_agent(args.out).evaluate(n_episodes=episodes, n_envs=min(episodes, 10), seed=args.seed)
    summary = {k: results[k] for k in ("mean_return", "std_return", "normalized_score", "success_rate")}
    print(json.dumps(summary, indent=2))

    # 4. push: weights, config, model card and these evaluation results, in one commit
    if args.push:
        url = agent.push_to_hub(args.push, token=args.token, eval_episodes=episodes, video=not args.tiny)
        print(f"pushed to {url}")
    return summary


if __name__ == "__main__":
    main()
