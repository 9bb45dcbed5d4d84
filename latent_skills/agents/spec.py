"""What an agent knows about its data and env, apart from its config: saved with every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from gymnasium.envs.registration import EnvSpec

from latent_skills.config import default_horizon
from latent_skills.data import ObservationFlattener, reference_scores
from latent_skills.data.loading import dataset_eval_env_spec, usable_reference
from latent_skills.envs.robotics import register_robotics_envs
from latent_skills.envs.safe_make import (
    EnvRecord,
    UntrustedEnvSpecError,
    check_action_space,
    make_registered_env,
)
from latent_skills.nn.encoders import ENCODERS, FlatEncoder, ObservationEncoder, encoder_kinds, state_layout

__all__ = ["AgentSpec", "UntrustedEnvSpecError", "default_horizon", "register_robotics_envs"]

SOURCE = "this agent"


@dataclass(frozen=True)
class AgentSpec:
    flattener: ObservationFlattener
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    dataset_id: str | None = None
    # The evaluation env as JSON {"id", "kwargs", "max_episode_steps"} (older checkpoints: a whole
    # gymnasium EnvSpec). Built from the registered id only: see latent_skills.envs.safe_make.
    eval_env_spec: str | None = None
    reference_scores: tuple[float, float] | None = None
    # the encoder kind of each observation part (latent_skills.nn.encoders); None: every part "flat"
    encoders: tuple[str, ...] | None = None

    @property
    def state_dim(self) -> int:
        """The flat observation's size (the networks read the encoder's output: see :meth:`make_encoder`)."""
        return self.flattener.dim

    @property
    def encoder_kinds(self) -> tuple[str, ...]:
        return self.encoders or (FlatEncoder.kind,) * len(self.flattener.segments)

    @property
    def learned_encoder(self) -> bool:
        """Whether a part's encoder is learned (an image's): the agent's ``images`` stage trains it."""
        return any(ENCODERS[kind].learned for kind in self.encoder_kinds if kind in ENCODERS)

    @property
    def state_layout(self) -> ObservationFlattener:
        """Where each observation part sits in the *states* the networks read (the encoder's output):
        the flat layout where every part is flat; an image part is its features."""
        return state_layout(self.flattener.segments, self.encoder_kinds)

    def make_encoder(self) -> ObservationEncoder:
        """The observation encoder: each part of the flat observation through its kind's encoder."""
        return ObservationEncoder(self.flattener.segments, self.encoder_kinds)

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    @property
    def goal_keys(self) -> list[str]:
        """The keys of the observation's ``achieved_goal`` dict (Kitchen's tasks), in flat order."""
        segments = self.flattener.segments
        return [s.path[1] for s in segments if len(s.path) == 2 and s.path[0] == "achieved_goal"]

    @property
    def eval_env(self) -> EnvRecord | None:
        """The evaluation env as a record (id, JSON kwargs, time limit); parsing builds nothing."""
        return None if self.eval_env_spec is None else EnvRecord.from_stored(self.eval_env_spec, SOURCE)

    @property
    def env_id(self) -> str | None:
        record = self.eval_env
        return None if record is None else record.id

    def is_eval_env(self, spec: EnvSpec | None) -> bool:
        """Whether ``spec`` is the dataset's evaluation env (same id, kwargs and time limit), where
        its reference scores apply."""
        record = self.eval_env
        return record is not None and record.matches(spec)

    def make_env(self, **kwargs: Any) -> gym.Env:
        """The evaluation env, built from its registered id with the stored JSON kwargs and time
        limit (``kwargs``, e.g. ``max_episode_steps``, override them). Nothing the checkpoint names is
        imported or called: an id that is not registered here, or a stored spec naming other code
        than the registry, is an :class:`UntrustedEnvSpecError` saying how to fix it."""
        if self.eval_env_spec is None:
            raise ValueError("This agent has no evaluation env recorded: pass env= (a gym.Env or an env id).")
        env = make_registered_env(self.eval_env_spec, source=SOURCE, **kwargs)
        try:
            self.check_env(env, "the recorded evaluation env")
        except ValueError:
            env.close()
            raise
        return env

    def check_env(self, env: gym.Env, what: str = "the env") -> None:
        """ValueError naming both spaces unless ``env``'s action space is the dataset's (a Box of
        the same size and bounds): check before running episodes."""
        check_action_space(env.action_space, self.action_low, self.action_high, what)

    @classmethod
    def from_dataset(cls, dataset: minari.MinariDataset, env: gym.Env | str | None = None) -> AgentSpec:
        """The spec of an agent trained on ``dataset``. The evaluation env is ``env`` (an id or an
        env you built) or the dataset's own; only its id, JSON kwargs and time limit are recorded.

        A dataset is downloaded data: where its eval env names other code (entry point, wrappers)
        than the registered spec of its id, this is an :class:`UntrustedEnvSpecError` (pass
        ``env=``). A kwarg of ``env`` that is not JSON is a ValueError naming it, unless it is the
        registered default (see :meth:`EnvRecord.from_spec`).
        """
        kinds = encoder_kinds(dataset.observation_space)  # before flattening: what cannot be encoded
        space = dataset.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(
                f"Action space {space} is not a Box: latent skills decode continuous actions only."
            )
        if env is None:
            env_spec = dataset_eval_env_spec(dataset)
            trusted = False
        elif isinstance(env, str):
            register_robotics_envs()
            env_spec, trusted = gym.spec(env), True
        else:
            env_spec, trusted = env.spec, True
        source = f"dataset {dataset.spec.dataset_id!r}" if env is None else "env"
        record = None if env_spec is None else EnvRecord.from_spec(env_spec, trusted=trusted, source=source)
        return cls(
            flattener=ObservationFlattener.from_space(dataset.observation_space),
            action_low=tuple(float(v) for v in np.ravel(space.low)),
            action_high=tuple(float(v) for v in np.ravel(space.high)),
            dataset_id=dataset.spec.dataset_id,
            eval_env_spec=None if record is None else record.to_json(),
            reference_scores=reference_scores(dataset),
            encoders=None if set(kinds) <= {FlatEncoder.kind} else kinds,
        )

    def to_dict(self) -> dict[str, Any]:
        # "encoders" only where a part is not flat: the checkpoints of flat observations stay as they were
        encoders = {} if self.encoders is None else {"encoders": list(self.encoders)}
        return {
            "observation": self.flattener.to_dict(),
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
            "dataset_id": self.dataset_id,
            "eval_env_spec": None if self.eval_env is None else self.eval_env.to_dict(),
            "reference_scores": None if self.reference_scores is None else list(self.reference_scores),
            **encoders,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSpec:
        scores = data.get("reference_scores")
        if scores is not None and not (isinstance(scores, list) and len(scores) == 2):
            raise TypeError(f"reference_scores must be two numbers, got {scores!r}")
        stored = data.get("eval_env_spec")
        try:  # parsing only: the registry is consulted when the env is built
            record = None if stored is None else EnvRecord.from_stored(stored, "config.json")
        except UntrustedEnvSpecError as exc:
            raise TypeError(str(exc)) from exc
        return cls(
            flattener=ObservationFlattener.from_dict(data["observation"]),
            action_low=tuple(data["action_low"]),
            action_high=tuple(data["action_high"]),
            dataset_id=data.get("dataset_id"),
            eval_env_spec=None if record is None else record.to_json(),
            reference_scores=None
            if scores is None
            else usable_reference(scores[0], scores[1], "config.json"),
            encoders=None if data.get("encoders") is None else tuple(str(k) for k in data["encoders"]),
        )
