"""Priors: what proposes latent skills for a batch of states.

A prior turns ``states (B, S)`` (raw flat states, a tensor on the agent's device) into ``n`` latents
per state, ``(B, n, D)``. The modules it samples with belong to the stages that train them (the
skill VAE, the diffusion prior's denoiser, LatentDiffuser's energy model); a prior only holds
references to them and its sampling settings, bound from the config when it is built (so it is
rebuilt whenever those change). ``with_sampler(...)`` gives a copy with other settings (what
``sample_latents``' keywords reach); a prior without settings refuses them there.

- :class:`DiffusionPrior` — the latent diffusion prior p(z | s) (LDCQ, LDCP).
- :class:`GoalDiffusionPrior` — p(z | s, g), the goal taken from the observation's ``desired_goal``
  (LDGC), trained on hindsight goals.
- :class:`EnergyGuidedPrior` — p(z | s) · exp(β Q(s, z)) by energy guidance (LatentDiffuser).
- :class:`SkillVAEPrior` — the skill VAE's conditional Gaussian p(z | s0) (BCQH).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch
from torch import nn

from latent_skills.config import AgentConfig, DiffusionPriorConfig, LatentDiffuserConfig
from latent_skills.diffusion import DiffusionSchedule, Sampler, make_solver
from latent_skills.diffusion.solvers import solver_class
from latent_skills.nn import LatentDenoiser, LatentEnergyModel, SkillVAE, StateNormalizer, StudentDenoiser

from .spec import AgentSpec

if TYPE_CHECKING:
    from latent_skills.diffusion.sampling import EnergyGuidance

Modules = dict[str, nn.Module]

GOAL_PARTS = ("achieved_goal", "desired_goal")


class LatentPrior:
    """Proposes ``n`` latents per state. ``requires`` names the modules it samples with."""

    requires: ClassVar[tuple[str, ...]] = ("vae",)
    # what the prior conditions on: a trained prior is shared only between agents that agree
    condition_kind: ClassVar[str] = "state"

    def __init__(self, modules: Modules, config: AgentConfig, spec: AgentSpec, device: torch.device) -> None:
        self.modules, self.config, self.spec, self.device = modules, config, spec, device
        self.vae = cast(SkillVAE, modules["vae"])
        self.drawing_targets = False  # sampling for Q-learning's targets (see for_targets), not acting

    @classmethod
    def check_spec(cls, spec: AgentSpec) -> None:
        """Raise ValueError if this prior cannot condition on the dataset's observations."""

    def condition(self, states: torch.Tensor, goals: torch.Tensor | None = None) -> torch.Tensor:
        """What the prior conditions on: the normalised state."""
        return self.vae.normalizer(states)

    def null_condition(self, states: torch.Tensor) -> torch.Tensor | None:
        """What classifier-free guidance contrasts the condition with: None for the learned null
        token (the unconditional prior p(z)), or a partial condition."""
        return None

    @torch.no_grad()
    def sample(
        self, states: torch.Tensor, n: int, *, generator: torch.Generator, shared_noise: bool = False
    ) -> torch.Tensor:
        """``n`` latents per state, ``(B, n, D)``, with the settings bound at build."""
        raise NotImplementedError

    def with_sampler(self, **settings: Any) -> LatentPrior:
        """This prior sampled with other settings (``None`` leaves one as bound). A prior without
        sampling settings accepts none."""
        given = sorted(name for name, value in settings.items() if value is not None)
        if given:
            raise ValueError(f"{type(self).__name__} has no sampler settings: leave out {given}")
        return self

    def sampler_record(self) -> dict[str, Any]:
        """The sampling settings an evaluation records (none for a prior without them)."""
        return {}

    def standardise(self, z: torch.Tensor) -> torch.Tensor:
        """Latents on a common scale (for distances between them)."""
        return z

    @property
    def plain(self) -> LatentPrior:
        """The prior without guidance toward high Q (what training stages sample)."""
        return self

    @property
    def for_targets(self) -> LatentPrior:
        """The prior Q-learning's targets draw their candidates from: the plain prior, through a
        distilled student where ``distilled_for`` says so."""
        prior = copy.copy(self.plain)
        prior.drawing_targets = True
        return prior


