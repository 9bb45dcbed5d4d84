"""LDCQ on D4RL Kitchen (mixed) with the paper's hyperparameters, on a GPU machine.

    python examples/kitchen_gpu.py                              # train, save, evaluate
    python examples/kitchen_gpu.py --push me/ldcq-kitchen-mixed # and upload to the Hugging Face Hub

Needs: a CUDA GPU (the paper preset trains 700k gradient steps over three stages), the network (the
first run downloads `D4RL/kitchen/mixed-v2` with Minari into MINARI_DATASETS_PATH), and for --push a
Hub token (`hf auth login` or --token). A run interrupted
with Ctrl-C saves a checkpoint to --out and prints how to resume the remaining stages.
Kitchen has no Minari reference scores: the normalised score is D4RL's (reward sum / 4 · 100).
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="D4RL/kitchen/mixed-v2")
    parser.add_argument("--out", default="runs/ldcq-kitchen-mixed", help="checkpoint folder")
    parser.add_argument("--device", default="cuda", help="torch device ('cpu' runs, very slowly)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes")
    parser.add_argument("--envs", type=int, default=10, help="evaluation envs run side by side")
    parser.add_argument("--push", metavar="REPO_ID", default=None, help="upload to this Hub repo")
    parser.add_argument("--token", default=None, help="Hub token (default: the logged-in one)")
    args = parser.parse_args(argv)

    import torch

    from latent_skills import LDCQ

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible to torch: run this on a GPU machine, or pass --device cpu")
    # H = 20 for kitchen (the paper's); the paper preset: z 16, β 0.05, T 200, 500 candidates.
    agent = LDCQ.from_dataset(args.dataset, download=True, preset="paper", seed=args.seed, device=args.device)
    agent.learn(progress_bar=True, save_path=args.out)
    results = agent.evaluate(n_episodes=args.episodes, n_envs=args.envs, seed=args.seed, progress_bar=True)
    summary = {k: results[k] for k in ("mean_return", "std_return", "normalized_score", "success_rate")}
    print(json.dumps(summary, indent=2))
    if args.push:
        url = agent.push_to_hub(args.push, token=args.token, eval_episodes=args.episodes, eval_envs=args.envs)
        print(f"pushed to {url}")
    return summary


if __name__ == "__main__":
    main()
