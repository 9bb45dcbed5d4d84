"""Evaluate an SB3-style policy over a gymnasium vector env; normalise scores like D4RL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from latent_skills._progress import progress


class Predictor(Protocol):
    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]: ...


def normalized_score(
    mean_return: float, reference: Sequence[float] | None, env_id: str | None = None
) -> float | None:
    """100 · (R − ref_min) / (ref_max − ref_min); Kitchen (no reference scores) uses D4RL's R / 4 · 100."""
    if reference is not None:
        low, high = reference
        return 100.0 * (mean_return - low) / (high - low)
    if env_id is not None and env_id.startswith("FrankaKitchen"):
        return 100.0 * mean_return / 4.0
    return None


def _succeeded(info: dict[str, Any], index: int) -> bool | None:
    for key in ("success", "is_success"):
        if key in info and info.get(f"_{key}", np.ones(index + 1, bool))[index]:
            return bool(info[key][index])
    return None


def evaluate_policy_vec(
    policy: Predictor,
    make_env: Callable[[], gym.Env],
    n_episodes: int = 10,
    n_envs: int = 1,
    seed: int = 0,
    deterministic: bool = True,
    reference: Sequence[float] | None = None,
    progress_bar: bool = False,
) -> dict[str, Any]:
    """Run ``n_episodes`` episodes spread over ``n_envs`` envs (as SB3's ``evaluate_policy`` does, so
    short episodes do not crowd out long ones) and summarise them.

    ``success_rate`` counts an episode as a success if the env reported ``success``/``is_success`` on
    any of its steps; it is None where the env reports neither.
    """
    if n_episodes < 1 or n_envs < 1:
        raise ValueError(f"need n_episodes ≥ 1 and n_envs ≥ 1, got {n_episodes} and {n_envs}")
    n_envs = min(n_envs, n_episodes)
    envs = gym.vector.SyncVectorEnv(
        [make_env for _ in range(n_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    targets = np.array([(n_episodes + i) // n_envs for i in range(n_envs)])
    counts = np.zeros(n_envs, int)
    running = np.zeros(n_envs)
    lengths = np.zeros(n_envs, int)
    succeeded = np.zeros(n_envs, bool)
    saw_success_key = False
    returns: list[float] = []
    episode_lengths: list[int] = []
    successes: list[bool] = []
    obs, _ = envs.reset(seed=seed)
    state, episode_start = None, np.ones(n_envs, bool)
    bar = progress(total=n_episodes, desc="evaluate", unit="ep", disable=not progress_bar)
    try:
        while (counts < targets).any():
            actions, state = policy.predict(
                obs, state=state, episode_start=episode_start, deterministic=deterministic
            )
            obs, rewards, terminated, truncated, infos = envs.step(actions)
            running += rewards
            lengths += 1
            episode_start = terminated | truncated
            for i in range(n_envs):
                # with same-step autoreset an ended env's own info sits in final_info
                source = infos.get("final_info", {}) if episode_start[i] else infos
                flag = _succeeded(source, i)
                if flag is not None:
                    saw_success_key = True
                    succeeded[i] |= flag
            for i in map(int, np.flatnonzero(episode_start)):
                if counts[i] < targets[i]:
                    returns.append(float(running[i]))
                    episode_lengths.append(int(lengths[i]))
                    successes.append(bool(succeeded[i]))
                    counts[i] += 1
                    bar.update(1)
                running[i], lengths[i], succeeded[i] = 0.0, 0, False
    finally:
        bar.close()
        envs.close()
    mean_return = float(np.mean(returns))
    env_id = getattr(getattr(envs.envs[0], "spec", None), "id", None)
    return {
        "mean_return": mean_return,
        "std_return": float(np.std(returns)),
        "returns": returns,
        "episode_lengths": episode_lengths,
        "normalized_score": normalized_score(mean_return, reference, env_id),
        "success_rate": float(np.mean(successes)) if saw_success_key else None,
        "n_episodes": len(returns),
        "n_envs": n_envs,
        "seed": seed,
        "deterministic": deterministic,
    }
