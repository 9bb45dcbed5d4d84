"""SAC over learned skills (SkillEnv) against SAC on raw actions, with the same env-step budget.

    python -m benchmarks.skill_sac                              # PointMaze UMaze, 17 min on 2 shared cores
    python -m benchmarks.skill_sac --agent runs/ldcq-umaze      # reuse a trained checkpoint's skills

An LDCQ agent (quick preset) learns skills (stage 1 only: SkillEnv needs just the decoder) from a
100k-step PointMaze UMaze dataset made with `collect_pointmaze("umaze", seed=0)` in a temporary
MINARI_DATASETS_PATH. Then, for each seed, Stable-Baselines3's SAC trains online on the dataset's
evaluation env (fixed goal, 300-step episodes) twice, with the same SAC settings and the same budget
of low-level env steps: once over `SkillEnv` (one action = one H-step skill) and once on raw actions.
Every `--eval-every` env steps each policy is evaluated deterministically on the same start states;
`--reward dense` trains on the dense reward instead (evaluation stays on the sparse task reward).

Writes benchmarks/results/skill_sac.json and benchmarks/results/skill_sac.png.
Tables: `python -m benchmarks.summarize` (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.record import RESULTS, pointmaze_dataset, use_temporary_datasets_path, write_result

EVAL_SEED = 10_000  # every evaluation starts its episodes from the same states
GAMMA = 0.99  # per low-level step; the skill-level SAC discounts γ^H per skill (a semi-MDP)
# The same SAC for both; small networks keep raw SAC's one update per env step affordable on a CPU.
SAC_SETTINGS: dict[str, Any] = {
    "policy_kwargs": {"net_arch": [64, 64]},
    "batch_size": 128,
    "learning_rate": 3e-4,
}


def pretrain_skills(agent_path: str | None, dataset_steps: int, seed: int) -> tuple[Any, dict]:
    """The LDCQ agent whose skills SAC acts with, trained here unless a checkpoint is given."""
    from latent_skills import LDCQ, load_agent

    if agent_path is not None:
        return load_agent(agent_path, device="cpu"), {"checkpoint": agent_path}
    dataset_id, made_s = pointmaze_dataset("umaze", dataset_steps)
    collect_s = made_s or 0.0
    start = time.perf_counter()
    agent = LDCQ.from_dataset(dataset_id, preset="quick", seed=seed, device="cpu")
    agent.learn(stages=["skills"])
    return agent, {
        "dataset_id": dataset_id,
        "dataset_steps": dataset_steps,
        "dataset_made_s": collect_s,
        "skills_train_s": time.perf_counter() - start,
        "config": agent.config.to_dict(),
    }


def make_callback(evaluate: Any, budget: int, eval_every: int) -> Any:
    """Counts low-level env steps (a skill step counts its ``info["steps"]``), evaluates every
    ``eval_every`` of them and stops training at ``budget``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class BudgetedEvaluation(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.env_steps, self.next_eval = 0, eval_every
            self.curve: list[dict[str, float]] = []

        def _on_training_start(self) -> None:
            self.curve.append({"env_steps": 0, **evaluate(self.model)})

        def _on_step(self) -> bool:
            self.env_steps += sum(int(info.get("steps", 1)) for info in self.locals["infos"])
            if self.env_steps >= self.next_eval:
                self.curve.append({"env_steps": self.env_steps, **evaluate(self.model)})
                self.next_eval += eval_every
            return self.env_steps < budget

    return BudgetedEvaluation()


def run_sac(agent: Any, method: str, reward: str, seed: int, args: argparse.Namespace) -> dict:
    from stable_baselines3 import SAC
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from latent_skills.envs import SkillEnv, normalized_score

    horizon = agent.config.horizon
    train_env = agent.spec.make_env(reward_type=reward)
    eval_env = agent.spec.make_env()
    if method == "skills":
        train_env = SkillEnv(train_env, agent, discount=GAMMA)
        eval_env = SkillEnv(eval_env, agent)
        gamma, per_episode = GAMMA**horizon, -(-eval_env.spec.max_episode_steps // horizon)
        # as many gradient steps per env step as raw SAC's one: H per skill decision
        updates = horizon if args.skill_updates is None else args.skill_updates
    else:
        gamma, per_episode, updates = GAMMA, eval_env.spec.max_episode_steps, 1
    eval_env = Monitor(eval_env)

    def evaluate(model: Any) -> dict[str, float]:
        eval_env.reset(seed=EVAL_SEED)  # the same start states at every evaluation, for both methods
        returns, _ = evaluate_policy(
            model,
            eval_env,
            n_eval_episodes=args.eval_episodes,
            deterministic=True,
            return_episode_rewards=True,
        )
        mean = float(np.mean(returns))
        return {"mean_return": mean, "normalized_score": normalized_score(mean, agent.spec.reference_scores)}

    callback = make_callback(evaluate, args.budget, args.eval_every)
    model = SAC(
        "MultiInputPolicy",
        train_env,
        gamma=gamma,
        learning_starts=per_episode,
        gradient_steps=updates,
        seed=seed,
        **SAC_SETTINGS,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.budget, callback=callback)
    return {
        "method": method,
        "reward": reward,
        "seed": seed,
        "gamma": gamma,
        "learning_starts": per_episode,
        "gradient_steps_per_decision": updates,
        "gradient_steps": int(model._n_updates),
        "decisions": int(model.num_timesteps),
        "env_steps": callback.env_steps,
        "wall_s": time.perf_counter() - start,
        "curve": callback.curve,
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = {"skills": "tab:blue", "raw": "tab:orange"}
    styles = {"sparse": "-", "dense": "--"}
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in result["runs"]:
        groups.setdefault((run["method"], run["reward"]), []).append(run)
    for (method, reward), runs in groups.items():
        n = min(len(r["curve"]) for r in runs)
        steps = np.array([p["env_steps"] for p in runs[0]["curve"][:n]])
        scores = np.array([[p["normalized_score"] for p in r["curve"][:n]] for r in runs])
        label = f"SAC over skills ({reward})" if method == "skills" else f"SAC on raw actions ({reward})"
        ax.plot(
            steps, scores.mean(0), styles[reward], color=colors[method], label=f"{label}, {len(runs)} seeds"
        )
        if len(runs) > 1:
            ax.fill_between(steps, scores.min(0), scores.max(0), color=colors[method], alpha=0.15)
    ax.axhline(100, color="grey", lw=0.8, ls=":")
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("low-level env steps")
    ax.set_ylabel("normalised score (0 random, 100 expert)")
    ax.set_title("PointMaze UMaze: SAC over LDCQ skills vs raw actions")
    ax.legend(fontsize=8, title="mean; shaded: min to max over seeds", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.skill_sac",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--agent", default=None, help="checkpoint folder with trained skills (default: train)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--reward", nargs="+", default=["sparse"], choices=["sparse", "dense"])
    parser.add_argument("--budget", type=int, default=15_000, help="low-level env steps per SAC run")
    parser.add_argument("--eval-every", type=int, default=1_500)
    parser.add_argument(
        "--skill-updates", type=int, default=None, help="SAC gradient steps per skill decision (default: H)"
    )
    parser.add_argument("--methods", nargs="+", default=["skills", "raw"], choices=["skills", "raw"])
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--dataset-steps", type=int, default=100_000)
    parser.add_argument("--out", default=str(RESULTS / "skill_sac.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    use_temporary_datasets_path()
    start = time.perf_counter()
    agent, pretraining = pretrain_skills(args.agent, args.dataset_steps, seed=0)
    runs = []
    for reward in args.reward:
        for seed in args.seeds:
            for method in args.methods:
                run = run_sac(agent, method, reward, seed, args)
                runs.append(run)
                last = run["curve"][-1]
                print(
                    f"{method:6s} {reward} seed {seed}: score {last['normalized_score']:.1f} after "
                    f"{run['env_steps']} env steps ({run['wall_s']:.0f}s)",
                    flush=True,
                )
    result = {
        "benchmark": "SAC over learned skills vs SAC on raw actions (same env-step budget)",
        "env": agent.spec.env_id,
        "horizon": agent.config.horizon,
        "latent_dim": agent.config.latent_dim,
        "reference_scores": agent.spec.reference_scores,
        "budget_env_steps": args.budget,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "sac": {**SAC_SETTINGS, "gamma_per_env_step": GAMMA},
        "pretraining": pretraining,
        "runs": runs,
        "summary": summarize(runs),
        "total_s": time.perf_counter() - start,
    }
    out = Path(args.out)
    write_result(out, result, dataset=agent.spec.dataset_id)
    plot(result, out.with_suffix(".png"))
    print(json.dumps(result["summary"], indent=2))


def summarize(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per (method, reward): the final and best evaluation scores, mean over seeds."""
    summary: dict[str, dict[str, float]] = {}
    for key in sorted({(r["method"], r["reward"]) for r in runs}):
        group = [r for r in runs if (r["method"], r["reward"]) == key]
        final = [r["curve"][-1]["normalized_score"] for r in group]
        best = [max(p["normalized_score"] for p in r["curve"]) for r in group]
        summary[f"{key[0]}/{key[1]}"] = {
            "final_score_mean": float(np.mean(final)),
            "final_scores": final,
            "best_score_mean": float(np.mean(best)),
            "wall_s_mean": float(np.mean([r["wall_s"] for r in group])),
        }
    return summary


if __name__ == "__main__":
    main()
