"""Training speed per stage, the posterior encoding and the candidate bank, and what they make of a
whole run: LDCQ's gradient steps per second in each stage (a few hundred steps of each, after a
warm-up), windows encoded per second, bank states sampled per second, extrapolated to the preset's
step counts on a dataset of ``--extrapolate-steps`` steps (default 1M, D4RL's maze2d-umaze size).

    OMP_NUM_THREADS=1 python -m benchmarks.stage_speed --preset paper            # this machine's CPU
    python -m benchmarks.stage_speed --preset paper --device cuda                # a GPU
    python -m benchmarks.stage_speed --preset paper --device cuda --compile --precision bf16

The stages train on a small PointMaze dataset (``--steps``; speed per step does not depend on its
size); the bank is timed on every distinct next state of it.

With --compile the networks are compiled as each stage starts (outside the timed steps; the bank's
first batch includes compiling the sampler's graph). Writes
benchmarks/results/stage_speed/{preset}-{device}[-compile][-bf16].json. Table: ``python -m benchmarks.summarize``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.record import RESULTS, pointmaze_dataset, use_temporary_datasets_path, write_result

WARMUP = 10


class StepClock(BaseCallback):
    """perf_counter at the end of every step of the stage being timed."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def _on_step(self) -> bool:
        self.times.append(time.perf_counter())
        return True


def steps_per_s(times: list[float]) -> float:
    timed = times[WARMUP:]
    return (len(timed) - 1) / (timed[-1] - timed[0])


def top_ops(prof: Any, rows: int = 12) -> list[dict[str, Any]]:
    """The ``rows`` ops with the most self CPU time in a ``torch.profiler`` run."""
    averages = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in averages) or 1.0
    return [
        {
            "op": e.key,
            "self_cpu_ms": e.self_cpu_time_total / 1000,
            "share": e.self_cpu_time_total / total,
            "calls": e.count,
        }
        for e in averages[:rows]
    ]


