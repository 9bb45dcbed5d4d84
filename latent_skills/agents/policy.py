"""What acts: the skill decoder, a prior that proposes latents and a selector that picks one.

``SkillPolicy`` holds only what acting needs (as SB3 keeps its policy apart from its algorithm): the
skill VAE (its decoder π(a | s, z)), the prior, the selector, the acting settings and the acting
generator. The agent trains the modules; the policy reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from latent_skills.config import AgentConfig
from latent_skills.envs import evaluate_policy_vec
from latent_skills.envs.protocols import AUTO, DATASET, EvaluationProtocol, choose_protocol
from latent_skills.nn.encoders import ObservationEncoder

from .priors import LatentPrior
from .selectors import LatentSelector
from .spec import AgentSpec, register_robotics_envs

SkillState = tuple[np.ndarray, np.ndarray]  # (latent per env (n, D), steps since replanning (n,))


class SkillPolicy:
    """``predict`` (SB3's contract), ``sample_latents`` and ``evaluate`` over observation encoder →
    prior → selector → decoder."""

    def __init__(
        self,
        vae: Any,
        prior: LatentPrior,
        selector: LatentSelector,
        config: AgentConfig,
        spec: AgentSpec,
        device: torch.device,
        generator: torch.Generator,
        encoder: ObservationEncoder,
    ) -> None:
        self.vae, self.prior, self.selector = vae, prior, selector
        self.config, self.spec, self.device = config, spec, device
        self.generator = generator  # the acting RNG: predict(deterministic=False), sample_latents()
        self.encoder = encoder  # observations -> the states the networks read

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def encode(self, flat: np.ndarray) -> torch.Tensor:
        """Flat observations ``(B, S)`` as the states the networks read, on the device."""
        return self.encoder(self.tensor(np.asarray(flat, np.float32)))

    def states(self, observation: Any) -> tuple[torch.Tensor, bool]:
        """The encoded states ``(B, F)`` of ``observation`` (one or a batch) and whether it was one."""
        flat, single = self.flat_states(observation)
        return self.encode(flat), single

    def flat_states(self, observation: Any) -> tuple[np.ndarray, bool]:
        """Flat states ``(B, S)`` and whether ``observation`` was a single one; non-finite values are
        an error (the agent would act on garbage)."""
        flat = self.spec.flattener.flatten(observation)
        if not np.isfinite(flat).all():
            rows = np.flatnonzero(~np.isfinite(np.atleast_2d(flat)).all(1))
            raise ValueError(
                f"The observation holds NaN or inf (batch rows {rows.tolist()}): the agent would act on "
                "garbage. Check the env, or reset the envs whose state blew up."
            )
        return np.atleast_2d(flat), flat.ndim == 1

    def seeded(self, seed: int | None) -> torch.Generator:
        """A generator seeded with ``seed``; the acting generator when it is None."""
        return self.generator if seed is None else torch.Generator(self.device).manual_seed(seed)

    @torch.no_grad()
    def sample_latents(
        self, observation: Any, n: int, *, seed: int | None = None, **sampler: Any
    ) -> np.ndarray:
        """``n`` latents from the prior: ``(n, D)`` for one observation, ``(B, n, D)`` for a batch;
        ``sampler`` passes the prior's own settings (solver, steps, guidance, ...)."""
        states, single = self.states(observation)
        z = self.prior.with_sampler(**sampler).sample(states, n, generator=self.seeded(seed))
        latents = z.cpu().numpy()
        return latents[0] if single else latents

    @torch.no_grad()
    def predict(
        self,
        observation: Any,
        state: SkillState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, SkillState]:
        """SB3's contract. ``state`` = (current latent per env, steps since it was chosen); a new
        latent is chosen every ``exec_horizon`` steps and wherever ``episode_start`` is true.

        ``deterministic=True`` makes the policy a function of the observation: every choice draws
        the same candidate noise (seeded from the config's seed, the same for every env of a batch)
        and the decoder returns its means.
        """
        s, single = self.states(observation)
        n, every, dim = len(s), self.config.replan_every, self.config.latent_dim
        if state is None:
            z = np.zeros((n, dim), np.float32)
            since = np.full(n, every, np.int64)
        else:
            z, since = np.array(state[0], np.float32, copy=True), np.array(state[1], np.int64, copy=True)
            if z.shape != (n, dim) or since.shape != (n,):
                raise ValueError(
                    f"state holds {len(z)} envs' skills but the observation has {n}; pass state=None to start over"
                )
        if episode_start is not None:
            since[np.asarray(episode_start, bool).reshape(n)] = every
        replan = since >= every
        if replan.any():
            gen = self.seeded(self.config.seed) if deterministic else self.generator
            rows = self.tensor(np.flatnonzero(replan))
            z[replan] = self.selector.select(s[rows], self.prior, gen, deterministic).cpu().numpy()
            since[replan] = 0
        noise = None if deterministic else self.generator
        actions = self.vae.act(s, self.tensor(z), deterministic=deterministic, generator=noise).cpu().numpy()
        if not np.isfinite(actions).all():  # finite but huge observations overflow the networks
            bad = np.flatnonzero(~np.isfinite(actions).all(1)).tolist()
            raise ValueError(
                f"The networks overflowed on the observation (batch rows {bad}): its values are far outside "
                "the data the agent was trained on. Check the env and its units, or reset those envs."
            )
        since += 1
        return (actions[0] if single else actions), (z, since)

    def evaluate(
        self,
        env: gym.Env | str | None = None,
        n_episodes: int = 10,
        n_envs: int = 1,
        seed: int = 0,
        deterministic: bool = True,
        progress_bar: bool = False,
        protocol: str | None = None,
    ) -> dict[str, Any]:
        """Mean/std return, returns, normalised score, success rate and the ``protocol`` they follow.

        ``protocol`` (see :mod:`latent_skills.envs.protocols`): ``"d4rl"`` builds D4RL's evaluation
        env for the dataset's family and scores as D4RL did; ``"dataset"`` runs the dataset's stored
        evaluation env as it is; None (or ``"auto"``) is ``"d4rl"`` where it applies, else
        ``"dataset"``. An ``env`` you pass is evaluated as it is (protocol ``"dataset"``; its score is
        normalised only where it is the dataset's evaluation env).

        The same ``seed`` gives the same result, stochastic (``deterministic=False``) too: the episodes
        draw from a generator seeded with it, not from the acting generator earlier calls advanced."""
        make_env: Callable[[], gym.Env]
        chosen: EvaluationProtocol | None = None
        if env is None:
            chosen = choose_protocol(
                protocol,
                self.spec.eval_env,
                goal_keys=self.spec.goal_keys,
                reference=self.spec.reference_scores,
                dataset_id=self.spec.dataset_id,
            )
            protocol_env = chosen

            def make_env() -> gym.Env:
                built = protocol_env.make_env()
                try:
                    self.spec.check_env(built, f"the {protocol_env.name} protocol's evaluation env")
                except ValueError:
                    built.close()
                    raise
                return built

            reference = chosen.reference
        else:
            if protocol not in (None, AUTO, DATASET):
                raise ValueError(
                    f"protocol {protocol!r} builds its own evaluation env: pass env=None, or evaluate "
                    "your env with protocol=None or 'dataset'"
                )
            make_env, same_env = self._given_env(env, n_envs)
            reference = self.spec.reference_scores if same_env else None
        episodes_policy = SkillPolicy(
            self.vae,
            self.prior,
            self.selector,
            self.config,
            self.spec,
            self.device,
            torch.Generator(self.device).manual_seed(seed),
            self.encoder,
        )
        result = evaluate_policy_vec(
            episodes_policy,
            make_env,
            n_episodes=n_episodes,
            n_envs=n_envs,
            seed=seed,
            deterministic=deterministic,
            reference=reference,
            progress_bar=progress_bar,
        )
        result = chosen.score(result) if chosen is not None else {**result, "protocol": DATASET}
        result.update(**self.prior.sampler_record(), exec_horizon=self.config.replan_every)
        return result

    def _given_env(self, env: gym.Env | str, n_envs: int) -> tuple[Callable[[], gym.Env], bool]:
        """A maker for the caller's env (an id or an instance) and whether it is the dataset's eval env."""
        if isinstance(env, str):
            register_robotics_envs()
            env_id = env

            def make_id() -> gym.Env:
                built = gym.make(env_id)
                self.spec.check_env(built, f"env {env_id!r}")
                return built

            return make_id, self.spec.is_eval_env(gym.spec(env))
        if n_envs != 1:
            raise ValueError(
                "Pass an env id (or None) to evaluate on several envs at once; a gym.Env instance is one env"
            )
        self.spec.check_env(env)
        instance = env

        def make_instance() -> gym.Env:
            return instance

        return make_instance, self.spec.is_eval_env(env.spec)
