"""Training stages. Each declares its name, the modules it creates and trains, the config fields
that shape them (two agents may share a trained stage only if these agree) and its steps field; an
instance holds its optimiser, its generators and whatever it keeps between steps, and computes one
step's ``(loss, metrics)``.

- :class:`SkillsStage` — the skill β-VAE over H-step windows (paper stage 1).
- :class:`PriorStage` — the latent diffusion prior p(z | s0) (stage 2); :class:`GoalPriorStage`
  trains p(z | s0, g) on hindsight goals (LDGC).
- :class:`QStage` — diffusion-constrained clipped double Q-learning (LDCQ's stage 3).
- :class:`DynamicsStage` — the abstract world model p(s_{t+H} | s_t, z) (LDCP).
- :class:`EnergyStage` — LatentDiffuser's time-dependent energy model (contrastive energy prediction).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast, overload

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from latent_skills.diffusion import DiffusionSchedule, diffusion_draws, diffusion_loss
from latent_skills.hub.checkpoint import split_state
from latent_skills.nn import (
    LatentDenoiser,
    LatentEnergyModel,
    SkillVAE,
    SkillWorldModel,
    StateNormalizer,
    TwinCritic,
    contrastive_energy_loss,
    polyak_update,
    q_candidates,
)

from . import distributed
from .device_data import DeviceArrays, fits_on_device, gathers_on_device
from .replay import DevicePrioritizedSampler, PrioritizedSampler
from .resume import (
    NumpyGeneratorState,
    Resumable,
    load_optimizer_state,
    numpy_generator_state,
    optimizer_state,
    set_numpy_generator_state,
)
from .spec import AgentSpec

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows

    from .base import LatentSkillAgent

TrainingState = tuple[dict[str, Any], dict[str, torch.Tensor]]  # a stage's state between steps


class TrainingStage:
    """One stage of training. Subclasses set the class attributes and implement ``build_modules``,
    ``__init__`` (optimiser, data) and ``loss``."""

    name: ClassVar[str]
    creates: ClassVar[tuple[str, ...]] = ()  # the modules it builds and trains (copied by reuse_stages)
    shaped_by: ClassVar[tuple[str, ...]] = ()  # config fields that shape them
    steps_field: ClassVar[str]  # the config field with its number of gradient steps
    condition_kind: ClassVar[str | None] = None  # for a prior stage: what the prior conditions on
    # an optional stage runs only when its steps field is > 0 (0: skipped, not needed by later stages)
    optional: ClassVar[bool] = False

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        return {}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        config = agent.config
        self.agent = agent
        # Both streams are the same on every rank: all draw the global batch's indices and noise
        # (global_draw) and each takes its rows (take_shard), so N ranks train as one process does.
        self.rng = np.random.default_rng([config.seed, index])
        self.world, self.rank = distributed.world_size(), distributed.rank()
        self.generator = torch.Generator(agent.device).manual_seed(config.seed * 1000 + index)
        self.n_steps: int = getattr(config, self.steps_field)  # this run's plan sets it (run_stage)
        # the global batch of the current step: host indices (a device tensor where the Q stage
        # samples on the device)
        self.batch_idx: Any = None
        self.rows = slice(None)  # this rank's rows of it
        self.shard_weight = 1.0  # this rank's share of the batch's mean loss
        self.trained: list[nn.Module] = []  # in train mode during the stage, optimised
        self.followers: list[nn.Module] = []  # changed by after_step (target networks)
        self.resumables: dict[str, Resumable] = {}
        self.optimizer: torch.optim.Optimizer

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Work after the optimiser step (priorities, target networks)."""

    @overload
    def take_shard(self, idx: np.ndarray) -> np.ndarray: ...
    @overload
    def take_shard(self, idx: torch.Tensor) -> torch.Tensor: ...
    def take_shard(self, idx: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """This rank's rows of the global batch ``idx`` (drawn alike on every rank): all of it in one
        process. Sets ``rows`` and ``shard_weight`` (the rows' share, by which its gradient counts)."""
        self.batch_idx = idx
        if self.world == 1:
            return idx
        self.rows = distributed.shard_rows(len(idx))
        self.shard_weight = (self.rows.stop - self.rows.start) / len(idx)
        return idx[self.rows]

    def draw_windows(self, batch_size: int, pool: np.ndarray | None = None) -> np.ndarray:
        """A global batch of window indices from the stage's stream: any window, or one of ``pool``."""
        if pool is None:
            return self.rng.integers(0, len(self.agent.data.windows), batch_size)
        return pool[self.rng.integers(0, len(pool), batch_size)]

    def normal_draw(self, width: int) -> Callable[[int], torch.Tensor]:
        """A draw of ``(n, width)`` standard normals from the stage's torch stream."""
        return lambda n: torch.randn((n, width), generator=self.generator, device=self.agent.device)

    def global_draw(self, draw: Callable[[int], Any]) -> Any:
        """``draw(batch size)`` (a tensor or a tuple of them, batch first) for the global batch, and this
        rank's rows of it: the random stream of one process, whatever the number of ranks."""
        assert self.batch_idx is not None, "take_shard first: it sets the global batch"
        drawn = draw(len(self.batch_idx))
        if self.world == 1:
            return drawn
        return tuple(x[self.rows] for x in drawn) if isinstance(drawn, tuple) else drawn[self.rows]

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.agent.device)

    def gather(self, source: Any, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``source[index]`` (windows, a mask or a per-window array) on the training device: gathered
        on the host on a CPU, on the device from device copies elsewhere (:mod:`.device_data`)."""
        device = self.agent.device
        if not gathers_on_device(device):
            return self.tensor(np.asarray(source[index]))
        arrays = self.agent.data.extras.setdefault(f"device_arrays:{device}", DeviceArrays(device))
        return arrays.gather(source, index)

    # -- resuming exactly
    def training_state(self) -> TrainingState:
        """Everything but the weights that the next step depends on, as JSON + tensors."""
        optimizer_meta, optimizer_tensors = optimizer_state(self.optimizer)
        meta: dict[str, Any] = {"optimizer": optimizer_meta, "resumables": {}}
        tensors = {f"optimizer.{k}": v for k, v in optimizer_tensors.items()}
        meta["numpy_generator"] = numpy_generator_state(self.rng)
        tensors["torch_generator"] = self.generator.get_state()
        for name, part in self.resumables.items():
            part_meta, part_tensors = part.training_state()
            meta["resumables"][name] = part_meta
            tensors.update({f"{name}.{k}": v for k, v in part_tensors.items()})
        return meta, tensors

    def load_training_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        load_optimizer_state(self.optimizer, meta["optimizer"], split_state(tensors, "optimizer"))
        set_numpy_generator_state(self.rng, meta["numpy_generator"])
        self.generator.set_state(tensors["torch_generator"])
        for name, part in self.resumables.items():
            part.load_training_state(meta["resumables"][name], split_state(tensors, name))


# ---------------------------------------------------------------------------------------------- skills
def skill_window_pool(agent: LatentSkillAgent) -> np.ndarray | None:
    """The windows the skill VAE and the prior learn from: every one (None), or with
    ``skill_windows="full"`` the indices of those H steps long (an episode's last windows are shorter;
    Q still learns their returns)."""
    if agent.config.skill_windows == "all":
        return None
    full = np.flatnonzero(agent.data.windows.lengths == agent.config.horizon)
    if len(full) == 0:
        raise ValueError(
            f"skill_windows='full' but no window is {agent.config.horizon} steps long (every episode is "
            "shorter): lower horizon or use skill_windows='all'"
        )
    return full


class SkillsStage(TrainingStage):
    """β-VAE over H-step windows: −Σ log π(a | s, z) + β · KL(q(z | τ) ‖ p(z | s0))."""

    name = "skills"
    creates = ("vae",)
    shaped_by = ("horizon", "latent_dim", "vae_hidden", "vae_gru_layers", "gamma")
    steps_field = "skills_steps"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        vae = SkillVAE(
            spec.state_dim,
            spec.action_dim,
            config.horizon,
            latent_dim=config.latent_dim,
            hidden=config.vae_hidden,
            gru_layers=config.vae_gru_layers,
            action_low=list(spec.action_low),
            action_high=list(spec.action_high),
        )
        return {"vae": vae}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        self.vae = cast(SkillVAE, agent.modules()["vae"])
        self.pool = skill_window_pool(agent)
        agent.data.posterior = None  # the encoder changes: cached posteriors are stale
        self.trained = [self.vae]
        self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=agent.config.skills_lr)

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c, w = self.agent.config, self.agent.data.windows
        idx = self.take_shard(self.draw_windows(c.skills_batch_size, self.pool))
        if self.world > 1:  # the loss is a mean over the batch's real steps: weigh by them
            assert self.batch_idx is not None
            self.shard_weight = float(w.mask[idx].sum() / w.mask[self.batch_idx].sum())
        noise = self.global_draw(self.normal_draw(c.latent_dim))
        out = self.vae.loss(
            self.gather(w.states, idx),
            self.gather(w.actions, idx),
            self.gather(w.mask, idx),
            beta=c.vae_beta,
            noise=noise,
        )
        return out["loss"], {"loss": out["loss"], "nll": out["nll"], "kl": out["kl"]}


# ---------------------------------------------------------------------------------------------- prior
class PriorStage(TrainingStage):
    """DDPM over standardised z ~ q(z | τ) conditioned on s0: x0-prediction, min-SNR weighting,
    condition dropout for classifier-free guidance."""

    name = "prior"
    creates = ("latent_norm", "denoiser")
    shaped_by: ClassVar[tuple[str, ...]] = ("diffusion_timesteps", "denoiser_widths")
    steps_field = "prior_steps"
    condition_kind = "state"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        # The prior diffuses standardised latents: the schedule assumes unit-scale data.
        latent_norm = StateNormalizer(config.latent_dim)
        denoiser = LatentDenoiser(config.latent_dim, spec.state_dim, widths=config.denoiser_widths)
        return {"latent_norm": latent_norm, "denoiser": denoiser}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        modules = agent.modules()
        self.denoiser = cast(LatentDenoiser, modules["denoiser"])
        self.latent_norm = cast(StateNormalizer, modules["latent_norm"])
        config: Any = agent.config  # a DiffusionPriorConfig
        self.schedule = DiffusionSchedule(config.diffusion_timesteps).to(agent.device)
        self.mean, self.std = agent.posterior(progress_bar=agent.progress)
        self.pool = skill_window_pool(agent)
        # standardise z ~ q: its mean and total spread (spread of means + posterior noise)
        mean, std = (
            (self.mean, self.std) if self.pool is None else (self.mean[self.pool], self.std[self.pool])
        )
        spread = np.sqrt(mean.var(0) + np.square(std).mean(0))
        self.latent_norm.set_stats(mean.mean(0), spread)
        student = modules.get("student")
        if student is not None:  # distilled from the prior this stage replaces: sample the prior
            student.ready.zero_()  # type: ignore[operator]
        self.first = agent.data.windows.first_states
        self.trained = [self.denoiser]
        self.optimizer = torch.optim.Adam(self.denoiser.parameters(), lr=config.prior_lr)

    def conditions(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prior's condition for windows ``idx`` and what guidance's dropout replaces it with."""
        states = self.gather(self.first, idx).float()
        prior = self.agent.policy.prior
        return prior.condition(states), prior.null_condition(states)

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c: Any = self.agent.config  # a DiffusionPriorConfig
        idx = self.take_shard(self.draw_windows(c.prior_batch_size, self.pool))
        eps = self.global_draw(self.normal_draw(c.latent_dim))
        z = self.gather(self.mean, idx) + self.gather(self.std, idx) * eps
        cond, null_cond = self.conditions(idx)
        draws = self.global_draw(
            lambda n: diffusion_draws((n, c.latent_dim), self.schedule, self.generator, self.agent.device)
        )
        value = diffusion_loss(
            self.denoiser,
            self.latent_norm(z),
            cond,
            self.schedule,
            snr_clip=c.prior_snr_clip,
            cond_drop=c.prior_cond_drop,
            null_cond=null_cond,
            draws=draws,
        )
        return value, {"loss": value}


class GoalPriorStage(PriorStage):
    """p(z | s0, g) with hindsight goals: g is the achieved goal k ~ Geometric(mean
    ``hindsight_horizons`` · H) steps after s0 in the same episode (its last state where it ends sooner)."""

    shaped_by: ClassVar[tuple[str, ...]] = (*PriorStage.shaped_by, "hindsight_horizons", "goal_dropout")
    condition_kind = "state+goal"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        # "goal" dropout: the condition ends in a goal-present flag (see GoalDiffusionPrior)
        cond_dim = spec.state_dim + (1 if config.goal_dropout == "goal" else 0)
        latent_norm = StateNormalizer(config.latent_dim)
        denoiser = LatentDenoiser(config.latent_dim, cond_dim, widths=config.denoiser_widths)
        return {"latent_norm": latent_norm, "denoiser": denoiser}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        # its own stream, apart from the batches: same seed, same goals, same weights
        self.hindsight_rng = np.random.default_rng([agent.config.seed, index, 1])
        self.resumables["hindsight"] = NumpyGeneratorState(self.hindsight_rng)

    def hindsight_goals(self, window_idx: np.ndarray) -> np.ndarray:
        return hindsight_goals(self.agent, window_idx, self.hindsight_rng)

    def conditions(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        states = self.gather(self.first, idx).float()
        prior = self.agent.policy.prior
        if self.world > 1 and self.batch_idx is not None:  # the goals of the global batch, as in one process
            goals = self.tensor(self.hindsight_goals(self.batch_idx)[self.rows])
        else:
            goals = self.tensor(self.hindsight_goals(idx))
        return prior.condition(states, goals=goals), prior.null_condition(states)


def hindsight_goals(agent: LatentSkillAgent, window_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Achieved goals k ~ Geometric(mean hindsight_horizons · H) steps after each window's first
    state, in the same episode (the episode's last state where it ends sooner), ``(n, G)``."""
    w, c = agent.data.windows, agent.config
    achieved = agent.spec.flattener.slice_of("achieved_goal")
    k = rng.geometric(1.0 / (c.hindsight_horizons * c.horizon), len(window_idx))  # type: ignore[attr-defined]
    return w.episodes.observations[w.future_rows(window_idx, k), achieved]


# ---------------------------------------------------------------------------------------------- Q
class CandidateBank:
    """K prior samples per distinct row, float16, memory-mapped past a RAM budget."""

    def __init__(self, rows: np.ndarray, n_candidates: int, latent_dim: int, ram_gb: float) -> None:
        self.unique_rows, self.index = np.unique(rows, return_inverse=True)
        shape = (len(self.unique_rows), n_candidates, latent_dim)
        nbytes = math.prod(shape) * 2
        self.file: str | None = None
        self.values: np.ndarray
        if nbytes > ram_gb * 1e9:
            handle, self.file = tempfile.mkstemp(prefix="latent-skills-bank-", suffix=".f16")
            os.close(handle)
            self.values = np.memmap(self.file, np.float16, "w+", shape=shape)
            # the mapping keeps the data; unlinked now, the file cannot outlive a SIGKILL (GBs at
            # paper scale). Windows cannot unlink a mapped file: there __del__ removes it.
            with contextlib.suppress(OSError):
                os.unlink(self.file)
                self.file = None
        else:
            self.values = np.empty(shape, np.float16)

    def __getitem__(self, window_idx: np.ndarray) -> np.ndarray:
        return self.values[self.index[window_idx]]

    def __del__(self) -> None:
        if self.file is not None:
            del self.values
            with contextlib.suppress(OSError):
                os.unlink(self.file)


def sampling_chunk(device: torch.device) -> int:
    """States per prior-sampling batch when building a bank: 256 keeps a CPU's caches warm; an
    accelerator wants large batches (4096 states × 500 candidates fits a 24 GB GPU with the paper's
    denoiser)."""
    return 256 if device.type == "cpu" else 4096


@torch.no_grad()
def build_candidate_bank(
    agent: LatentSkillAgent, progress_bar: bool = True, chunk_states: int | None = None
) -> CandidateBank:
    """``q_candidates`` latents from the (unguided) prior for every distinct next state.

    In one process the chunks of ``chunk_states`` states draw from one generator in turn. Trained by N
    processes, chunk i is sampled by rank i mod N with a generator of its own (chunk 0's is the
    one-process generator), then sent from that rank to all (a broadcast per chunk), so every rank
    holds the whole bank, and the bank is the same for any N ≥ 2. It equals the one-process bank when
    it fits one chunk; beyond, chunks after the first draw other (equally distributed) latents, as
    the one-process stream is kept for runs made before data parallelism."""
    c: Any = agent.config
    w = agent.data.windows
    chunk_states = chunk_states or sampling_chunk(agent.device)
    bank = CandidateBank(w.next_states.rows(np.arange(len(w))), c.q_candidates, c.latent_dim, c.bank_ram_gb)
    observations = w.episodes.observations
    prior = agent.policy.prior.for_targets
    world, me = distributed.world_size(), distributed.rank()
    gen = torch.Generator(agent.device).manual_seed(c.seed + 7)
    starts = range(0, len(bank.unique_rows), chunk_states)
    for chunk, lo in enumerate(tqdm(starts, desc="candidate bank", disable=not progress_bar)):
        if world > 1:
            if chunk % world != me:
                continue
            if chunk > 0:
                seed = int(np.random.SeedSequence([c.seed, 7, chunk]).generate_state(1)[0])
                gen = torch.Generator(agent.device).manual_seed(seed)
        rows = bank.unique_rows[lo : lo + chunk_states]
        states = torch.as_tensor(np.asarray(observations[rows], np.float32), device=agent.device)
        bank.values[lo : lo + len(rows)] = prior.sample(states, c.q_candidates, generator=gen).cpu().numpy()
    if world > 1:
        for chunk, lo in enumerate(starts):
            hi = min(lo + chunk_states, len(bank.unique_rows))
            # float16 values travel as float32 (exact both ways; not every backend sends float16)
            values = torch.as_tensor(np.asarray(bank.values[lo:hi], np.float32))
            distributed.broadcast(values, src=chunk % world)
            bank.values[lo:hi] = values.numpy()
    return bank


def q_target_terms(windows: SkillWindows, success_cut: str) -> tuple[np.ndarray, np.ndarray]:
    """Per window, the two terms of Q's target ``r + c · max Q'(s', ·)``: the window's return ``r``
    plus, at a success cut held forever, ``γ^length · r_T / (1 − γ)``; and ``c = γ^length`` unless
    the window terminates or (``success_cut`` "terminal" or "hold") ends at a success cut."""
    rewards = windows.rewards.copy()
    not_done_discount = windows.discounts * (1.0 - windows.dones)
    if success_cut != "bootstrap":
        cut = windows.ends_at_success_cut()
        not_done_discount[cut] = 0.0
        if success_cut == "hold":
            held = windows.last_rewards()[cut] / (1.0 - windows.gamma)
            rewards[cut] += windows.discounts[cut] * held
    return rewards.astype(np.float32), not_done_discount.astype(np.float32)


class QStage(TrainingStage):
    """Clipped double Q over (s, z) with targets

        y = r + γ^length · (1 − done) · max_{z_i ~ p(z | s')} min_j Q'_j(s', z_i)

    r the window's discounted return, s' = s_{t+H} (or the episode's last state for a short window at
    its end), the candidates z_i from the prior: a bank sampled once per next state, or on the fly."""

    name = "q"
    creates = ("critic", "critic_target")
    shaped_by = ("q_widths", "gamma")
    steps_field = "q_steps"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        critic = TwinCritic(spec.state_dim, config.latent_dim, widths=config.q_widths)
        return {"critic": critic, "critic_target": copy.deepcopy(critic).requires_grad_(False)}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        c: Any = agent.config
        w = agent.data.windows
        modules = agent.modules()
        self.critic = cast(TwinCritic, modules["critic"])
        self.critic_target = cast(TwinCritic, modules["critic_target"])
        mean, std = agent.posterior(progress_bar=agent.progress)
        # one fixed sample z ~ q(z|τ) per transition, as the paper's replay buffer stores
        noise = np.random.default_rng([c.seed, 99]).standard_normal(mean.shape).astype(np.float32)
        self.z = mean + std * noise
        self.bank: CandidateBank | None = None
        self.bank_on_device = False
        # "auto" waits for the step plan (set after construction) to choose; "bank" builds it now
        self.source_chosen = c.candidate_source != "auto"
        if c.candidate_source == "bank":
            self.use_bank()
        # on-the-fly candidates: each rank samples its own rows' with its own stream (rank 0 keeps the
        # one-process stream; the others restart theirs on resume: only rank 0's state is saved); the
        # same stream on every rank would repeat the noise across ranks
        self.candidate_generator = self.generator
        if self.rank > 0:
            seed = int(np.random.SeedSequence([c.seed, index, self.rank]).generate_state(1)[0])
            self.candidate_generator = torch.Generator(agent.device).manual_seed(seed)
        agent.data.extras["bank"] = self.bank
        self.on_device = gathers_on_device(agent.device)
        self.sampler: PrioritizedSampler | DevicePrioritizedSampler
        if self.on_device:
            self.sampler = DevicePrioritizedSampler(len(w), c.per_alpha, agent.device)
        else:
            self.sampler = PrioritizedSampler(len(w), alpha=c.per_alpha)
        self.first, self.next = w.first_states, w.next_states
        self.rewards, self.not_done_discount = q_target_terms(w, c.success_cut)
        self.last_idx: np.ndarray | torch.Tensor | None = None
        self.last_td: torch.Tensor | None = None
        self.trained, self.followers = [self.critic], [self.critic_target]
        self.resumables["priorities"] = self.sampler
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=c.q_lr)

    def use_bank(self) -> None:
        """Sample the candidate bank now; on an accelerator it lives on the device if it fits."""
        agent = self.agent
        self.bank = build_candidate_bank(agent, agent.progress)
        agent.data.extras["bank"] = self.bank
        # on an accelerator the priorities and (if it fits) the bank live on the device: no step reads
        # the device back (the TD errors feed the device's sum tree)
        self.bank_on_device = gathers_on_device(agent.device) and fits_on_device(
            self.bank.values.nbytes, agent.device
        )

    def choose_source(self) -> None:
        """``candidate_source="auto"``: a bank when the stage's steps draw at least as many windows
        as there are distinct next states to sample it for; else candidates on the fly, which then
        cost less (a short run on a large dataset would spend most of its time on the bank)."""
        c: Any = self.agent.config
        w = self.agent.data.windows
        distinct = len(np.unique(w.next_states.rows(np.arange(len(w)))))
        if self.n_steps * c.q_batch_size >= distinct:
            self.use_bank()
        self.source_chosen = True

    def per_beta(self, step: int) -> float:
        """PER's importance-sampling exponent at ``step`` (``per_beta_schedule``)."""
        c: Any = self.agent.config
        if c.per_beta_schedule == "stage":
            return c.per_beta_start + (1.0 - c.per_beta_start) * step / max(1, self.n_steps - 1)
        return min(1.0, c.per_beta_start + c.per_beta_growth * (step // c.per_beta_every))

    def candidates(self, idx: np.ndarray | torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        if self.bank is not None:
            if self.bank_on_device:
                return self.gather(self.bank.values, self.gather(self.bank.index, idx)).float()
            host_idx = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else idx
            return self.tensor(self.bank[host_idx].astype(np.float32))
        c: Any = self.agent.config
        return self.agent.policy.prior.for_targets.sample(
            next_states, c.q_candidates, generator=self.candidate_generator
        )

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c: Any = self.agent.config
        if not self.source_chosen:
            self.choose_source()
        idx, weights = self.sampler.sample(c.q_batch_size, self.per_beta(step), self.rng)
        idx, weights = self.take_shard(idx), weights[self.rows]
        s, s_next = self.gather(self.first, idx), self.gather(self.next, idx)
        with torch.no_grad():
            best_next = q_candidates(self.critic_target, s_next, self.candidates(idx, s_next)).amax(1)
            target = self.gather(self.rewards, idx) + self.gather(self.not_done_discount, idx) * best_next
        q = self.critic(s, self.gather(self.z, idx))
        td = q - target[:, None]
        value = (torch.as_tensor(weights, device=self.agent.device)[:, None] * td.pow(2)).sum(1).mean()
        self.last_idx, self.last_td = idx, td.detach().abs().mean(1)
        return value, {"loss": value, "q": q.mean(), "target": target.mean()}

    def after_step(self, step: int) -> None:
        assert self.last_idx is not None and self.last_td is not None
        index, td = self.last_idx, self.last_td
        if self.world > 1:
            # every rank applies the whole batch's update, so the sum trees stay identical: each rank
            # fills its rows of the global TD vector, a sum over ranks completes it
            assert self.batch_idx is not None
            index = self.batch_idx
            device = td.device if self.on_device else torch.device("cpu")
            rows = torch.zeros(len(index), dtype=torch.float32, device=device)
            rows[self.rows] = td.to(device)
            td = distributed.all_reduce_sum(rows)
        if isinstance(self.sampler, DevicePrioritizedSampler):
            self.sampler.update(torch.as_tensor(index, device=self.agent.device), td)
        else:
            self.sampler.update(np.asarray(index), td.cpu().numpy())
        polyak_update(self.critic_target, self.critic, self.agent.config.q_polyak)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- world model
# Windows used to standardise the world model's targets (a sample, so huge datasets cost no memory).
DELTA_STATS_WINDOWS = 200_000


class DynamicsStage(TrainingStage):
    """The abstract world model p(s_{t+H} | s_t, z) on (s_t, z ~ q(z|τ), s_{t+H}), the latents
    detached (the VAE is not trained by it)."""

    name = "dynamics"
    creates = ("dynamics",)
    shaped_by = ("horizon", "latent_dim", "dynamics_widths")
    steps_field = "dynamics_steps"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        return {"dynamics": SkillWorldModel(spec.state_dim, config.latent_dim, widths=config.dynamics_widths)}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        c: Any = agent.config
        w = agent.data.windows
        self.dynamics = cast(SkillWorldModel, agent.modules()["dynamics"])
        self.mean, self.std = agent.posterior(progress_bar=agent.progress)
        # Windows whose end state is what a skill reaches: H steps later, or a termination. A
        # truncated episode's short tail windows stop early and would teach shorter skills.
        self.usable = np.flatnonzero((w.lengths == c.horizon) | w.dones)
        if len(self.usable) == 0:
            raise ValueError(
                f"No window of the dataset runs horizon={c.horizon} steps or ends in a termination, so "
                "the world model has no skill outcome to learn; choose a smaller horizon"
            )
        self.first, self.end = w.first_states, w.next_states
        sample = self.usable
        if len(self.usable) > DELTA_STATS_WINDOWS:
            sample = np.sort(self.rng.choice(self.usable, DELTA_STATS_WINDOWS, replace=False))
        self.dynamics.set_delta_stats(self.tensor(self.first[sample]), self.tensor(self.end[sample]))
        self.trained = [self.dynamics]
        self.optimizer = torch.optim.Adam(self.dynamics.parameters(), lr=c.dynamics_lr)

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c: Any = self.agent.config
        idx = self.take_shard(self.usable[self.rng.integers(0, len(self.usable), c.dynamics_batch_size)])
        eps = self.global_draw(self.normal_draw(c.latent_dim))
        z = self.gather(self.mean, idx) + self.gather(self.std, idx) * eps  # a fresh z ~ q(z|τ), no gradient
        out = self.dynamics.loss(self.gather(self.first, idx), z, self.gather(self.end, idx))
        return out["loss"], {"loss": out["loss"], "mse": out["mse"]}


# ---------------------------------------------------------------------------------------------- energy
class EnergyStage(TrainingStage):
    """The time-dependent energy model f(s, z_t, t) by contrastive energy prediction (QGPO): for
    states s_b with K prior samples each, w_bk = softmax_k(β · min_j Q_j(s_b, z^(k))) and
    loss = −mean_b Σ_k w_bk · log softmax_k f(s_b, z_t^(k), t_b), one t_b per state."""

    name = "energy"
    creates = ("energy",)
    shaped_by = ("energy_widths", "energy_beta", "energy_q_scale")
    steps_field = "energy_steps"

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        rates = DiffusionSchedule(config.diffusion_timesteps).sqrt_alphas_cumprod
        energy = LatentEnergyModel(
            config.latent_dim, spec.state_dim, config.energy_widths, signal_rates=rates
        )
        return {"energy": energy}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        c: Any = agent.config
        self.energy = cast(LatentEnergyModel, agent.modules()["energy"])
        self.schedule = DiffusionSchedule(c.diffusion_timesteps).to(agent.device)
        self.bank, self.q = build_energy_support(agent, agent.progress)
        self.observations = agent.data.windows.episodes.observations
        self.trained = [self.energy]
        self.optimizer = torch.optim.Adam(self.energy.parameters(), lr=c.energy_lr)

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c: Any = self.agent.config
        k, gen, device = c.energy_samples, self.generator, self.agent.device
        rows = self.take_shard(self.rng.integers(0, len(self.bank.unique_rows), c.energy_batch_size))
        states = self.tensor(np.asarray(self.observations[self.bank.unique_rows[rows]], np.float32))
        cond = self.agent.policy.prior.condition(states)
        z0 = self.agent.policy.prior.standardise(self.tensor(self.bank.values[rows].astype(np.float32)))
        # one noise level per state, shared by its K samples: the softmax compares like with like
        steps = self.schedule.num_timesteps
        t = self.global_draw(lambda n: torch.randint(0, steps, (n,), generator=gen, device=gen.device))
        t = t.to(device).repeat_interleave(k)
        noise = self.global_draw(lambda n: torch.randn((n, *z0.shape[1:]), generator=gen, device=gen.device))
        noise = noise.to(device)
        z_t = self.schedule.q_sample(z0.flatten(0, 1), t, noise.flatten(0, 1))
        f = self.energy(z_t, t, cond.repeat_interleave(k, dim=0)).view(len(rows), k)
        spread = c.energy_q_scale == "spread"
        value = contrastive_energy_loss(f, self.tensor(self.q[rows]), c.energy_beta, spread)
        return value, {"loss": value}


@torch.no_grad()
def build_energy_support(
    agent: LatentSkillAgent, progress_bar: bool = False, chunk_states: int | None = None
) -> tuple[CandidateBank, np.ndarray]:
    """K unguided prior samples per window's first state, and min_j Q_j of each: ``(bank, q)`` with
    ``q`` of shape ``(distinct states, K)`` in the bank's row order."""
    c: Any = agent.config
    w = agent.data.windows
    chunk_states = chunk_states or sampling_chunk(agent.device)
    bank = CandidateBank(
        w.first_states.rows(np.arange(len(w))), c.energy_samples, c.latent_dim, c.bank_ram_gb
    )
    q = np.empty((len(bank.unique_rows), c.energy_samples), np.float32)
    observations = w.episodes.observations
    prior, critic = agent.policy.prior.plain, cast(TwinCritic, agent.modules()["critic"])
    gen = torch.Generator(agent.device).manual_seed(c.seed + 11)
    for lo in tqdm(
        range(0, len(bank.unique_rows), chunk_states), desc="energy support", disable=not progress_bar
    ):
        states = torch.as_tensor(
            np.asarray(observations[bank.unique_rows[lo : lo + chunk_states]], np.float32),
            device=agent.device,
        )
        z = prior.sample(states, c.energy_samples, generator=gen)
        bank.values[lo : lo + len(states)] = z.cpu().numpy()
        # score what is stored (float16), so the weights belong to the latents the loss sees
        stored = torch.as_tensor(bank.values[lo : lo + len(states)].astype(np.float32), device=agent.device)
        q[lo : lo + len(states)] = q_candidates(critic, states, stored).cpu().numpy()
    return bank, q


__all__ = [
    "CandidateBank",
    "DynamicsStage",
    "EnergyStage",
    "GoalPriorStage",
    "PriorStage",
    "QStage",
    "SkillsStage",
    "TrainingStage",
    "build_candidate_bank",
    "build_energy_support",
]
