"""What an agent knows about its data and env, apart from its config: saved with every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from gymnasium.envs.registration import EnvSpec

from latent_skills.data import ObservationFlattener, reference_scores


def register_robotics_envs() -> None:
    """Gymnasium-Robotics envs (PointMaze, AntMaze, FrankaKitchen) must be registered before use."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


@dataclass(frozen=True)
class AgentSpec:
    flattener: ObservationFlattener
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    dataset_id: str | None = None
    eval_env_spec: str | None = None  # gymnasium EnvSpec JSON
    reference_scores: tuple[float, float] | None = None

    @property
    def state_dim(self) -> int:
        return self.flattener.dim

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    @property
    def env_id(self) -> str | None:
        return None if self.eval_env_spec is None else EnvSpec.from_json(self.eval_env_spec).id

    def is_eval_env(self, spec: EnvSpec | None) -> bool:
        """Whether ``spec`` is the dataset's evaluation env (same id, kwargs and time limit), where
        its reference scores apply."""
        if spec is None or self.eval_env_spec is None:
            return False
        ours = EnvSpec.from_json(self.eval_env_spec)
        return (spec.id, spec.kwargs, spec.max_episode_steps) == (
            ours.id,
            ours.kwargs,
            ours.max_episode_steps,
        )

    def make_env(self, **kwargs: Any) -> gym.Env:
        if self.eval_env_spec is None:
            raise ValueError("This agent has no evaluation env recorded: pass env= (a gym.Env or an env id).")
        register_robotics_envs()
        return gym.make(EnvSpec.from_json(self.eval_env_spec), **kwargs)

    @classmethod
    def from_dataset(cls, dataset: minari.MinariDataset, env: gym.Env | str | None = None) -> AgentSpec:
        space = dataset.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(
                f"Action space {space} is not a Box: latent skills decode continuous actions only."
            )
        if env is None:
            env_spec = getattr(dataset, "_eval_env_spec", None) or dataset.env_spec
        elif isinstance(env, str):
            register_robotics_envs()
            env_spec = gym.spec(env)
        else:
            env_spec = env.spec
        return cls(
            flattener=ObservationFlattener.from_space(dataset.observation_space),
            action_low=tuple(float(v) for v in np.ravel(space.low)),
            action_high=tuple(float(v) for v in np.ravel(space.high)),
            dataset_id=dataset.spec.dataset_id,
            eval_env_spec=None if env_spec is None else env_spec.to_json(),
            reference_scores=reference_scores(dataset),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "observation": self.flattener.to_dict(),
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
            "dataset_id": self.dataset_id,
            "eval_env_spec": self.eval_env_spec,
            "reference_scores": None if self.reference_scores is None else list(self.reference_scores),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSpec:
        scores = data.get("reference_scores")
        return cls(
            flattener=ObservationFlattener.from_dict(data["observation"]),
            action_low=tuple(data["action_low"]),
            action_high=tuple(data["action_high"]),
            dataset_id=data.get("dataset_id"),
            eval_env_spec=data.get("eval_env_spec"),
            reference_scores=None if scores is None else (float(scores[0]), float(scores[1])),
        )


def default_horizon(dataset_id: str | None) -> int:
    """The paper's H per task family: mazes 30, kitchen 20, everything else (locomotion) 10."""
    name = (dataset_id or "").lower()
    if "kitchen" in name:
        return 20
    if "maze" in name:
        return 30
    return 10
