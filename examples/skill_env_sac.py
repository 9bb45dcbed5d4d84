"""Skills as an action space: Stable-Baselines3's SAC picks one of an LDCQ agent's learned skills every
H steps (SkillEnv) instead of an action every step.

    python examples/skill_env_sac.py                          # ~5 min on one CPU core
    python examples/skill_env_sac.py --agent runs/ldcq-umaze  # reuse a trained checkpoint
    python examples/skill_env_sac.py --tiny                   # a seconds-long smoke run

Without --agent, a PointMaze UMaze dataset is collected (or reused from Minari's local store) and only
the skills stage is trained: SkillEnv needs the skill decoder, not the prior or the Q-function.
`python -m benchmarks.skill_sac` compares this with SAC on raw actions.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from latent_skills import LDCQ, LatentSkillAgent, load_agent
from latent_skills.data.loading import is_local
from latent_skills.data.makers import collect_pointmaze, default_dataset_id
from latent_skills.envs import SkillEnv, normalized_score

GAMMA = 0.99  # per low-level step


def skills_agent(args: argparse.Namespace) -> LatentSkillAgent:
    if args.agent:
        return load_agent(args.agent)
    dataset_id = default_dataset_id("umaze")
    if not is_local(dataset_id):
        collect_pointmaze(
            "umaze", steps=2_000 if args.tiny else 100_000, seed=0, ref_episodes=2 if args.tiny else 50
        )
    tiny = {"horizon": 5, "latent_dim": 4, "vae_hidden": 16, "skills_steps": 20, "exec_horizon": None}
    agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=args.seed, **(tiny if args.tiny else {}))
    return agent.learn(stages=["skills"], progress_bar=not args.tiny)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agent", default=None, help="checkpoint folder or Hub id with trained skills")
    parser.add_argument("--skill-steps", type=int, default=500, help="SAC decisions (one skill each)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/sac-over-skills", help="where the SAC model is saved")
    parser.add_argument("--tiny", action="store_true", help="tiny settings: a smoke run in seconds")
    args = parser.parse_args(argv)
    agent = skills_agent(args)
    horizon = agent.config.horizon

    # One SAC action = one latent z; the wrapper decodes it for H steps and sums their rewards
    # (discounted per step, so SAC's per-skill discount is γ^H: a semi-MDP).
    env = SkillEnv(agent.spec.make_env(), agent, discount=GAMMA)
    print(
        f"skills: {env.action_space.shape[0]}-dim latents within ±3 spreads of the training ones, H = {horizon}"
    )
    model = SAC(
        "MultiInputPolicy",  # PointMaze observations are dicts
        env,
        gamma=GAMMA**horizon,
        learning_starts=20 if args.tiny else 100,
        gradient_steps=horizon,  # one update per low-level step, as SAC on raw actions would do
        batch_size=32 if args.tiny else 128,
        policy_kwargs={"net_arch": [32, 32] if args.tiny else [64, 64]},
        seed=args.seed,
    )
    model.learn(total_timesteps=60 if args.tiny else args.skill_steps, progress_bar=False)
    model.save(args.out)

    # Evaluate on the plain task reward: the undiscounted sum over the episode's low-level steps.
    eval_env = Monitor(SkillEnv(agent.spec.make_env(), agent))
    eval_env.reset(seed=args.seed + 1000)
    episodes = 2 if args.tiny else args.episodes
    returns, skills = evaluate_policy(model, eval_env, n_eval_episodes=episodes, return_episode_rewards=True)
    mean = float(np.mean(returns))
    summary = {
        "mean_return": mean,
        "normalized_score": normalized_score(mean, agent.spec.reference_scores),
        "skills_per_episode": float(np.mean(skills)),
        "skill_decisions_trained": int(model.num_timesteps),
    }
    print(summary)
    return summary


if __name__ == "__main__":
    main()
