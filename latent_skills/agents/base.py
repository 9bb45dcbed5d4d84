"""LatentSkillAgent: the shared stages (skills, prior), acting, evaluation and checkpoints.

A variant (LDCQ, ...) adds its modules in ``_build_modules``, its stages in ``_make_stage`` and how
it picks a latent in ``_choose_latents``; everything else is here.
"""

from __future__ import annotations

import contextlib
import signal
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

from .resume import (
    Resumable,
    StopSignals,
    TrainingInterrupted,
    load_optimizer_state,
    numpy_generator_state,
    optimizer_state,
    set_numpy_generator_state,
)
from .spec import AgentSpec, default_horizon, register_robotics_envs

SkillState = tuple[np.ndarray, np.ndarray]  # (latent per env (n, D), steps since replanning (n,))


class TrainingDivergedError(FloatingPointError):
    """A loss or gradient turned non-finite; the weights are those of the last good step."""


TrainingState = tuple[dict[str, Any], dict[str, torch.Tensor]]  # a stage's state between steps


@dataclass(frozen=True)
class ResumePoint:
    """Where a saved run stopped inside its first remaining stage."""

    step: int
    stage_state: dict[str, Any] | None
    tensors: dict[str, torch.Tensor]


def signal_name(number: int) -> str:
    return signal.Signals(number).name