class DiffusionPrior(LatentPrior):
    """The latent diffusion prior p(z | s): DDPM over standardised latents, sampled with the config's
    solver (``sampler``, ``sampler_steps``, ``ddpm_variance``, ``ddpm_extra_steps``) and
    classifier-free guidance ``guidance``, bound as a :class:`~latent_skills.diffusion.Sampler`."""

    requires: ClassVar[tuple[str, ...]] = ("vae", "latent_norm", "denoiser")
    # what with_sampler (sample_latents' keywords) may replace
    SETTINGS: ClassVar[tuple[str, ...]] = ("solver", "steps", "guidance", "energy_guidance")

    def __init__(self, modules: Modules, config: AgentConfig, spec: AgentSpec, device: torch.device) -> None:
        super().__init__(modules, config, spec, device)
        self.denoiser = cast(LatentDenoiser, modules["denoiser"])
        self.latent_norm = cast(StateNormalizer, modules["latent_norm"])
        settings = cast(DiffusionPriorConfig, config)
        self.schedule = DiffusionSchedule(settings.diffusion_timesteps).to(device)
        self.sampler = bind_sampler(settings)
        self.energy_scale = self.default_energy_scale()
        self.distilled = True  # a distilled student samples where distilled_for says (not when overridden)

    @classmethod
    def check_energy_scale(cls, scale: float | None) -> None:
        if scale:
            raise ValueError(
                f"energy_guidance={scale}: this prior has no energy model (LatentDiffuser's has); leave it out"
            )

    def default_energy_scale(self) -> float | None:
        return None

    def with_sampler(self, **settings: Any) -> LatentPrior:
        """This prior with the config's ``solver`` (``sampler``), ``steps`` (``sampler_steps``),
        ``guidance`` or ``energy_guidance`` replaced; any of them also turns a distilled student off
        (the student learned the bound settings)."""
        unknown = sorted(set(settings) - set(self.SETTINGS))
        if unknown:
            raise TypeError(
                f"unknown sampler settings {unknown}; a diffusion prior takes {list(self.SETTINGS)}"
            )
        solver, steps, guidance, energy_guidance = (settings.get(name) for name in self.SETTINGS)
        if solver is None and steps is None and guidance is None and energy_guidance is None:
            return self
        self.check_energy_scale(energy_guidance)
        prior = copy.copy(self)
        prior.sampler = bind_sampler(cast(DiffusionPriorConfig, self.config), solver, steps, guidance)
        prior.energy_scale = self.energy_scale if energy_guidance is None else energy_guidance
        prior.distilled = False
        return prior

    def sampler_record(self) -> dict[str, Any]:
        config = cast(DiffusionPriorConfig, self.config)
        return {"sampler": config.sampler, "sampler_steps": config.sampler_steps}

    @torch.no_grad()
    def sample(
        self, states: torch.Tensor, n: int, *, generator: torch.Generator, shared_noise: bool = False
    ) -> torch.Tensor:
        """``n`` latents per state, ``(B, n, D)``, unstandardised (tilted toward high Q with scale
        ``energy_guidance`` by a prior that has an energy model). Where a distilled student samples
        (``distilled_for``), it does so in its ``distill_nfe`` steps instead."""
        student = self.student() if self.distilled else None
        if student is not None:
            nfe = cast(Any, self.config).distill_nfe
            z = Sampler(make_solver("ddim", nfe))(
                student,
                self.schedule,
                self.condition(states),
                n,
                generator=generator,
                shared_noise=shared_noise,
            )
            return self.latent_norm.inverse(z)
        z = self.sampler(
            self.denoiser,
            self.schedule,
            self.condition(states),
            n,
            null_cond=self.null_condition(states),
            generator=generator,
            shared_noise=shared_noise,
            energy_guidance=self.score_correction(),
        )
        return self.latent_norm.inverse(z)

    def student(self) -> StudentDenoiser | None:
        """The distilled few-step sampler, where one finished distilling and ``distilled_for`` says it
        samples for this use ("all", "targets": Q's targets, "acting", "none")."""
        student = self.modules.get("student")
        use = getattr(self.config, "distilled_for", "none")
        wanted = ("all", "targets") if self.drawing_targets else ("all", "acting")
        if student is None or use not in wanted:
            return None
        student = cast(StudentDenoiser, student)
        return student if student.is_ready else None

    def score_correction(self) -> EnergyGuidance | None:
        """What energy guidance adds to the score: nothing, for a prior without an energy model."""
        return None

    def standardise(self, z: torch.Tensor) -> torch.Tensor:
        return self.latent_norm(z)


