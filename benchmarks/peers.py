"""Peers side by side: d3rlpy's BC, IQL and TD3+BC on exactly the data and the evaluation episodes of
our agents (the same Minari dataset, the same flattened observations, the same vector-env evaluation
with seeds 0.., the same reference scores).

    bash scripts/setup_peers.sh          # .venv-peers: latent-skills + d3rlpy (see there why not an extra)
    .venv-peers/bin/python -m benchmarks.peers --maze large --task single-goal --steps 1000000 --seeds 0 1 2

Each algorithm trains for the wall time LDCQ's quick preset took on the same dataset and seed (the
``train_s`` of the matching ``benchmarks.quick_preset`` result), as the quick preset's BC does, unless
``--seconds`` or ``--gradient-steps`` says otherwise. Observations are standardised with the agents'
rule (a nearly constant dimension, e.g. the single-goal data's goal, is centred, not scaled: d3rlpy's
own StandardObservationScaler would amplify the evaluation env's goal noise a thousandfold); actions
are min-max scaled to the dataset's action bounds. Hyperparameters are d3rlpy's defaults (IQL:
expectile 0.7, temperature 3; TD3+BC: α 2.5), γ = 0.99.

Writes benchmarks/results/peers[_single_goal]/{maze}-{algo}-seed{seed}.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.record import RESULTS, pointmaze_dataset, scores, use_temporary_datasets_path, write_result
from latent_skills.data import EpisodeArrays, load_dataset
from latent_skills.envs import evaluate_policy_vec
from latent_skills.nn import StateNormalizer

ALGOS = ("bc", "iql", "td3+bc")


def results_folder(task: str, root: Path = RESULTS) -> Path:
    return root / ("peers" if task == "goal-conditioned" else "peers_single_goal")


def quick_preset_folder(task: str, root: Path = RESULTS) -> Path:
    return root / ("quick_preset" if task == "goal-conditioned" else "quick_preset_single_goal")


def transitions(episodes: EpisodeArrays) -> dict[str, np.ndarray]:
    """The dataset as d3rlpy's MDPDataset takes it: s_t, a_t, r_t per step, and per step whether the
    episode ends there by termination or by a cut (timeout)."""
    last = np.zeros(episodes.n_steps, bool)
    last[episodes.step_offsets + episodes.lengths - 1] = True
    terminals = episodes.terminations & last
    return {
        "observations": episodes.observations[episodes.step_observation_rows()].astype(np.float32),
        "actions": episodes.actions.astype(np.float32),
        "rewards": episodes.rewards.astype(np.float32),
        "terminals": terminals.astype(np.float32),
        "timeouts": (last & ~terminals).astype(np.float32),
    }


class PeerPolicy:
    """A trained d3rlpy algorithm behind the ``predict`` our evaluation calls."""

    def __init__(self, algo: Any, spec: Any, normalizer: StateNormalizer) -> None:
        self.algo, self.spec, self.normalizer = algo, spec, normalizer

    @torch.no_grad()
    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ):
        flat = self.spec.flattener.flatten(observation)
        x = self.normalizer(torch.as_tensor(np.atleast_2d(flat), dtype=torch.float32)).numpy()
        action = self.algo.predict(x)
        return (action[0] if flat.ndim == 1 else action), None


def make_algo(name: str, spec: Any, device: str) -> Any:
    import d3rlpy

    scaler = d3rlpy.preprocessing.MinMaxActionScaler(
        minimum=np.array(spec.action_low, np.float32), maximum=np.array(spec.action_high, np.float32)
    )
    if name == "bc":
        config: Any = d3rlpy.algos.BCConfig(batch_size=256, action_scaler=scaler)
    elif name == "iql":
        config = d3rlpy.algos.IQLConfig(action_scaler=scaler)
    elif name == "td3+bc":
        config = d3rlpy.algos.TD3PlusBCConfig(action_scaler=scaler)
    else:
        raise ValueError(f"unknown algorithm {name!r}; choose from {ALGOS}")
    return config.create(device=device)


def train(algo: Any, dataset: Any, seconds: float | None, gradient_steps: int | None) -> dict[str, Any]:
    """Train until the wall-time budget or the step count is spent (checked every 500 steps)."""
    import d3rlpy
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # quiet
    per_epoch = 500
    total = gradient_steps if gradient_steps is not None else 10**9
    start, steps, last = time.perf_counter(), 0, {}
    for _, metrics in algo.fitter(
        dataset,
        n_steps=total,
        n_steps_per_epoch=per_epoch,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
        show_progress=False,
        save_interval=10**9,
    ):
        steps, last = steps + per_epoch, metrics
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
    return {
        "train_seconds": time.perf_counter() - start,
        "gradient_steps": steps,
        "last_metrics": {k: float(v) for k, v in last.items()},
    }


def ldcq_train_seconds(task: str, maze: str, seed: int) -> float:
    path = quick_preset_folder(task) / f"{maze}-seed{seed}.json"
    if not path.exists():
        raise SystemExit(
            f"no LDCQ result at {path} to take the wall-time budget from: run "
            f"`python -m benchmarks.quick_preset --maze {maze} --task {task} --seeds {seed}` first, "
            "or give --seconds / --gradient-steps"
        )
    return float(json.loads(path.read_text())["train_s"])


def run(args: argparse.Namespace, algo_name: str, seed: int) -> dict[str, Any]:
    import d3rlpy

    from latent_skills.agents.spec import AgentSpec

    dataset_id, _ = pointmaze_dataset(args.maze, args.steps, args.task)
    minari_dataset = load_dataset(dataset_id)
    spec = AgentSpec.from_dataset(minari_dataset)
    data = transitions(EpisodeArrays.from_minari(minari_dataset))
    normalizer = StateNormalizer.from_data(torch.as_tensor(data["observations"]))
    with torch.no_grad():
        data["observations"] = normalizer(torch.as_tensor(data["observations"])).numpy()
    d3rlpy.seed(seed)
    dataset = d3rlpy.dataset.MDPDataset(**data)
    algo = make_algo(algo_name, spec, args.device)
    seconds = args.seconds
    if seconds is None and args.gradient_steps is None:
        seconds = ldcq_train_seconds(args.task, args.maze, seed)
    trained = train(algo, dataset, seconds, args.gradient_steps)
    t = time.perf_counter()
    evaluated = evaluate_policy_vec(
        PeerPolicy(algo, spec, normalizer),
        spec.make_env,
        n_episodes=args.episodes,
        n_envs=args.envs,
        seed=0,
        reference=spec.reference_scores,
    )
    return {
        "benchmark": "d3rlpy peers",
        "algo": algo_name,
        "d3rlpy_version": d3rlpy.__version__,
        "maze": args.maze,
        "task": args.task,
        "dataset_id": dataset_id,
        "dataset_steps": int(len(data["actions"])),
        "seed": seed,
        "budget_seconds": seconds,
        "eval_s": time.perf_counter() - t,
        "eval_episodes": args.episodes,
        **trained,
        "scores": scores(evaluated),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--maze", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--task", default="goal-conditioned", choices=["goal-conditioned", "single-goal"])
    parser.add_argument("--steps", type=int, default=100_000, help="dataset steps, if it must be made")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--seconds", type=float, default=None, help="wall-time budget per run")
    parser.add_argument("--gradient-steps", type=int, default=None)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--device", default="cpu:0")
    args = parser.parse_args()
    use_temporary_datasets_path()
    out = results_folder(args.task)
    for seed in args.seeds:
        for algo in args.algos:
            result = run(args, algo, seed)
            write_result(out / f"{args.maze}-{algo}-seed{seed}.json", result, dataset=result["dataset_id"])
            print(
                f"{args.maze} {args.task} seed {seed} {algo}: {result['scores']['normalized_score']:.1f} "
                f"(success {result['scores']['success_rate']}, {result['gradient_steps']} steps "
                f"in {result['train_seconds']:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
