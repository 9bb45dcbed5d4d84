"""LatentSkillAgent: an agent is a composition of the skill VAE, a prior that proposes latent skills,
a selector that picks one, and the stages that train them.

    class LDCQ(LatentSkillAgent):
        config_class = LDCQConfig
        stages = (SkillsStage, PriorStage, QStage)
        prior = DiffusionPrior
        selector = QArgmax

Every agent's first stage is :class:`~.stages.ImagesStage` (added here; it trains the image encoder
where the observation has an image, and is skipped otherwise). The stages build the modules (in
their order, from the config's seed) for states of the observation encoder's output size, and train
them, each from a :class:`~.stages.StageContext` this class builds;
the prior and the selector read the modules when acting, through :class:`SkillPolicy`, which passes
observations through the encoder first. This class holds what is common: construction from a
dataset, the training data, ``learn``, ``save``/``load`` and the Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, cast

import gymnasium as gym
import minari
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch import nn

from latent_skills.config import AgentConfig, ConfigError, DiffusionPriorConfig
from latent_skills.data import load_dataset
from latent_skills.nn import SkillVAE

from . import divergence, reuse, training
from .checkpoints import read_agent, write_agent
from .devices import resolve_device
from .policy import SkillPolicy, SkillState
from .priors import DiffusionPrior, LatentPrior
from .selectors import First, LatentSelector
from .spec import AgentSpec, default_horizon, register_robotics_envs
from .stages import ImagesStage, PriorStage, SkillsStage, StageContext, StageStreams, TrainingStage
from .stages.base import TrainingState
from .training_data import TrainingData, set_state_stats, training_data

TrainingDivergedError = divergence.TrainingDivergedError


class LatentSkillAgent:
    """Skills (β-VAE) + latent diffusion prior; acts by decoding one prior sample (diffusion
    behaviour cloning). The named agents change ``stages``, ``prior`` and ``selector``."""

    config_class: ClassVar[type[AgentConfig]] = DiffusionPriorConfig
    stages: ClassVar[tuple[type[TrainingStage], ...]] = (ImagesStage, SkillsStage, PriorStage)
    prior: ClassVar[type[LatentPrior]] = DiffusionPrior
    selector: ClassVar[type[LatentSelector]] = First

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if ImagesStage not in cls.stages:  # the observation encoder's stage comes first in every agent
            cls.stages = (ImagesStage, *cls.stages)
        names = [stage.name for stage in cls.stages]
        if len(set(names)) != len(names) or names[:2] != ["images", "skills"]:
            raise TypeError(
                f"{cls.__name__}.stages must start with SkillsStage and name each stage once: {names}"
            )
        built = {m for stage in cls.stages for m in stage.creates}
        missing = sorted(set(cls.prior.requires + cls.selector.requires) - built)
        if missing:
            raise TypeError(
                f"{cls.__name__}: {cls.prior.__name__} and {cls.selector.__name__} need modules {missing}, "
                f"which none of its stages {names} creates"
            )
        fields_ = set(cls.config_class.field_names())
        absent = sorted({s.steps_field for s in cls.stages} - fields_)
        if absent:
            raise TypeError(f"{cls.__name__}: {cls.config_class.__name__} lacks the stage fields {absent}")

    def __init__(self, config: AgentConfig, spec: AgentSpec, device: str | torch.device = "auto") -> None:
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        config.validate()
        self.prior.check_spec(spec)
        self.config, self.spec = config, spec
        self.device = resolve_device(device)
        self.num_timesteps = 0
        self.world_size = 1  # processes of the latest training run (torchrun), saved in config.json
        self.compiled_modules: set[int] = set()  # ids of the networks learn(compile=True) compiled
        self.stages_completed: list[str] = []
        # the unfinished run a loaded checkpoint holds: (plan and step, the stage's tensors)
        self._resume_state: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None
        self.logger: Logger = configure(None, [])
        self.progress = False  # whether the current learn() call shows progress bars
        self._data: TrainingData | None = None
        self._vec_env: VecEnv | None = None  # get_env(), built on first use
        # Seed only a fork of the global RNG: same seed, same weights, and the caller's RNG is untouched.
        # Observations pass through the encoder before any network; the networks read its output. A
        # learned one (images) is a module like the others: saved, and trained by the images stage.
        self._modules: dict[str, nn.Module] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.observation_encoder = spec.make_encoder()
            if self.observation_encoder.learned:
                self._modules["observation_encoder"] = self.observation_encoder
            for stage in self.stages:
                self._modules.update(stage.build_modules(config, spec, self.observation_encoder.features_dim))
        for module in (*self._modules.values(), self.observation_encoder):
            module.to(self.device).eval()
        self.policy = self._make_policy(torch.Generator(self.device).manual_seed(config.seed))

    def _make_policy(self, generator: torch.Generator) -> SkillPolicy:
        prior = self.prior(self._modules, self.config, self.spec, self.device)
        selector = self.selector(self._modules, self.config, self.spec)
        return SkillPolicy(
            self._modules["vae"],
            prior,
            selector,
            self.config,
            self.spec,
            self.device,
            generator,
            self.observation_encoder,
        )

    def __getattr__(self, name: str) -> Any:
        # the modules by name (agent.vae, agent.critic, ...); only reached when normal lookup fails
        modules = self.__dict__.get("_modules")
        if modules is not None and name in modules:
            return modules[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def modules(self) -> dict[str, nn.Module]:
        """Every module whose tensors go into ``model.safetensors``, by prefix."""
        return dict(self._modules)

    @classmethod
    def stage_class(cls, name: str) -> type[TrainingStage]:
        for stage in cls.stages:
            if stage.name == name:
                return stage
        raise ValueError(f"{cls.__name__} has stages {list(cls.stage_names())}; unknown: {name!r}")

    @classmethod
    def stage_names(cls) -> tuple[str, ...]:
        return tuple(stage.name for stage in cls.stages)

    def stage_steps(self) -> dict[str, int]:
        """Gradient steps per stage, from the config."""
        return {stage.name: int(getattr(self.config, stage.steps_field)) for stage in self.stages}

    def make_stage(self, name: str) -> TrainingStage:
        """A stage of this agent, ready to train (its optimiser, data and generators built)."""
        return self.stage_class(name)(self.stage_context(name))

    def stage_context(self, name: str) -> StageContext[Any]:
        """What stage ``name`` sees of this agent (see :class:`~.stages.StageContext`)."""
        return StageContext(
            config=self.config,
            spec=self.spec,
            data=self.data,
            modules=self.modules(),
            prior=self.policy.prior,
            device=self.device,
            streams=StageStreams.seeded(self.config.seed, self.stage_stream(name), self.device),
            progress=self.progress,
        )

    @classmethod
    def stage_stream(cls, name: str) -> int:
        """The index a stage's random streams are seeded with: its place among the required stages
        (so adding an optional stage changes no other stage's draws), 100 + its place after the images
        stage if optional, 200 for the images stage (added in front of every agent's own stages)."""
        required = [s.name for s in cls.stages if not s.optional]
        own = [s.name for s in cls.stages if s is not ImagesStage]
        return required.index(name) if name in required else 100 + own.index(name) if name in own else 200

    def skipped_stages(self) -> list[str]:
        """Optional stages this config does not run (their steps field is 0)."""
        return [s.name for s in self.stages if s.skipped(self.config, self.spec)]

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
        if agent._data.built:  # else after the images stage trains the encoder (its finish)
            set_state_stats(agent._modules, agent._data.windows)
        return agent

    def reuse_stages(
        self, source: LatentSkillAgent, stages: tuple[str, ...] | list[str] = ("skills",)
    ) -> LatentSkillAgent:
        """Copy the modules of ``source``'s trained ``stages`` (default: the skill VAE) into this
        agent, as the paper reuses one VAE for all its variants; those stages then need not rerun.

        Both agents must be built on the same dataset with the same module shapes, and a stage is
        shared only where both agents train it the same way (the same stage class).
        """
        return reuse.reuse_stages(self, source, stages)

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
        encoder, flattener = self.observation_encoder, self.spec.flattener
        return training_data(dataset, encoder, flattener, self.config, self.device)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def posterior(self, batch_size: int = 4096, progress_bar: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """q(z|τ) mean and std of every training window (computed once per trained encoder)."""
        vae = cast(SkillVAE, self._modules["vae"])
        return self.data.posterior_of(vae, self.device, batch_size, progress_bar)

    # ------------------------------------------------------------------ training
    def set_logger(self, logger: Logger) -> None:
        """Log through an SB3 logger (e.g. ``stable_baselines3.common.logger.configure(dir, ["csv"])``,
        or :func:`latent_skills.loggers.configure_logger` for TensorBoard and W&B)."""
        self.logger = logger

    def get_env(self) -> VecEnv | None:
        """The evaluation env as an SB3 VecEnv (a ``DummyVecEnv`` of one ``Monitor``-wrapped
        ``spec.make_env()``, built once), or None when this agent has none recorded. SB3's callbacks
        read it as ``training_env`` (e.g. ``EvalCallback(agent.get_env())``); training offline never
        steps it."""
        if self._vec_env is None and self.spec.eval_env_spec is not None:
            self._vec_env = DummyVecEnv([lambda: Monitor(self.spec.make_env())])
        return self._vec_env

    def get_vec_normalize_env(self) -> None:
        """None, as SB3's callbacks expect from an algorithm without ``VecNormalize``: observations
        are normalised inside the agent's models."""
        return None

    def learn(
        self,
        total_timesteps: int | None = None,
        *,
        callback: BaseCallback | Any | None = None,
        progress_bar: bool | None = None,
        stages: list[str] | tuple[str, ...] | str | None = None,
        save_path: str | Path | None = None,
        save_every: int | None = None,
        resume: bool = False,
        log_interval: int = 500,
        eval_freq: int | None = None,
        eval_episodes: int = 10,
        eval_envs: int = 1,
        compile: bool | dict[str, Any] = False,
        precision: str = "float32",
    ) -> LatentSkillAgent:
        """Train ``stages`` (default: all, in order) for ``total_timesteps`` gradient steps in all, split in the
        config's proportions (default: the config's step counts).

        A stage trains over the stages before it: each must be trained already (or reused), or run in this
        call. Training a stage again marks the stages after it as not trained.

        With ``save_path`` the agent is saved after each stage, and with ``save_every=N`` also every N steps
        inside a stage, with the full training state (optimiser, generators, replay priorities). Ctrl-C or
        SIGTERM stops at the end of the current step, saves such a checkpoint (to ``save_path`` or ``./latent-
        skills-interrupted``) and raises :class:`TrainingInterrupted`; ``Agent.load(path).learn(resume=True)``
        then continues exactly where it stopped. A non-finite loss or gradient stops with
        :class:`TrainingDivergedError`, keeping the last finite weights.

        ``callback``: an SB3 callback (``EvalCallback``, ``CheckpointCallback``, ``ProgressBarCallback``,
        ``StopTrainingOnNoModelImprovement`` as ``callback_after_eval``, ...), a list of them, or a function
        ``(locals, globals) -> bool``. For callbacks a *step* is one gradient step of the current stage:
        ``on_step`` runs after each, and ``num_timesteps`` counts gradient steps over all stages (and earlier
        calls), so ``EvalCallback(eval_freq=N)`` evaluates every N gradient steps from the first stage on; to
        evaluate only once the agent can act, train the other stages first (``learn(stages=["skills",
        "prior"])``, then ``learn(stages=["q"], callback=...)``). Their ``training_env`` is :meth:`get_env`.
        ``CheckpointCallback`` writes checkpoint *folders* named as SB3 names its zip files
        (``rl_model_1000_steps.zip``): load them with ``Agent.load``. A callback returning False stops
        training; the stage it stopped is not marked trained.

        ``eval_freq=N``: evaluate every N gradient steps of the agent's last stage (``q`` for LDCQ) on
        ``eval_episodes`` episodes over ``eval_envs`` envs of its evaluation env, log ``eval/mean_reward``,
        ``eval/normalized_score``, ``eval/success_rate`` through the logger and, with ``save_path``, keep the
        best agent so far (by mean return) in ``save_path/best``, its result in ``save_path/best/eval.json``.
        See :class:`~.periodic_eval.PeriodicEvaluation`.

        ``progress_bar``: show progress (a bar on a terminal, plain lines elsewhere); ``None``, the default,
        shows it when stderr is a terminal. On a CPU a stage that will take over an hour says so once
        (:class:`~.notices.SlowTrainingWarning`, with the estimate and how to pick ``preset="quick"``).

        ``compile=True`` (or ``torch.compile``'s keyword arguments as a dict) compiles the networks in place
        (acting uses them too); ``precision="bf16"`` runs the forward passes under bf16 autocast. Both are off
        by default (see :mod:`~.acceleration` for what they gave on a CPU).
        """
        training.learn(
            self,
            total_timesteps,
            callback=callback,
            progress_bar=progress_bar,
            stages=stages,
            save_path=save_path,
            save_every=save_every,
            resume=resume,
            log_interval=log_interval,
            eval_freq=eval_freq,
            eval_episodes=eval_episodes,
            eval_envs=eval_envs,
            compile=compile,
            precision=precision,
        )
        return self

    @property
    def can_resume(self) -> bool:
        """Whether this agent was loaded from a checkpoint of an unfinished run (``learn(resume=True)``)."""
        return self._resume_state is not None

    # ------------------------------------------------------------------ acting (the policy)
    def set_acting(self, **changes: Any) -> LatentSkillAgent:
        """Change how the trained agent acts (sampler, its steps, guidance, candidates, exec_horizon)."""
        self.config = self.config.with_acting(**changes)
        self.policy = self._make_policy(self.policy.generator)
        return self

    def predict(
        self,
        observation: Any,
        state: SkillState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, SkillState]:
        """SB3's contract (see :meth:`SkillPolicy.predict`)."""
        return self.policy.predict(observation, state, episode_start, deterministic)

    def sample_latents(
        self, observation: Any, n: int, *, seed: int | None = None, **sampler: Any
    ) -> np.ndarray:
        """``n`` latents from the agent's prior: ``(n, D)`` for one observation, ``(B, n, D)`` for a
        batch; ``sampler``: the prior's settings (a diffusion prior's ``solver``, ``steps``, ``guidance``)."""
        return self.policy.sample_latents(observation, n, seed=seed, **sampler)

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
        """Mean/std return, returns, normalised score, success rate and the ``protocol`` they follow:
        ``"d4rl"`` (D4RL's env and score for kitchen, antmaze, single-goal maze2d), ``"dataset"`` (the
        dataset's evaluation env as stored) or None/``"auto"`` (``"d4rl"`` where it applies). See
        :meth:`SkillPolicy.evaluate` and :mod:`latent_skills.envs.protocols`."""
        return self.policy.evaluate(env, n_episodes, n_envs, seed, deterministic, progress_bar, protocol)

    # ------------------------------------------------------------------ checkpoints and the Hub
    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload this agent (weights, config, model card, optional evaluation) to the Hugging Face
        Hub in one commit; see :func:`latent_skills.hub.push_to_hub`."""
        from latent_skills.agents.sharing import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | Path, **kwargs: Any) -> LatentSkillAgent:
        """Load from a Hub repo id (cached, works offline once downloaded) or a local folder."""
        from latent_skills.agents.sharing import from_pretrained

        return from_pretrained(cls, str(repo_id_or_path), **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` as folder ``path`` (replaced as a whole; other
        files in it, such as ``logs/``, are kept). To save a run that can be resumed, use
        ``learn(save_path=..., save_every=N)``: its checkpoints also hold the training state."""
        return self._write(path, None, None)

    def _write(self, path: str | Path, run: dict[str, Any] | None, state: TrainingState | None) -> Path:
        """Save, with ``run`` (the remaining plan, the stage and step reached) and the stage's
        ``state`` when the checkpoint should resume a run."""
        return write_agent(self, path, run, state)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> LatentSkillAgent:
        """Load a checkpoint folder strictly; ``LatentSkillAgent.load`` picks the right class."""
        return read_agent(cls, LatentSkillAgent, path, device)
