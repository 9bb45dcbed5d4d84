"""Train on your own data: turn logged trajectories (numpy arrays) into a Minari dataset in code, then
train and evaluate LDCQ on it.

    python examples/own_buffers.py            # ~6 min on one CPU core
    python examples/own_buffers.py --tiny     # a seconds-long smoke run

Here the "logged data" comes from a noisy proportional controller in PointMaze UMaze that steers the
ball straight at the goal (and so often gets stuck on a wall); swap `record_episode` for your own
logs. Each episode is one `EpisodeBuffer`: observations (T + 1 of them, dicts allowed), actions,
rewards, terminations and truncations (T each). The dataset is written under MINARI_DATASETS_PATH
(default ~/.minari/datasets) as `--dataset-id`, replacing an earlier one of that id.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import gymnasium as gym
import gymnasium_robotics
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer

from latent_skills import LDCQ
from latent_skills.data.loading import is_local

ENV_ID = "PointMaze_UMaze-v3"


def record_episode(env: gym.Env, rng: np.random.Generator, episode: int, noise: float) -> EpisodeBuffer:
    """One episode of a noisy P-controller toward the goal, as the arrays a logger would keep."""
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
    done = False
    while not done:
        position, velocity = obs["achieved_goal"], obs["observation"][2:]
        command = 2.0 * (obs["desired_goal"] - position) - 0.5 * velocity + rng.normal(0, noise, 2)
        action = np.clip(command, -1.0, 1.0).astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        done = terminated or truncated
    return EpisodeBuffer(
        id=episode,
        # a dict observation is a dict of stacked arrays
        observations={key: np.stack([o[key] for o in observations]) for key in observations[0]},
        actions=np.stack(actions),
        rewards=np.asarray(rewards, np.float64),
        terminations=np.asarray(terminations),
        truncations=np.asarray(truncations),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset-id", default="my-lab/pointmaze-pcontrol-v0")
    parser.add_argument("--episodes", type=int, default=400, help="episodes to record")
    parser.add_argument("--noise", type=float, default=0.5, help="std of the controller's action noise")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="tiny settings: a smoke run in seconds")
    args = parser.parse_args(argv)
    gym.register_envs(gymnasium_robotics)

    # Episodes end at the goal (a termination) or after 150 steps (a truncation).
    env = gym.make(ENV_ID, continuing_task=False, max_episode_steps=40 if args.tiny else 150)
    rng = np.random.default_rng(args.seed)
    n_episodes = 6 if args.tiny else args.episodes
    buffers = [record_episode(env, rng, i, args.noise) for i in range(n_episodes)]
    if is_local(args.dataset_id):
        minari.delete_dataset(args.dataset_id)
    dataset = minari.create_dataset_from_buffers(
        args.dataset_id,
        buffers,
        env=env,  # its spec is stored: the agent evaluates on the same env
        eval_env=env,
        algorithm_name="noisy P-controller",
        author="My Lab",  # yours: Minari records who made the data and with what code
        author_email="my-lab@example.com",
        code_permalink="https://example.com/my-lab/logging-code",
        description="PointMaze UMaze episodes from a noisy proportional controller (examples/own_buffers.py)",
    )
    print(f"{args.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps")

    tiny = {"horizon": 5, "latent_dim": 4, "vae_hidden": 16, "skills_steps": 20, "prior_steps": 20}
    tiny |= {"diffusion_timesteps": 20, "sampler_steps": 4, "q_steps": 20, "q_candidates": 4}
    tiny |= {"act_candidates": 8, "exec_horizon": None}
    agent = LDCQ.from_dataset(dataset, preset="quick", seed=args.seed, **(tiny if args.tiny else {}))
    agent.learn(progress_bar=not args.tiny)
    episodes = 2 if args.tiny else args.eval_episodes
    results = agent.evaluate(n_episodes=episodes, n_envs=min(episodes, 10), seed=args.seed)
    summary = {k: results[k] for k in ("mean_return", "std_return", "success_rate")}
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
