"""LatentSkillAgent: the shared stages (skills, prior), acting, evaluation and checkpoints.

A variant (LDCQ, ...) adds its modules in ``_build_modules``, its stages in ``_make_stage`` and how
it picks a latent in ``_choose_latents``; everything else is here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import minari
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import Logger, configure
from torch import nn
from tqdm.auto import tqdm

from latent_skills.config import AgentConfig, ConfigError
from latent_skills.data import EpisodeArrays, SkillWindows, load_dataset
from latent_skills.diffusion import DiffusionSchedule, diffusion_loss, sample
from latent_skills.diffusion.sampling import EnergyGuidance
from latent_skills.envs import evaluate_policy_vec
from latent_skills.hub.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from latent_skills.hub.checkpoint import split_state as _split_state
from latent_skills.nn import LatentDenoiser, SkillVAE, StateNormalizer

from .spec import AgentSpec, default_horizon, register_robotics_envs

SkillState = tuple[np.ndarray, np.ndarray]  # (latent per env (n, D), steps since replanning (n,))


class TrainingDivergedError(FloatingPointError):
    """A loss or gradient turned non-finite; the weights are those of the last good step."""


@dataclass
class Stage:
    """One training stage: what it trains and how to compute one step's loss."""

    name: str
    modules: list[nn.Module]
    optimizer: torch.optim.Optimizer
    loss: Callable[[int], tuple[torch.Tensor, dict[str, float]]]
    after_step: Callable[[int], None] | None = None


