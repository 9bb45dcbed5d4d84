"""Latent sampling: ms per decision (500 candidates scored by the critic) and the score each sampler
reaches, on one trained checkpoint; plus Q-stage gradient steps/s with the bank and on the fly.

    latent-skills train --preset quick --out runs/ldcq-umaze        # the checkpoint (README's first command)
    python -m benchmarks.sampler_speed runs/ldcq-umaze

A decision is one `agent.predict(obs, deterministic=True)` with a fresh state, so every call chooses
a new skill: sample the candidates, score them with the critic, decode the first action. The Q-stage
speed trains a fresh Q stage over the checkpoint's skills and prior (`reuse_stages`), once with the
candidate bank and once sampling candidates on the fly; the checkpoint's dataset must be local.

Writes benchmarks/results/sampler_speed.json and benchmarks/results/sampler_speed.png.
Tables: `python -m benchmarks.summarize` (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from benchmarks.record import RESULTS, write_result

# (solver, steps, Diffusion-X extra steps at t = 0); "distilled": the checkpoint's distilled student
# (its distill_nfe steps), measured when it has one
SAMPLERS = [
    ("ddpm", 200, 0),
    ("ddpm", 200, 10),
    ("ddim", 10, 0),
    ("ddim", 20, 0),
    ("dpm-solver++", 10, 0),
    ("dpm-solver++", 20, 0),
    ("distilled", 0, 0),
]


def decision_ms(agent, obs, repeats: int) -> float:
    """Mean ms of one skill choice: ``predict`` with no state replans at every call."""
    agent.predict(obs, deterministic=True)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        agent.predict(obs, state=None, deterministic=True)
    return (time.perf_counter() - start) / repeats * 1000


def q_steps_per_s(checkpoint: str, source: str, steps: int) -> dict:
    """Gradient steps/s of the Q stage, timed from its first step (the bank is built before it)."""
    from latent_skills import load_agent

    trained = load_agent(checkpoint)
    config = {**trained.config.to_dict(), "candidate_source": source}
    seed, horizon = config.pop("seed"), config.pop("horizon")
    agent = type(trained).from_dataset(trained.spec.dataset_id, seed=seed, horizon=horizon, **config)
    agent.reuse_stages(trained, [s for s in trained.stages_completed if s != "q"])
    stamps: list[float] = []

    def stamp(locals_: dict, globals_: dict) -> bool:
        stamps.append(time.perf_counter())
        return True

    start = time.perf_counter()
    agent.learn(stages=["q"], total_timesteps=steps, callback=stamp)
    return {
        "setup_s": stamps[0] - start,
        "steps": steps,
        "steps_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "batch_size": agent.config.q_batch_size,
        "candidates_per_next_state": agent.config.q_candidates,
    }


def main() -> None:
    from latent_skills import load_agent

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sampler_speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--q-steps", type=int, default=300, help="0: do not time the Q stage")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="measure only these samplers (e.g. ddpm-200 dpm-solver++-10 distilled)",
    )
    args = parser.parse_args()

    agent = load_agent(args.checkpoint)
    obs, _ = agent.spec.make_env().reset(seed=0)
    rows = []
    teacher = {k: getattr(agent.config, k) for k in ("sampler", "sampler_steps")}
    distilled = "student" in agent.modules() and agent.student.is_ready
    for solver, steps, extra in SAMPLERS:
        name = "distilled" if solver == "distilled" else f"{solver}-{steps}" + (f"+{extra}" if extra else "")
        if args.only and name not in args.only:
            continue
        if solver == "distilled":
            if not distilled:
                continue
            steps = agent.config.distill_nfe
            agent.set_acting(**teacher, ddpm_extra_steps=0, act_candidates=500, distilled_for="all")
        else:
            agent.set_acting(
                sampler=solver,
                sampler_steps=steps if solver != "ddpm" else agent.config.sampler_steps,
                ddpm_extra_steps=extra,
                act_candidates=500,
                **({"distilled_for": "none"} if distilled else {}),
            )
        ms = decision_ms(agent, obs, args.repeats if solver != "ddpm" else max(3, args.repeats // 5))
        result = agent.evaluate(n_episodes=args.episodes, n_envs=args.envs, seed=0)
        rows.append(
            {
                "sampler": name if solver != "distilled" else f"distilled-{steps}",
                "ms_per_decision": ms,
                "normalized_score": result["normalized_score"],
                "success_rate": result["success_rate"],
                "score_sem": _score_sem(result["returns"], agent.spec.reference_scores),
                "returns": result["returns"],
            }
        )
        print(
            f"{rows[-1]['sampler']:>18}: {ms:8.1f} ms/decision  score {result['normalized_score']:.1f}",
            flush=True,
        )
    if distilled:
        agent.set_acting(distilled_for="all")
    q_speed = (
        {source: q_steps_per_s(args.checkpoint, source, args.q_steps) for source in ("bank", "online")}
        if args.q_steps
        else None
    )
    print(json.dumps(q_speed, indent=2))
    out = {
        "benchmark": "sampler speed and score; Q-stage steps/s",
        "checkpoint": args.checkpoint,
        "checkpoint_config": agent.config.to_dict(),
        "candidates": 500,
        "decision": "predict(obs, state=None, deterministic=True)",
        "torch_threads": torch.get_num_threads(),
        "samplers": rows,
        "q_stage": q_speed,
    }
    write_result(RESULTS / "sampler_speed.json", out, dataset=agent.spec.dataset_id)
    plot(rows)


def _score_sem(returns: list[float], reference: tuple[float, float]) -> float:
    """Standard error of the mean normalized score over the evaluation episodes."""
    low, high = reference
    return float(100 * np.std(returns) / np.sqrt(len(returns)) / (high - low))


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        ax.errorbar(
            row["ms_per_decision"],
            row["normalized_score"],
            fmt="o",
            label=row["sampler"],
            yerr=row["score_sem"],
        )
    ax.set_xscale("log")
    ax.set_xlabel("ms per decision (500 candidates, CPU)")
    ax.set_ylabel("normalized score")
    ax.legend()
    ax.set_title("Latent samplers: speed vs score")
    fig.tight_layout()
    fig.savefig(RESULTS / "sampler_speed.png", dpi=120)


if __name__ == "__main__":
    main()
