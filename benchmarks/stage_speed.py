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


def run(args: argparse.Namespace) -> dict[str, Any]:
    from latent_skills import LDCQ
    from latent_skills.agents import stages

    dataset_id, _ = pointmaze_dataset(args.maze, args.steps)
    agent = LDCQ.from_dataset(dataset_id, preset=args.preset, device=args.device, seed=0)
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
            stages.build_candidate_bank = lambda *a, _bank=bank, **k: _bank  # the Q stage reuses it
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
    args = parser.parse_args()
    use_temporary_datasets_path()
    result = run(args)
    name = "-".join(
        [args.preset, result["device"].split(":")[0]]
        + ["compile"] * args.compile
        + ["bf16"] * (args.precision == "bf16")
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