def profiled(work: Any) -> list[dict[str, Any]]:
    """Run ``work()`` under the CPU profiler and return its top ops."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        work()
    return top_ops(prof)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from latent_skills import LDCQ
    from latent_skills.agents import stages
    from latent_skills.agents.stages import q as q_stage

    dataset_id, _ = pointmaze_dataset(args.maze, args.steps)
    # the bank path (a short timed run would otherwise draw candidates on the fly)
    agent = LDCQ.from_dataset(
        dataset_id, preset=args.preset, device=args.device, seed=0, candidate_source="bank"
    )
    agent.progress = False
    windows = len(agent.data.windows)
    result: dict[str, Any] = {"stages": {}}
    for stage in ("skills", "prior", "q"):
        if stage == "q":
            agent.data.posterior = None  # the prior stage cached it: encode again, timed
            t = time.perf_counter()
            agent.posterior()
            result["posterior_windows_per_s"] = windows / (time.perf_counter() - t)
            t = time.perf_counter()
            bank = agent.build_bank(progress_bar=False)
            bank_s = time.perf_counter() - t
            result["bank"] = {
                "states": len(bank.unique_rows),
                "candidates": agent.config.q_candidates,
                "seconds": bank_s,
                "states_per_s": len(bank.unique_rows) / bank_s,
                "chunk_states": stages.sampling_chunk(agent.device),
            }
            q_stage.build_candidate_bank = lambda *a, _bank=bank, **k: _bank  # the Q stage reuses it
        clock = StepClock()
        t = time.perf_counter()
        agent.learn(
            stages=[stage],
            total_timesteps=args.measure + WARMUP,
            callback=clock,
            compile=args.compile,
            precision=args.precision,
        )
        result["stages"][stage] = {
            "steps_per_s": steps_per_s(clock.times),
            "setup_s": clock.times[0] - t,
            "timed_steps": len(clock.times) - WARMUP,
        }
        if args.profile:
            result.setdefault("profile", {})[stage] = profiled(
                lambda stage=stage: agent.learn(stages=[stage], total_timesteps=args.profile)
            )
    if args.profile:
        profile = result["profile"]
        agent.data.posterior = None
        sub = min(windows, 4096)
        profile["posterior (4096 windows)"] = profiled(lambda: encode_windows(agent, sub))
        profile["bank (256 states)"] = profiled(lambda: sample_bank_chunk(agent))
        t = time.perf_counter()
        evaluated = agent.evaluate(n_episodes=args.eval_episodes, n_envs=args.eval_episodes, seed=0)
        eval_s = time.perf_counter() - t
        result["evaluation"] = {
            "episodes": args.eval_episodes,
            "env_steps": sum(evaluated["episode_lengths"]),
            "seconds": eval_s,
            "env_steps_per_s": sum(evaluated["episode_lengths"]) / eval_s,
        }
        profile["evaluation (one episode)"] = profiled(lambda: agent.evaluate(n_episodes=1, seed=0))
    c = agent.config
    planned = {"skills": c.skills_steps, "prior": c.prior_steps, "q": c.q_steps}
    train = {s: planned[s] / result["stages"][s]["steps_per_s"] for s in planned}
    n = args.extrapolate_steps
    # about one distinct next state per window at scale
    extra = {"posterior": n / result["posterior_windows_per_s"], "bank": n / result["bank"]["states_per_s"]}
    result.update(
        benchmark="stage speed",
        preset=args.preset,
        device=str(agent.device),
        compile=args.compile,
        precision=args.precision,
        dataset_id=dataset_id,
        dataset_windows=windows,
        planned_steps=planned,
        extrapolated_dataset_steps=n,
        extrapolated_s={**train, **extra, "total": sum(train.values()) + sum(extra.values())},
        config=c.to_dict(),
    )
    return result


def encode_windows(agent: Any, n: int) -> None:
    """q(z|τ) of the first ``n`` windows in one batch, as ``agent.posterior`` encodes them."""
    import numpy as np
    import torch

    w, idx = agent.data.windows, np.arange(n)
    with torch.no_grad():
        agent.vae.encode(
            agent._tensor(w.states[idx]), agent._tensor(w.actions[idx]), agent._tensor(w.mask[idx])
        )


def sample_bank_chunk(agent: Any) -> None:
    """One chunk of the candidate bank: ``q_candidates`` prior samples for 256 next states."""
    import numpy as np
    import torch

    w = agent.data.windows
    rows = np.unique(w.next_states.rows(np.arange(len(w))))[:256]
    states = torch.as_tensor(np.asarray(w.episodes.observations[rows], np.float32), device=agent.device)
    generator = torch.Generator(agent.device).manual_seed(0)
    agent.policy.prior.plain.sample(states, agent.config.q_candidates, generator=generator)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stage_speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default="paper", choices=["paper", "quick"])
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--steps", type=int, default=10_000, help="steps of the dataset timed on")
    parser.add_argument("--measure", type=int, default=200, help="timed steps per stage (after 10 warm-up)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--extrapolate-steps", type=int, default=1_000_000)
    parser.add_argument("--compile", action="store_true", help="learn(compile=True)")
    parser.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="also profile STEPS steps of each stage, a posterior batch, a bank chunk and an "
        "evaluation episode (torch.profiler's top ops by self CPU time, kept in the result)",
    )
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes timed with --profile")
    args = parser.parse_args()
    use_temporary_datasets_path()
    result = run(args)
    name = "-".join(
        [args.preset, result["device"].split(":")[0]]
        + ["compile"] * args.compile
        + ["bf16"] * (args.precision == "bf16")
        + ["profile"] * bool(args.profile)
    )
    write_result(RESULTS / "stage_speed" / f"{name}.json", result, dataset=result["dataset_id"])
    rates = ", ".join(f"{s} {r['steps_per_s']:.1f}" for s, r in result["stages"].items())
    print(
        f"{args.preset} on {result['device']}: steps/s {rates}; bank {result['bank']['states_per_s']:.0f} states/s; "
        f"whole run on {args.extrapolate_steps:,} steps ≈ {result['extrapolated_s']['total'] / 3600:.1f} h",
        flush=True,
    )


if __name__ == "__main__":
    main()