class GoalDiffusionPrior(DiffusionPrior):
    """p(z | s, g): the condition is the normalised state with its desired-goal part replaced by the
    goal, standardised with the *achieved*-goal statistics (g is an achieved goal in training; a
    dataset's own desired goals may be constant). Acting uses the observation's desired goal.

    With ``goal_dropout="goal"`` guidance drops only the goal: the condition ends in a goal-present
    flag, and its null is the state with a zero goal and flag 0, so w sharpens
    p(z | s, g)^w / p(z | s)^(w−1). ``"condition"`` (the default) drops the whole condition: p(z)
    in the denominator, the learned null token."""

    condition_kind = "state+goal"

    def __init__(self, modules: Modules, config: AgentConfig, spec: AgentSpec, device: torch.device) -> None:
        self.check_spec(spec)
        super().__init__(modules, config, spec, device)
        self.achieved = spec.state_layout.slice_of("achieved_goal")
        self.desired = spec.state_layout.slice_of("desired_goal")
        self.goal_flag = getattr(config, "goal_dropout", "condition") == "goal"

    @classmethod
    def check_spec(cls, spec: AgentSpec) -> None:
        flattener = spec.state_layout  # where the parts sit in the states the prior reads
        if all(flattener.has(part) for part in GOAL_PARTS):
            achieved, desired = (flattener.slice_of(part) for part in GOAL_PARTS)
            if achieved.stop - achieved.start == desired.stop - desired.start:
                return
        parts = ["/".join(s.path) or "a Box" for s in flattener.segments]
        raise ValueError(
            "A goal-conditioned prior needs goal-conditioned observations: a Dict with 'achieved_goal' and "
            "'desired_goal' of the same size (as gymnasium-robotics' PointMaze, AntMaze and Kitchen have); "
            f"this dataset's observation holds {parts}. Use LDCQ for a dataset without goals."
        )

    def condition(self, states: torch.Tensor, goals: torch.Tensor | None = None) -> torch.Tensor:
        """The normalised state, its desired-goal part replaced by ``goals`` (default: its own)."""
        goals = states[:, self.desired] if goals is None else goals
        norm = self.vae.normalizer
        cond = norm(states)
        cond[:, self.desired] = (goals - norm.mean[self.achieved]) / norm.std[self.achieved]
        return torch.cat([cond, cond.new_ones(len(cond), 1)], 1) if self.goal_flag else cond

    def null_condition(self, states: torch.Tensor) -> torch.Tensor | None:
        if not self.goal_flag:
            return None
        cond = self.vae.normalizer(states)
        cond[:, self.desired] = 0.0
        return torch.cat([cond, cond.new_zeros(len(cond), 1)], 1)


class EnergyGuidedPrior(DiffusionPrior):
    """p(z | s) · exp(β Q(s, z)): the diffusion prior's score plus ``energy_guidance`` · ∇_z f of the
    time-dependent energy model (0: the plain diffusion prior)."""

    requires: ClassVar[tuple[str, ...]] = (*DiffusionPrior.requires, "energy")

    @classmethod
    def check_energy_scale(cls, scale: float | None) -> None:
        """Any scale: this prior has an energy model."""

    def default_energy_scale(self) -> float | None:
        return float(cast(LatentDiffuserConfig, self.config).energy_guidance)

    def score_correction(self) -> EnergyGuidance | None:
        """``energy_scale`` · ∇_z f of the energy model (the config's ``energy_guidance`` unless
        ``with_sampler`` changed it; 0: the plain diffusion prior)."""
        energy = cast(LatentEnergyModel, self.modules["energy"])
        return energy.guidance(self.energy_scale) if self.energy_scale else None

    @property
    def plain(self) -> LatentPrior:
        return DiffusionPrior(self.modules, self.config, self.spec, self.device)


class SkillVAEPrior(LatentPrior):
    """The skill VAE's own conditional Gaussian prior p(z | s0) (its ``nn.GaussianPrior`` module),
    trained with the skills by the KL term. No solver, steps or guidance: those belong to diffusion
    priors."""

    def with_sampler(self, **settings: Any) -> LatentPrior:
        if any(value is not None for value in settings.values()):
            raise ValueError(
                "BCQH samples the VAE's Gaussian prior: solver, steps, guidance and energy_guidance apply "
                "to diffusion priors only (LDCQ); leave them out"
            )
        return self

    @torch.no_grad()
    def sample(
        self, states: torch.Tensor, n: int, *, generator: torch.Generator, shared_noise: bool = False
    ) -> torch.Tensor:
        mean, std = self.vae.prior(self.condition(states))
        # shared noise: every row draws the same standard-normal n × D block (deterministic acting)
        shape = (n, mean.shape[-1]) if shared_noise else (len(mean), n, mean.shape[-1])
        noise = torch.randn(shape, generator=generator, device=generator.device, dtype=mean.dtype).to(
            mean.device
        )
        return mean[:, None] + std[:, None] * noise


def bind_sampler(
    config: DiffusionPriorConfig,
    solver: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
) -> Sampler:
    """The config's sampling settings, with ``solver``, ``steps`` or ``guidance`` replaced where
    given. A solver that runs every timestep (DDPM) takes no steps and gets ``ddpm_extra_steps``."""
    name = solver or config.sampler
    every_timestep = solver_class(name).default_spacing is None
    return Sampler(
        make_solver(
            name, None if every_timestep else (steps or config.sampler_steps), variance=config.ddpm_variance
        ),
        guidance=config.guidance if guidance is None else guidance,
        extra_steps=config.ddpm_extra_steps if every_timestep else 0,
    )
