"""The paper's figures for agents trained here on a small PointMaze UMaze dataset (no network).

    python examples/plotting.py --out figures          # about 5 minutes on a 2-core CPU
    python examples/plotting.py --out figures --tiny   # seconds: tiny models, a smoke test

It makes the dataset (``latent-skills/pointmaze/umaze-plotting-v0`` under ``MINARI_DATASETS_PATH``),
trains skill VAEs with horizons H = 1 and 10 and an LDCP agent with H = 30 (skills, diffusion prior,
world model; logged to CSV), saves them under OUT/checkpoints, and writes to OUT:

- ``latents_by_horizon.png``  encoder latents of the windows for each H (paper Fig. 2)
- ``prior_samples.png``       ground truth vs diffusion prior vs Gaussian prior latents (Fig. 3)
- ``world_model.png``         LDCP's predicted skill end states in the maze (Fig. 5)
- ``learning_curves.png``     each stage's loss

The same figures come from the command line, e.g. ``latent-skills plot prior OUT/checkpoints/ldcp-h30``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import configure

from latent_skills.agents.ldcp import LDCP
from latent_skills.data.makers import collect_pointmaze
from latent_skills.plots import (
    plot_latents_by_horizon,
    plot_learning_curves,
    plot_prior_samples,
    plot_world_model,
)

DATASET_ID = "latent-skills/pointmaze/umaze-plotting-v0"
HORIZONS = (1, 10, 30)  # the last one is the LDCP agent's, the others train only their skill VAE
START_CELL = (2, 3)  # UMaze's corridor between the two arms: skills go up or down from here

# Seconds instead of minutes: tiny networks and few steps (the figures show untrained structure).
TINY: dict[str, Any] = {
    "latent_dim": 4,
    "vae_hidden": 16,
    "skills_batch_size": 32,
    "skills_steps": 40,
    "diffusion_timesteps": 20,
    "denoiser_widths": (16, 8, 16),
    "prior_batch_size": 64,
    "prior_steps": 40,
    "sampler_steps": 4,
    "dynamics_widths": (32, 32),
    "dynamics_batch_size": 64,
    "dynamics_steps": 40,
    "plan_candidates": 4,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("figures"), help="folder for the PNG files")
    parser.add_argument("--steps", type=int, default=20_000, help="dataset size in env steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="tiny models and data: runs in seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    start = time.perf_counter()
    steps, ref_episodes = (1500, 2) if args.tiny else (args.steps, 20)
    dataset = collect_pointmaze(
        "umaze",
        steps=steps,
        seed=args.seed,
        dataset_id=DATASET_ID,
        ref_episodes=ref_episodes,
        overwrite=True,
        progress=not args.tiny,
    )
    overrides = TINY if args.tiny else {}
    *short, main_horizon = HORIZONS
    agents = []
    for horizon in short:  # Fig. 2 needs only the encoders of the shorter horizons
        agent = LDCP.from_dataset(dataset, horizon=horizon, seed=args.seed, preset="quick", **overrides)
        agents.append(agent.learn(stages=["skills"], progress_bar=not args.tiny))
    ldcp = LDCP.from_dataset(dataset, horizon=main_horizon, seed=args.seed, preset="quick", **overrides)
    checkpoint = args.out / "checkpoints" / f"ldcp-h{main_horizon}"
    ldcp.set_logger(configure(str(checkpoint / "logs"), ["csv"]))
    ldcp.learn(progress_bar=not args.tiny, save_path=checkpoint, log_interval=10 if args.tiny else 100)
    ldcp.logger.close()
    agents.append(ldcp)
    for agent in agents[:-1]:
        agent.save(args.out / "checkpoints" / f"skills-h{agent.config.horizon}")

    # PointMaze episodes start wherever the last goal was reached, so every window is a start state
    # worth showing; at most 2000 of them, coloured by the direction they move the ball.
    figures = {
        "latents_by_horizon": plot_latents_by_horizon(
            agents, args.out / "latents_by_horizon.png", windows="all", seed=args.seed
        ),
        "prior_samples": plot_prior_samples(
            ldcp, args.out / "prior_samples.png", windows="all", seed=args.seed
        ),
        "world_model": plot_world_model(
            ldcp, args.out / "world_model.png", reset_cell=START_CELL, seed=args.seed
        ),
        "learning_curves": plot_learning_curves(checkpoint, args.out / "learning_curves.png"),
    }
    for path in figures.values():
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return figures


if __name__ == "__main__":
    main()
