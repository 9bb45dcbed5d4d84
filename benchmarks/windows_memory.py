"""Peak memory of SkillWindows over a 1M-step dataset with 31-dim states at H = 30.

The dense float64 (N, H, S) array would be 1M × 30 × 31 × 8 B = 7.4 GB; the windows must stay under
2 GB at peak because they index into one float32 copy of the episodes. Each measurement runs in a
fresh process so that writing the dataset is not counted.

    python -m benchmarks.windows_memory            # writes benchmarks/results/windows_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.record import REPO, RESULTS, dataset_info, write_result

STEPS, EPISODE_LENGTH, STATE_DIM, ACTION_DIM, HORIZON = 1_000_000, 1_000, 31, 8, 30
DATASET_ID = "bench/box/million-v0"


def write_dataset() -> None:
    import gymnasium as gym
    import minari
    import numpy as np
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    buffers = []
    for e in range(STEPS // EPISODE_LENGTH):
        ends = np.zeros(EPISODE_LENGTH, bool)
        ends[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=rng.normal(size=(EPISODE_LENGTH + 1, STATE_DIM)),
                actions=rng.uniform(-1, 1, (EPISODE_LENGTH, ACTION_DIM)).astype(np.float32),
                rewards=rng.normal(size=EPISODE_LENGTH),
                terminations=np.zeros(EPISODE_LENGTH, bool),
                truncations=ends,
            )
        )
    minari.create_dataset_from_buffers(
        DATASET_ID,
        buffers,
        observation_space=gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float64),
        action_space=gym.spaces.Box(-1, 1, (ACTION_DIM,), np.float32),
    )


def measure() -> None:
    import resource

    import numpy as np

    from latent_skills.data import SkillWindows, load_dataset

    start = time.perf_counter()
    dataset = load_dataset(DATASET_ID)
    windows = SkillWindows.from_minari(dataset, horizon=HORIZON, gamma=0.995)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(100):
        idx = rng.integers(0, len(windows), 128)
        windows.states[idx], windows.actions[idx], windows.next_states[idx]
    batch_ms = (time.perf_counter() - start) * 10
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "windows": len(windows),
                "build_s": build_s,
                "batch_ms": batch_ms,
                "peak_rss_mb": peak_mb,
                "dataset": dataset_info(dataset),
            }
        )
    )


def main() -> None:
    module = [sys.executable, "-m", "benchmarks.windows_memory"]
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "MINARI_DATASETS_PATH": root}
        subprocess.run([*module, "--step", "write"], env=env, cwd=REPO, check=True)
        out = subprocess.run(
            [*module, "--step", "measure"], env=env, cwd=REPO, check=True, capture_output=True, text=True
        )
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    dataset = measured.pop("dataset")
    result = {
        "benchmark": "SkillWindows peak memory",
        "steps": STEPS,
        "state_dim": STATE_DIM,
        "horizon": HORIZON,
        "dense_float64_gb": STEPS * HORIZON * STATE_DIM * 8 / 1e9,
        "limit_mb": 2048,
        **measured,
    }
    write_result(RESULTS / "windows_memory.json", result, dataset=dataset)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.windows_memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # the two steps main() runs, each in a fresh process
    parser.add_argument("--step", choices=["write", "measure"], help=argparse.SUPPRESS)
    step = parser.parse_args().step
    {"write": write_dataset, "measure": measure, None: main}[step]()
