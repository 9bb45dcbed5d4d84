"""Fingerprints of every agent's trained weights and actions: the check that a reshape changed nothing.

Trains each of the library's agents twice from a fixed seed — the tests' tiny settings and the quick
preset at a tenth of its steps — on a small PointMaze UMaze dataset made for it (20k steps, seed 0; made
once under ``MINARI_DATASETS_PATH``), then records a SHA-256 of
every weight tensor and of the actions ``predict`` gives on 32 fixed observations. Run it before and
after a change that should not move a number, and compare::

    python -m benchmarks.fingerprint --out before.json          # on the old commit
    python -m benchmarks.fingerprint --out after.json --compare before.json

``--compare`` exits 1 and names what differs. Single-threaded torch, so the numbers do not depend on
the machine's core count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.record import use_temporary_datasets_path

TINY: dict[str, Any] = {
    "horizon": 5,
    "latent_dim": 4,
    "vae_hidden": 16,
    "vae_gru_layers": 1,
    "skills_batch_size": 32,
    "skills_steps": 30,
    "diffusion_timesteps": 20,
    "denoiser_widths": (16, 8, 16),
    "prior_batch_size": 64,
    "prior_steps": 30,
    "sampler_steps": 4,
    "q_batch_size": 32,
    "q_steps": 30,
    "q_widths": (32, 32),
    "q_candidates": 4,
    "act_candidates": 8,
}
STEP_FIELDS = ("skills_steps", "prior_steps", "q_steps", "distill_steps")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def fingerprint(agent: Any, observations: np.ndarray) -> dict[str, str]:
    """SHA-256 prefixes of each weight tensor (by module and name) and of the deterministic and
    stochastic actions on ``observations``."""
    prints: dict[str, str] = {}
    for module_name, module in sorted(agent.modules().items()):
        for name, tensor in sorted(module.state_dict().items()):
            prints[f"{module_name}.{name}"] = _digest(tensor.detach().cpu().numpy())
    for deterministic in (True, False):
        torch.manual_seed(0)
        actions, _ = agent.predict(observations, deterministic=deterministic)
        prints[f"actions.deterministic={deterministic}"] = _digest(np.asarray(actions))
    return prints


def quick_tenth(config_class: Any) -> dict[str, Any]:
    """The quick preset's step counts divided by ten (at least one step for stages it runs)."""
    quick = config_class.from_preset("quick")
    return {
        field: max(1, getattr(quick, field) // 10)
        for field in STEP_FIELDS
        if hasattr(quick, field) and getattr(quick, field) > 0
    }


DATASET_ID = "latent-skills/fingerprint/umaze-20k-v0"


def small_umaze() -> str:
    """The id of the fingerprints' own dataset, made if it is not local."""
    from latent_skills.data.loading import is_local
    from latent_skills.data.makers import collect_pointmaze

    if not is_local(DATASET_ID):
        collect_pointmaze("umaze", steps=20_000, seed=0, dataset_id=DATASET_ID, progress=False)
    return DATASET_ID


def run(dataset_id: str) -> dict[str, dict[str, str]]:
    from latent_skills.agents.registry import agent_class, agent_names
    from latent_skills.data.loading import load_dataset

    dataset = load_dataset(dataset_id)
    episode = next(iter(dataset.iterate_episodes()))
    observations = episode.observations
    rows = (
        {k: np.asarray(v[:32]) for k, v in observations.items()} if isinstance(observations, dict) else None
    )
    results: dict[str, dict[str, str]] = {}
    for name in agent_names():
        cls = agent_class(name)
        for setting, preset, overrides in (
            ("tiny", "quick", TINY),
            ("quick/10", "quick", quick_tenth(cls.config_class)),
        ):
            known = {k: v for k, v in overrides.items() if k in cls.config_class.__dataclass_fields__}
            agent = cls.from_dataset(dataset_id, preset=preset, seed=0, device="cpu", **known)
            agent.progress = False
            agent.learn()
            observed = rows if rows is not None else np.asarray(observations[:32])
            results[f"{name}/{setting}"] = fingerprint(agent, observed)
            print(f"{name}/{setting}: {len(results[f'{name}/{setting}'])} prints", flush=True)
    return results


def compare(now: dict[str, dict[str, str]], before: dict[str, dict[str, str]]) -> list[str]:
    """What differs between two fingerprint files, one line per agent setting and key."""
    differences = []
    for run_name in sorted(set(now) | set(before)):
        a, b = now.get(run_name, {}), before.get(run_name, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                differences.append(f"{run_name} {key}: {b.get(key)} -> {a.get(key)}")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the fingerprints (JSON)")
    parser.add_argument("--compare", type=Path, help="a fingerprint file to compare with")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    use_temporary_datasets_path()
    dataset_id = small_umaze()
    now = run(dataset_id)
    args.out.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    if args.compare is None:
        return 0
    differences = compare(now, json.loads(args.compare.read_text()))
    for line in differences:
        print(line)
    print("identical" if not differences else f"{len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