@dataclass
class TrainingData:
    """The dataset as the stages use it (kept in memory, never saved)."""

    windows: SkillWindows
    posterior: tuple[np.ndarray, np.ndarray] | None = None  # q(z|τ) mean, std per window
    extras: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LatentSkillAgent:
    """Skills (β-VAE) + latent diffusion prior; acts by sampling a latent and decoding it.

    Subclasses choose the latent differently (LDCQ: argmax of a Q-function over prior samples).
    """

    config_class: ClassVar[type[AgentConfig]] = AgentConfig
    _registry: ClassVar[dict[str, type[LatentSkillAgent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LatentSkillAgent._registry[cls.__name__] = cls

    def __init__(self, config: AgentConfig, spec: AgentSpec, device: str | torch.device = "auto") -> None:
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        config.validate()
        self.config, self.spec = config, spec
        self.device = resolve_device(device)
        self.num_timesteps = 0
        self.stages_completed: list[str] = []
        self.logger: Logger = configure(None, [])
        self._data: TrainingData | None = None
        self._progress = False  # whether the current learn() call shows progress bars
        # Seed only a fork of the global RNG: same seed, same weights, and the caller's RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self._build_modules()
        for module in self.modules().values():
            module.to(self.device).eval()
        self.schedule = DiffusionSchedule(config.diffusion_timesteps).to(self.device)
        self._act_generator = torch.Generator(self.device).manual_seed(config.seed)

    # ------------------------------------------------------------------ modules
    def _build_modules(self) -> None:
        c, s = self.config, self.spec
        self.vae = SkillVAE(
            s.state_dim,
            s.action_dim,
            c.horizon,
            latent_dim=c.latent_dim,
            hidden=c.vae_hidden,
            gru_layers=c.vae_gru_layers,
            action_low=list(s.action_low),
            action_high=list(s.action_high),
        )
        # The prior diffuses standardised latents: the schedule assumes unit-scale data.
        self.latent_norm = StateNormalizer(c.latent_dim)
        self.denoiser = LatentDenoiser(c.latent_dim, self._cond_dim(), widths=c.denoiser_widths)

    def _cond_dim(self) -> int:
        return self.spec.state_dim

    def modules(self) -> dict[str, nn.Module]:
        """Every module whose tensors go into ``model.safetensors``, by prefix."""
        return {"vae": self.vae, "latent_norm": self.latent_norm, "denoiser": self.denoiser}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataset(
        cls,
        dataset: str | minari.MinariDataset,
        *,
        env: gym.Env | str | None = None,
        horizon: int | None = None,
        seed: int = 0,
        device: str | torch.device = "auto",
        download: bool = False,
        preset: str = "paper",
        **config: Any,
    ) -> LatentSkillAgent:
        """An untrained agent for ``dataset`` (Minari id or object); ``**config`` overrides the preset."""
        dataset = load_dataset(dataset, download=download)
        register_robotics_envs()
        spec = AgentSpec.from_dataset(dataset, env)
        overrides = dict(config, seed=seed)
        if horizon is not None:
            overrides["horizon"] = horizon
        elif "horizon" not in config:
            overrides["horizon"] = default_horizon(dataset.spec.dataset_id)
        settings = cls.config_class.from_preset(preset, **overrides)
        agent = cls(settings, spec, device)
        agent._data = agent._training_data(dataset)
        agent._set_state_stats()
        return agent

    # Modules each shared stage trains: what reuse_stages copies.
    STAGE_MODULES: ClassVar[dict[str, tuple[str, ...]]] = {
        "skills": ("vae",),
        "prior": ("latent_norm", "denoiser"),
    }
    # What the prior conditions on: a prior is shared only between agents that agree.
    PRIOR_CONDITION: ClassVar[str] = "state"
    # Config fields that shape those modules: they must agree between source and target.
    STAGE_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "skills": ("horizon", "latent_dim", "vae_hidden", "vae_gru_layers", "gamma"),
        "prior": ("diffusion_timesteps", "denoiser_widths"),
    }

    def reuse_stages(
        self, source: LatentSkillAgent, stages: tuple[str, ...] | list[str] = ("skills",)
    ) -> LatentSkillAgent:
        """Copy the modules of ``source``'s trained ``stages`` (default: the skill VAE) into this
        agent, as the paper reuses one VAE for all its variants; those stages then need not rerun.

        Both agents must be built on the same dataset with the same module shapes.
        """
        if self.spec != source.spec:
            raise ValueError("reuse_stages needs agents built on the same dataset and env")
        for stage in stages:
            if stage not in self.STAGE_MODULES or stage not in source.config.STAGES:
                raise ValueError(
                    f"stage {stage!r} is not shared by {type(self).__name__} and {type(source).__name__}"
                )
            if stage == "prior" and self.PRIOR_CONDITION != source.PRIOR_CONDITION:
                raise ValueError(
                    f"stage 'prior': {type(source).__name__}'s prior conditions on {source.PRIOR_CONDITION}, "
                    f"{type(self).__name__}'s on {self.PRIOR_CONDITION}: reuse only 'skills' and train the prior"
                )
            if stage not in source.stages_completed:
                raise ValueError(f"{type(source).__name__} has not trained stage {stage!r}")
            differ = [
                f for f in self.STAGE_FIELDS[stage] if getattr(self.config, f) != getattr(source.config, f)
            ]
            if differ:
                raise ValueError(f"stage {stage!r}: the configs differ in {differ}")
            for name in self.STAGE_MODULES[stage]:
                ours, theirs = self.modules()[name], source.modules()[name]
                try:
                    ours.load_state_dict(theirs.state_dict())
                except RuntimeError as exc:
                    raise ValueError(f"stage {stage!r}: {name} does not fit this agent: {exc}") from exc
            if stage not in self.stages_completed:
                self.stages_completed.append(stage)
        if source._data is not None and "skills" in stages:
            # same windows, and the encoder is the same: its posterior cache is valid here too
            self._data = TrainingData(source._data.windows, posterior=source._data.posterior)
        return self

    def _set_state_stats(self) -> None:
        stats = self.data.windows.episodes.state_stats()
        for module in self.modules().values():
            for sub in module.modules():
                if isinstance(sub, StateNormalizer) and sub is not self.latent_norm:
                    sub.set_stats(stats.mean, stats.std)

    @property
    def data(self) -> TrainingData:
        """The training data, loaded from the local dataset by id after ``load``."""
        if self._data is None:
            if self.spec.dataset_id is None:
                raise ValueError(
                    "This agent has no dataset id recorded; build it with from_dataset to train."
                )
            self._data = self._training_data(load_dataset(self.spec.dataset_id))
        return self._data

    def _training_data(self, dataset: minari.MinariDataset) -> TrainingData:
        episodes = EpisodeArrays.from_minari(dataset)
        return TrainingData(SkillWindows.from_episodes(episodes, self.config.horizon, self.config.gamma))

    # ------------------------------------------------------------------ training
    def set_logger(self, logger: Logger) -> None:
        """Log through an SB3 logger (e.g. ``stable_baselines3.common.logger.configure(dir, ["csv"])``)."""
        self.logger = logger

    def learn(
        self,
        total_timesteps: int | None = None,
        *,
        callback: BaseCallback | Callable | list | None = None,
        progress_bar: bool = False,
        stages: list[str] | tuple[str, ...] | str | None = None,
        save_path: str | Path | None = None,
        log_interval: int = 500,
    ) -> LatentSkillAgent:
        """Train ``stages`` (default: all, in order) for ``total_timesteps`` gradient steps in all,
        split in the config's proportions (default: the config's step counts).

        With ``save_path`` the agent is saved after each stage. Ctrl-C saves a checkpoint (to
        ``save_path`` or ``./latent-skills-interrupted``) and says how to resume; a non-finite loss
        stops with :class:`TrainingDivergedError`, keeping the last good weights.
        """
        order = list(self.config.STAGES)
        stages = [stages] if isinstance(stages, str) else list(stages or order)
        unknown = [s for s in stages if s not in order]
        if unknown:
            raise ValueError(f"{type(self).__name__} has stages {order}; unknown: {unknown}")
        stages = [s for s in order if s in stages]
        steps = self._split_steps(total_timesteps, stages)
        cb = self._init_callback(callback)
        self._progress = progress_bar
        cb.on_training_start(locals(), globals())
        current = stages[0]
        try:
            for current in stages:
                self._run_stage(current, steps[current], cb, progress_bar, log_interval)
                if current not in self.stages_completed:
                    self.stages_completed.append(current)
                if save_path is not None:
                    self.save(save_path)
        except KeyboardInterrupt:
            target = Path(save_path or "latent-skills-interrupted")
            self.save(target)
            remaining = stages[stages.index(current) :]
            print(
                f"\nInterrupted during stage {current!r}: checkpoint saved to {target}. Resume with\n"
                f"  {type(self).__name__}.load({str(target)!r}).learn(stages={remaining})"
            )
            raise
        finally:
            self._train_mode(False)
        cb.on_training_end()
        return self

    def _split_steps(self, total: int | None, stages: list[str]) -> dict[str, int]:
        planned = self.config.stage_steps()
        if total is None:
            return {s: planned[s] for s in stages}
        weight = sum(planned[s] for s in stages)
        split = {s: int(total * planned[s] / weight) for s in stages}
        split[stages[-1]] += total - sum(split.values())
        return split

    def _init_callback(self, callback: Any) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        elif callback is None:
            callback = CallbackList([])
        elif not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        callback.init_callback(self)  # type: ignore[arg-type]  # SB3 callbacks read .logger/.num_timesteps
        return callback

    def _train_mode(self, on: bool) -> None:
        for module in self.modules().values():
            module.train(on)

    def _run_stage(
        self, name: str, n_steps: int, callback: BaseCallback, progress_bar: bool, log_interval: int
    ) -> None:
        if n_steps <= 0:
            return
        stage = self._make_stage(name)
        self._train_mode(False)
        for module in stage.modules:
            module.train(True)
        params = [p for group in stage.optimizer.param_groups for p in group["params"]]
        bar = tqdm(total=n_steps, desc=f"{type(self).__name__} {name}", unit="step", disable=not progress_bar)
        running: dict[str, float] = {}
        start = time.perf_counter()
        try:
            for step in range(n_steps):
                loss, logs = stage.loss(step)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"Stage {name!r}: the loss became {loss.item()} at step {step}; training stopped "
                        "with the weights of the last good step. Lower the stage's learning rate "
                        f"(e.g. --set {name}_lr=...) or check the dataset for outliers."
                    )
                stage.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(params, self.config.grad_clip)
                if not torch.isfinite(grad_norm):
                    raise TrainingDivergedError(
                        f"Stage {name!r}: gradients became non-finite at step {step}; training stopped "
                        "with the weights of the last good step. Lower the learning rate."
                    )
                stage.optimizer.step()
                if stage.after_step is not None:
                    stage.after_step(step)
                self.num_timesteps += 1
                for key, value in logs.items():
                    running[key] = running.get(key, 0.0) + value
                if (step + 1) % log_interval == 0 or step + 1 == n_steps:
                    count = (step % log_interval) + 1
                    for key, value in running.items():
                        self.logger.record(f"{name}/{key}", value / count)
                    self.logger.record("time/steps_per_s", (step + 1) / (time.perf_counter() - start))
                    self.logger.record("time/total_timesteps", self.num_timesteps)  # SB3's key: curves' x
                    self.logger.dump(self.num_timesteps)
                    bar.set_postfix({k: f"{v / count:.4g}" for k, v in running.items()})
                    running.clear()
                bar.update(1)
                callback.update_locals(locals())
                if not callback.on_step():
                    break
        finally:
            bar.close()
            self._train_mode(False)

    def _stage_generators(self, name: str) -> tuple[np.random.Generator, torch.Generator]:
        index = list(self.config.STAGES).index(name)
        return (
            np.random.default_rng([self.config.seed, index]),
            torch.Generator(self.device).manual_seed(self.config.seed * 1000 + index),
        )

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _make_stage(self, name: str) -> Stage:
        if name == "skills":
            return self._skills_stage()
        if name == "prior":
            return self._prior_stage()
        raise ValueError(f"{type(self).__name__} has no stage {name!r}")

    def _skills_stage(self) -> Stage:
        c, w = self.config, self.data.windows
        rng, gen = self._stage_generators("skills")
        self.data.posterior = None  # the encoder changes: cached posteriors are stale

        def loss(_: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = rng.integers(0, len(w), c.skills_batch_size)
            out = self.vae.loss(
                self._tensor(w.states[idx]),
                self._tensor(w.actions[idx]),
                self._tensor(w.mask[idx]),
                beta=c.vae_beta,
                generator=gen,
            )
            return out["loss"], {"loss": out["loss"].item(), "nll": out["nll"].item(), "kl": out["kl"].item()}

        optimizer = torch.optim.Adam(self.vae.parameters(), lr=c.skills_lr)
        return Stage("skills", [self.vae], optimizer, loss)

    @torch.no_grad()
    def posterior(self, batch_size: int = 4096, progress_bar: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """q(z|τ) mean and std of every training window (computed once per trained encoder)."""
        if self.data.posterior is None:
            w = self.data.windows
            mean = np.empty((len(w), self.config.latent_dim), np.float32)
            std = np.empty_like(mean)
            self.vae.eval()
            for lo in tqdm(range(0, len(w), batch_size), desc="encode windows", disable=not progress_bar):
                idx = np.arange(lo, min(lo + batch_size, len(w)))
                m, s = self.vae.encode(
                    self._tensor(w.states[idx]), self._tensor(w.actions[idx]), self._tensor(w.mask[idx])
                )
                mean[idx], std[idx] = m.cpu().numpy(), s.cpu().numpy()
            self.data.posterior = (mean, std)
        return self.data.posterior

    def _prior_stage(self) -> Stage:
        c, w = self.config, self.data.windows
        rng, gen = self._stage_generators("prior")
        mean, std = self.posterior(progress_bar=self._progress)
        # standardise z ~ q: its mean and total spread (spread of means + posterior noise)
        spread = np.sqrt(mean.var(0) + np.square(std).mean(0))
        self.latent_norm.set_stats(mean.mean(0), spread)
        first = w.first_states

        def loss(_: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = rng.integers(0, len(w), c.prior_batch_size)
            eps = torch.randn((len(idx), c.latent_dim), generator=gen, device=self.device)
            z = self._tensor(mean[idx]) + self._tensor(std[idx]) * eps
            cond = self._prior_condition(first[idx], idx)
            value = diffusion_loss(
                self.denoiser,
                self.latent_norm(z),
                cond,
                self.schedule,
                snr_clip=c.prior_snr_clip,
                cond_drop=c.prior_cond_drop,
                generator=gen,
            )
            return value, {"loss": value.item()}

        optimizer = torch.optim.Adam(self.denoiser.parameters(), lr=c.prior_lr)
        return Stage("prior", [self.denoiser], optimizer, loss)

    def _prior_condition(
        self, states: np.ndarray | torch.Tensor, window_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """What the prior conditions on: the normalised state (LDGC adds a goal)."""
        return self.vae.normalizer(
            self._tensor(np.asarray(states, np.float32)) if isinstance(states, np.ndarray) else states
        )

    # ------------------------------------------------------------------ sampling and acting
    def set_acting(self, **changes: Any) -> LatentSkillAgent:
        """Change how the trained agent acts (sampler, its steps, guidance, candidates, exec_horizon)."""
        acting = self.config.ACTING
        not_acting = sorted(set(changes) - set(acting))
        if not_acting:
            raise ConfigError(
                f"{not_acting} change what the agent learned; after training only {list(acting)} can change"
            )
        self.config = self.config.replace(**changes)
        return self

    @torch.no_grad()
    def _sample_prior(
        self,
        cond: torch.Tensor,
        n: int,
        *,
        solver: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        generator: torch.Generator | None = None,
        shared_noise: bool = False,
        energy_guidance: EnergyGuidance | None = None,
    ) -> torch.Tensor:
        """``n`` latents per conditioning row from the diffusion prior, ``(B, n, D)``, unstandardised
        (tilted by ``energy_guidance``'s score correction where given: LatentDiffuser)."""
        c = self.config
        solver = solver or c.sampler
        z = sample(
            self.denoiser,
            self.schedule,
            cond,
            n,
            solver=solver,
            steps=None if solver == "ddpm" else (steps or c.sampler_steps),
            guidance=c.guidance if guidance is None else guidance,
            extra_steps=c.ddpm_extra_steps if solver == "ddpm" else 0,
            generator=generator if generator is not None else self._act_generator,
            shared_noise=shared_noise,
            energy_guidance=energy_guidance,
        )
        return self.latent_norm.inverse(z)

    def _flat_states(self, observation: Any) -> tuple[np.ndarray, bool]:
        flat = self.spec.flattener.flatten(observation)
        return np.atleast_2d(flat), flat.ndim == 1

    def sample_latents(
        self,
        observation: Any,
        n: int,
        *,
        solver: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """``n`` latents from the state-conditioned prior: ``(n, D)`` for one observation, ``(B, n, D)`` for a batch."""
        states, single = self._flat_states(observation)
        gen = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        cond = self._prior_condition(states)
        z = (
            self._sample_prior(cond, n, solver=solver, steps=steps, guidance=guidance, generator=gen)
            .cpu()
            .numpy()
        )
        return z[0] if single else z

    @torch.no_grad()
    def _choose_latents(
        self, states: torch.Tensor, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        """One latent per state; the base agent samples the prior (diffusion behaviour cloning)."""
        cond = self._prior_condition(states)
        return self._sample_prior(cond, 1, generator=generator, shared_noise=shared_noise)[:, 0]

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
        states, single = self._flat_states(observation)
        n, every = len(states), self.config.replan_every
        if state is None:
            z = np.zeros((n, self.config.latent_dim), np.float32)
            since = np.full(n, every, np.int64)
        else:
            z, since = np.array(state[0], np.float32, copy=True), np.array(state[1], np.int64, copy=True)
            if z.shape != (n, self.config.latent_dim) or since.shape != (n,):
                raise ValueError(
                    f"state holds {len(z)} envs' skills but the observation has {n}; pass state=None to start over"
                )
        if episode_start is not None:
            since[np.asarray(episode_start, bool).reshape(n)] = every
        s = self._tensor(states)
        replan = since >= every
        if replan.any():
            gen = (
                torch.Generator(self.device).manual_seed(self.config.seed)
                if deterministic
                else self._act_generator
            )
            rows = self._tensor(np.flatnonzero(replan))
            z[replan] = self._choose_latents(s[rows], gen, shared_noise=deterministic).cpu().numpy()
            since[replan] = 0
        gen = None if deterministic else self._act_generator
        actions = self.vae.act(s, self._tensor(z), deterministic=deterministic, generator=gen).cpu().numpy()
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
    ) -> dict[str, Any]:
        """Mean/std return, returns, normalised score (dataset reference scores) and success rate."""
        if env is None:
            make_env, same_env = self.spec.make_env, True
        elif isinstance(env, str):
            register_robotics_envs()

            def make_env() -> gym.Env:
                return gym.make(env)

            same_env = self.spec.is_eval_env(gym.spec(env))
        else:
            if n_envs != 1:
                raise ValueError(
                    "Pass an env id (or None) to evaluate on several envs at once; a gym.Env instance is one env"
                )

            def make_env() -> gym.Env:
                return env

            same_env = self.spec.is_eval_env(env.spec)
        result = evaluate_policy_vec(
            self,
            make_env,
            n_episodes=n_episodes,
            n_envs=n_envs,
            seed=seed,
            deterministic=deterministic,
            reference=self.spec.reference_scores if same_env else None,
            progress_bar=progress_bar,
        )
        result.update(
            sampler=self.config.sampler,
            sampler_steps=self.config.sampler_steps,
            exec_horizon=self.config.replan_every,
        )
        return result

    # ------------------------------------------------------------------ checkpoints and the Hub
    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload this agent (weights, config, model card, optional evaluation) to the Hugging Face
        Hub in one commit; see :func:`latent_skills.hub.push_to_hub`."""
        from latent_skills.hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | Path, **kwargs: Any) -> LatentSkillAgent:
        """Load from a Hub repo id (cached, works offline once downloaded) or a local folder."""
        from latent_skills.hub import from_pretrained

        return from_pretrained(cls, str(repo_id_or_path), **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into folder ``path``."""
        tensors = {
            f"{prefix}.{name}": value
            for prefix, module in self.modules().items()
            for name, value in module.state_dict().items()
        }
        meta = {
            "agent_type": type(self).__name__,
            "library_version": _library_version(),
            "config": self.config.to_dict(),
            "spec": self.spec.to_dict(),
            "stages_completed": list(self.stages_completed),
            "num_timesteps": self.num_timesteps,
        }
        return write_checkpoint(path, meta, tensors)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> LatentSkillAgent:
        """Load a checkpoint folder strictly; ``LatentSkillAgent.load`` picks the right class."""
        meta, tensors = read_checkpoint(path)
        kind = meta["agent_type"]
        if kind not in cls._registry:
            raise CheckpointError(
                f"{path} holds an agent of unknown type {kind!r} (known: {sorted(cls._registry)})"
            )
        target = cls._registry[kind]
        if cls is not LatentSkillAgent and target is not cls:
            raise CheckpointError(
                f"{path} holds a {kind} agent, not a {cls.__name__}: load it with {kind}.load(...) "
                "or latent_skills.load_agent(...)"
            )
        try:
            config = target.config_class.from_dict(meta["config"])
            spec = AgentSpec.from_dict(meta["spec"])
        except (ConfigError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}/config.json does not describe a valid {kind}: {exc}") from exc
        agent = target(config, spec, device)
        modules = agent.modules()
        stray = sorted({name.split(".", 1)[0] for name in tensors} - set(modules))
        if stray:
            raise CheckpointError(f"{path}/model.safetensors has tensors for unknown modules {stray}")
        for prefix, module in modules.items():
            try:
                module.load_state_dict(_split_state(tensors, prefix), strict=True)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{path}/model.safetensors does not fit this {kind} ({prefix}): {exc}"
                ) from exc
        agent.stages_completed = list(meta.get("stages_completed", []))
        agent.num_timesteps = int(meta.get("num_timesteps", 0))
        return agent


def _library_version() -> str:
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("latent-skills")
    return "unknown"
