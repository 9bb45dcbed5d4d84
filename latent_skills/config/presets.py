"""The presets every config has, and the paper's H per task.

``paper`` is each config's defaults (the papers' hyperparameters). ``quick`` is :data:`QUICK` where
the config has the field, then the config class's own ``quick_values``.
"""

from __future__ import annotations

from typing import Any

# "quick": a 2-core CPU trains a 100k-step PointMaze UMaze dataset end to end in ≤ 10 minutes
# (python -m benchmarks.quick_preset). Smaller networks, larger learning rates and batches, fewer steps,
# 16 bank candidates per next state; the paper's architecture shapes otherwise.
QUICK: dict[str, Any] = {
    "vae_hidden": 64,
    "vae_gru_layers": 1,
    "skills_lr": 1e-3,
    "skills_steps": 2000,
    "prior_lr": 1e-3,
    "prior_batch_size": 256,
    "prior_steps": 3000,
    "q_batch_size": 256,
    "q_steps": 5000,
    "q_candidates": 16,
    "q_widths": (128, 128, 32),
    # replan every 5 steps: a skill decoded from a stale state drifts (BENCHMARKS.md, "Settings
    # chosen by measurement")
    "exec_horizon": 5,
    # the image β-VAE (pixel datasets only): a few passes over small frames, not yet measured
    "image_steps": 1000,
    "image_lr": 1e-3,
    "image_batch_size": 64,
}


def quick_preset(config_class: type, **extra: Any) -> dict[str, Any]:
    """The quick preset's values for the fields ``config_class`` has, plus the variant's ``extra``."""
    names = set(config_class.field_names())  # type: ignore[attr-defined]
    return {**{k: v for k, v in QUICK.items() if k in names}, **extra}


def default_horizon(dataset_id: str | None) -> int:
    """The paper's H per task family: mazes 30, kitchen 20, everything else (locomotion) 10."""
    name = (dataset_id or "").lower()
    if "kitchen" in name:
        return 20
    if "maze" in name:
        return 30
    return 10


__all__ = ["QUICK", "default_horizon", "quick_preset"]