def _restore(params: list[torch.Tensor], backup: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for param, saved in zip(params, backup, strict=True):
            param.copy_(saved)


def _keep_finite(params: list[torch.Tensor], backup: list[torch.Tensor]) -> None:
    """After non-finite gradients: keep the weights if they are finite, else take the step before's."""
    if not all(bool(torch.isfinite(p).all()) for p in params):
        _restore(params, backup)


@dataclass
class Stage:
    """One training stage: what it trains, how to compute one step's loss, and what it keeps between
    steps (generators, replay priorities) so that an interrupted stage resumes exactly."""

    name: str
    modules: list[nn.Module]
    optimizer: torch.optim.Optimizer
    loss: Callable[[int], tuple[torch.Tensor, dict[str, float]]]
    after_step: Callable[[int], None] | None = None
    rng: np.random.Generator | None = None
    generator: torch.Generator | None = None
    resumables: dict[str, Resumable] = field(default_factory=dict)
    # modules that after_step changes (target networks): restored with the trained ones on divergence
    followers: list[nn.Module] = field(default_factory=list)

    def training_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Everything but the weights that the next step depends on, as JSON + tensors."""
        optimizer_meta, optimizer_tensors = optimizer_state(self.optimizer)
        meta: dict[str, Any] = {"optimizer": optimizer_meta, "resumables": {}}
        tensors = {f"optimizer.{k}": v for k, v in optimizer_tensors.items()}
        if self.rng is not None:
            meta["numpy_generator"] = numpy_generator_state(self.rng)
        if self.generator is not None:
            tensors["torch_generator"] = self.generator.get_state()
        for name, part in self.resumables.items():
            part_meta, part_tensors = part.training_state()
            meta["resumables"][name] = part_meta
            tensors.update({f"{name}.{k}": v for k, v in part_tensors.items()})
        return meta, tensors

    def load_training_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        load_optimizer_state(self.optimizer, meta["optimizer"], _split_state(tensors, "optimizer"))
        if self.rng is not None:
            set_numpy_generator_state(self.rng, meta["numpy_generator"])
        if self.generator is not None:
            self.generator.set_state(tensors["torch_generator"])
        for name, part in self.resumables.items():
            part.load_training_state(meta["resumables"][name], _split_state(tensors, name))


@dataclass
class TrainingData:
    """The dataset as the stages use it (kept in memory, never saved)."""

    windows: SkillWindows
    posterior: tuple[np.ndarray, np.ndarray] | None = None  # q(z|τ) mean, std per window
    extras: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA, else Apple's MPS, else the CPU; otherwise ``device`` checked to exist here.

    A device this machine lacks (``"cuda"`` without a GPU, ``"cuda:3"`` with two) or a string torch
    does not parse is a :class:`ConfigError` now, not a torch traceback at the first tensor.
    """
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"device {device!r} is not a device torch knows; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={str(device)!r}: CUDA is not available on this machine; use device='cpu' or 'auto'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0 … cuda:{torch.cuda.device_count() - 1}); use one of those, 'cpu' or 'auto'"
            )
    elif resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(
                f"device={str(device)!r}: MPS (Apple GPU) is not available on this machine; "
                "use device='cpu' or 'auto'"
            )
    elif resolved.type != "cpu":
        raise ConfigError(
            f"device={str(device)!r}: latent-skills runs on 'cpu', 'cuda' or 'mps'; use one of those or 'auto'"
        )
    return resolved


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
        # the unfinished run a loaded checkpoint holds: (plan and step, the stage's tensors)
        self._resume_state: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None
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
        save_every: int | None = None,
        resume: bool = False,
        log_interval: int = 500,
    ) -> LatentSkillAgent:
        """Train ``stages`` (default: all, in order) for ``total_timesteps`` gradient steps in all,
        split in the config's proportions (default: the config's step counts).

        A stage trains over the stages before it: each must be trained already (or reused), or run in
        this call. Training a stage again marks the stages after it as not trained.

        With ``save_path`` the agent is saved after each stage, and with ``save_every=N`` also every N
        steps inside a stage, with the full training state (optimiser, generators, replay priorities).
        Ctrl-C or SIGTERM stops at the end of the current step, saves such a checkpoint (to
        ``save_path`` or ``./latent-skills-interrupted``) and raises :class:`TrainingInterrupted`;
        ``Agent.load(path).learn(resume=True)`` then continues exactly where it stopped. A non-finite
        loss or gradient stops with :class:`TrainingDivergedError`, keeping the last finite weights.
        A callback returning False stops training; the stage it stopped is not marked trained.
        """
        if save_every is not None and (save_every < 1 or save_path is None):
            raise ValueError(f"save_every={save_every} needs save_path and must be ≥ 1")
        if resume:
            if total_timesteps is not None or stages is not None:
                raise ValueError(
                    "resume=True continues the saved run's plan: leave out total_timesteps and stages"
                )
            plan, resumed = self._resumed_plan()
        else:
            plan, resumed = self._plan(total_timesteps, stages), None
        cb = self._init_callback(callback)
        self._progress = progress_bar
        cb.on_training_start(locals(), globals())
        names = list(plan)
        target = Path(save_path or "latent-skills-interrupted")

        def checkpoint(stage: str, step: int, state: TrainingState | None) -> Path:
            remaining = {n: plan[n] for n in names[names.index(stage) :]}
            return self._write(target, {"plan": remaining, "stage": stage, "step": step}, state)

        signals = StopSignals()
        try:
            with signals.installed():
                for name in names:
                    self._mark_untrained_from(name)
                    start = resumed if name == names[0] else None
                    stopped = self._run_stage(
                        name, plan[name], start, cb, signals, checkpoint, save_every, log_interval
                    )
                    if stopped is not None:  # a callback stopped training: the stage is unfinished
                        if save_path is not None:
                            checkpoint(name, *stopped)
                        break
                    self.stages_completed = [
                        s for s in self.config.STAGES if s in {*self.stages_completed, name}
                    ]
                    if save_path is not None:
                        later = names[names.index(name) + 1 :]
                        if later:
                            checkpoint(later[0], 0, None)
                        else:
                            self._write(save_path, None, None)
        except TrainingInterrupted as exc:
            print(f"\n{exc}")
            raise
        finally:
            self._train_mode(False)
        self._resume_state = None
        cb.on_training_end()
        return self

    @property
    def can_resume(self) -> bool:
        """Whether this agent was loaded from a checkpoint of an unfinished run (``learn(resume=True)``)."""
        return self._resume_state is not None

    def _plan(self, total: int | None, stages: list[str] | tuple[str, ...] | str | None) -> dict[str, int]:
        """The stages to run, in order, with their step counts; errors name what is missing."""
        order = list(self.config.STAGES)
        chosen = order if stages is None else [stages] if isinstance(stages, str) else list(stages)
        if not chosen:
            raise ValueError(f"stages=[] trains nothing: name some of {order}")
        unknown = [s for s in chosen if s not in order]
        if unknown:
            raise ValueError(f"{type(self).__name__} has stages {order}; unknown: {unknown}")
        chosen = [s for s in order if s in chosen]
        for stage in chosen:
            missing = [s for s in order[: order.index(stage)] if s not in self.stages_completed + chosen]
            if missing:
                raise ValueError(
                    f"stage {stage!r} trains over {missing}, which this agent has not trained: "
                    f"learn(stages={missing + [stage]}) or reuse_stages(...) them first"
                )
        planned = self.config.stage_steps()
        if total is None:
            return {s: planned[s] for s in chosen}
        if total < 1:
            raise ValueError(f"total_timesteps must be ≥ 1, got {total}")
        weight = sum(planned[s] for s in chosen)
        split = {s: int(total * planned[s] / weight) for s in chosen}
        split[chosen[-1]] += total - sum(split.values())
        empty = [s for s in chosen if split[s] < 1]
        if empty:
            raise ValueError(
                f"total_timesteps={total} leaves stages {empty} no step (split {split}): give more "
                "steps, or choose stages=..."
            )
        return split

    def _resumed_plan(self) -> tuple[dict[str, int], ResumePoint]:
        if self._resume_state is None:
            raise ValueError(
                "Nothing to resume: this agent holds no unfinished run (it finished, or was saved by "
                "save()). Train more with learn(stages=[...])."
            )
        run, tensors = self._resume_state
        plan = {str(k): int(v) for k, v in run["plan"].items()}
        unknown = [s for s in plan if s not in self.config.STAGES]
        if unknown or not plan:
            raise CheckpointError(f"the checkpoint's training state names stages {unknown or 'none'}")
        return plan, ResumePoint(int(run["step"]), run.get("stage_state"), tensors)

    def _mark_untrained_from(self, name: str) -> None:
        """Training ``name`` again makes it and every stage built on it (the later ones) untrained."""
        later = list(self.config.STAGES)[list(self.config.STAGES).index(name) :]
        self.stages_completed = [s for s in self.stages_completed if s not in later]

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
        self,
        name: str,
        n_steps: int,
        resumed: ResumePoint | None,
        callback: BaseCallback,
        signals: StopSignals,
        checkpoint: Callable[[str, int, TrainingState | None], Path],
        save_every: int | None,
        log_interval: int,
    ) -> tuple[int, TrainingState] | None:
        """Run stage ``name`` from its first (or resumed) step to ``n_steps``; if a callback stops
        it, return the steps done and the stage's training state. Interrupts save a checkpoint that
        resumes at the last finished step."""
        stage: Stage | None = None
        done = 0 if resumed is None else resumed.step
        bar = tqdm(
            total=n_steps,
            initial=done,
            desc=f"{type(self).__name__} {name}",
            unit="step",
            disable=not self._progress,
        )
        try:
            stage = self._make_stage(name)
            if resumed is not None and resumed.step > 0:
                stage.load_training_state(resumed.stage_state, _split_state(resumed.tensors, "stage"))
            self._train_mode(False)
            for module in stage.modules:
                module.train(True)
            params = [p for group in stage.optimizer.param_groups for p in group["params"]]
            tracked = [p for m in stage.modules + stage.followers for p in m.parameters()]
            backup = [p.detach().clone() for p in tracked]
            running: dict[str, float] = {}
            start, first = time.perf_counter(), done
            with signals.steps():
                for step in range(first, n_steps):
                    loss, logs = stage.loss(step)
                    if not torch.isfinite(loss):
                        _restore(tracked, backup)  # the weights that gave this loss are bad
                        raise TrainingDivergedError(
                            f"Stage {name!r}: the loss became {loss.item()} at step {step}; training stopped "
                            "with the weights of the last good step. Lower the stage's learning rate "
                            f"(e.g. --set {name}_lr=...) or check the dataset for outliers."
                        )
                    stage.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = nn.utils.clip_grad_norm_(params, self.config.grad_clip)
                    if not torch.isfinite(grad_norm):
                        _keep_finite(tracked, backup)
                        raise TrainingDivergedError(
                            f"Stage {name!r}: gradients became non-finite at step {step}; training stopped "
                            "with the weights of the last good step. Lower the learning rate."
                        )
                    with torch.no_grad():
                        for saved, param in zip(backup, tracked, strict=True):
                            saved.copy_(param)
                    stage.optimizer.step()
                    if stage.after_step is not None:
                        stage.after_step(step)
                    self.num_timesteps += 1
                    done = step + 1
                    for key, value in logs.items():
                        running[key] = running.get(key, 0.0) + value
                    if done % log_interval == 0 or done == n_steps:
                        count = (step % log_interval) + 1
                        for key, value in running.items():
                            self.logger.record(f"{name}/{key}", value / count)
                        self.logger.record("time/steps_per_s", (done - first) / (time.perf_counter() - start))
                        self.logger.record("time/total_timesteps", self.num_timesteps)  # SB3's key: curves' x
                        self.logger.dump(self.num_timesteps)
                        bar.set_postfix({k: f"{v / count:.4g}" for k, v in running.items()})
                        running.clear()
                    bar.update(1)
                    callback.update_locals(locals())
                    if not callback.on_step():
                        return done, stage.training_state()
                    if signals.received:
                        raise KeyboardInterrupt
                    if save_every is not None and done % save_every == 0 and done < n_steps:
                        checkpoint(name, done, stage.training_state())
        except KeyboardInterrupt as exc:
            if isinstance(exc, TrainingInterrupted) and len(signals.received) > 1:
                raise  # a second signal: stop at once, the last checkpoint stands
            if stage is not None and done > 0:
                state: TrainingState | None = stage.training_state()
            elif resumed is not None and resumed.step > 0:  # interrupted while rebuilding the stage
                state = (resumed.stage_state, _split_state(resumed.tensors, "stage"))
            else:
                state = None
            path = checkpoint(name, done, state)
            cause = signal_name(signals.received[0]) if signals.received else "KeyboardInterrupt"
            raise TrainingInterrupted(
                f"Interrupted ({cause}) in stage {name!r} after step {done} of {n_steps}: checkpoint "
                f"saved to {path}. Resume exactly with\n  {type(self).__name__}.load({str(path)!r})"
                f".learn(resume=True)\nor `latent-skills train --resume {path}`.",
                signals.received[0] if signals.received else signal.SIGINT,
            ) from exc
        finally:
            bar.close()
            self._train_mode(False)
        return None

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
        return Stage("skills", [self.vae], optimizer, loss, rng=rng, generator=gen)

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
        return Stage("prior", [self.denoiser], optimizer, loss, rng=rng, generator=gen)

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
        if not np.isfinite(flat).all():
            rows = np.flatnonzero(~np.isfinite(np.atleast_2d(flat)).all(1))
            raise ValueError(
                f"The observation holds NaN or inf (batch rows {rows.tolist()}): the agent would act on "
                "garbage. Check the env, or reset the envs whose state blew up."
            )
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
            # from its registered id only, action space checked (UntrustedEnvSpecError / ValueError);
            # the vector env builds every env before the first episode
            make_env, same_env = self.spec.make_env, True
        elif isinstance(env, str):
            register_robotics_envs()

            def make_env() -> gym.Env:
                built = gym.make(env)
                self.spec.check_env(built, f"env {env!r}")
                return built

            same_env = self.spec.is_eval_env(gym.spec(env))
        else:
            if n_envs != 1:
                raise ValueError(
                    "Pass an env id (or None) to evaluate on several envs at once; a gym.Env instance is one env"
                )
            self.spec.check_env(env)

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
        """Write ``config.json`` + ``model.safetensors`` as folder ``path`` (replaced as a whole; other
        files in it, such as ``logs/``, are kept). To save a run that can be resumed, use
        ``learn(save_path=..., save_every=N)``: its checkpoints also hold the training state."""
        return self._write(path, None, None)

    def _write(self, path: str | Path, run: dict[str, Any] | None, state: TrainingState | None) -> Path:
        """Save, with ``run`` (the remaining plan, the stage and step reached) and the stage's
        ``state`` when the checkpoint should resume a run."""
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
        training_tensors = None
        if run is not None:
            meta["training_state"] = {**run, "stage_state": None if state is None else state[0]}
            training_tensors = {} if state is None else {f"stage.{k}": v for k, v in state[1].items()}
        return write_checkpoint(path, meta, tensors, training_tensors)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> LatentSkillAgent:
        """Load a checkpoint folder strictly; ``LatentSkillAgent.load`` picks the right class."""
        meta, tensors = read_checkpoint(path, training_state=True)
        training_tensors = _split_state(tensors, "training_state")
        tensors = {k: v for k, v in tensors.items() if not k.startswith("training_state.")}
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
            config = target.config_class.from_saved(meta["config"], source=f"{path}/config.json")
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
        if isinstance(meta.get("training_state"), dict):
            agent._resume_state = (meta["training_state"], training_tensors)
        return agent


def _library_version() -> str:
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("latent-skills")
    return "unknown"
