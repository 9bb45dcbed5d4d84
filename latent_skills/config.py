"""Typed agent configs, presets, and their JSON form.

A config is flat (every field has a unique name) so that ``Agent.from_dataset(..., name=value)`` and
``latent-skills train --set name=value`` reach every field the same way. Unknown names are an error
that suggests the nearest known name.
"""

from __future__ import annotations

import difflib
import math
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar

SOLVERS = ("ddpm", "ddim", "dpm-solver++")
# Fields that change how a trained agent acts, not what it learned: safe to change after training.
ACTING_FIELDS = (
    "guidance",
    "sampler",
    "sampler_steps",
    "ddpm_extra_steps",
    "ddpm_variance",
    "act_candidates",
    "exec_horizon",
)
DDPM_VARIANCES = ("beta", "posterior")
CANDIDATE_SOURCES = ("auto", "bank", "online")
# The string fields' allowed values (checked for every config class that has the field).
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "sampler": SOLVERS,
    "ddpm_variance": DDPM_VARIANCES,
    "candidate_source": CANDIDATE_SOURCES,
    "goal_dropout": ("condition", "goal"),
    "energy_q_scale": ("spread", "raw"),
    "per_beta_schedule": ("stage", "steps"),
    "success_cut": ("bootstrap", "terminal", "hold"),
    "skill_windows": ("all", "full"),
    "distilled_for": ("all", "targets", "acting", "none"),
}


class ConfigError(ValueError):
    """A config field that does not exist, has the wrong type, or an invalid value."""


def default_horizon(dataset_id: str | None) -> int:
    """The paper's H per task family: mazes 30, kitchen 20, everything else (locomotion) 10."""
    name = (dataset_id or "").lower()
    if "kitchen" in name:
        return 20
    if "maze" in name:
        return 30
    return 10


@dataclass
class AgentConfig:
    """Fields every latent-skill agent shares: skills (stage 1) and the diffusion prior (stage 2)."""

    # --- data ---
    horizon: int = 30  # H: steps per skill window (paper: mazes 30, kitchen 20, locomotion 10)
    gamma: float = 0.995
    # --- stage 1: skill β-VAE ---
    latent_dim: int = 16
    vae_hidden: int = 256
    vae_gru_layers: int = 2
    vae_beta: float = 0.05
    skills_lr: float = 5e-5
    skills_batch_size: int = 128
    skills_steps: int = 100_000
    # the windows the VAE and the prior learn from: "all", or "full" (H steps only: an episode's last
    # H − 1 windows are shorter, yet acting runs every skill for exec_horizon steps); Q uses all.
    # "all" scored far higher on UMaze (BENCHMARKS.md, "Short windows")
    skill_windows: str = "all"
    # --- stage 2: latent diffusion prior p(z | s0) ---
    diffusion_timesteps: int = 200  # T (paper §5.4; its appendix table says 500)
    denoiser_widths: tuple[int, ...] = (128, 32, 16, 8, 16, 32, 128)
    prior_lr: float = 1e-4
    prior_batch_size: int = 32
    prior_steps: int = 300_000
    prior_cond_drop: float = 0.1
    prior_snr_clip: float = 5.0
    # --- sampling latents (acting, the candidate bank, on-the-fly targets) ---
    guidance: float = 1.0  # classifier-free guidance weight w: 0 unconditional, 1 conditional
    sampler: str = "dpm-solver++"
    sampler_steps: int = 10
    # "Diffusion-X" steps at t = 0 after DDPM (the paper uses 10); off by default: repeating the t = 0
    # prediction widened the latents (BENCHMARKS.md, "Settings chosen by measurement")
    ddpm_extra_steps: int = 0
    # σ_t² of each DDPM step: "beta" (β_t, the paper's Algorithm 1) or "posterior" (β̃_t, narrower)
    ddpm_variance: str = "beta"
    # --- acting ---
    act_candidates: int = 500
    exec_horizon: int | None = None  # replan every exec_horizon low-level steps (≤ H; None: H)
    # --- run ---
    seed: int = 0
    grad_clip: float = 10.0

    # Fields a trained agent may change with set_acting; variants add their own acting fields.
    ACTING: ClassVar[tuple[str, ...]] = ACTING_FIELDS
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}}

    @property
    def replan_every(self) -> int:
        return self.horizon if self.exec_horizon is None else self.exec_horizon

    def validate(self) -> None:
        """Check every field against its allowed range (:data:`FIELD_RANGES`, :func:`field_range`).

        Generic rules: every float field is finite, every ``*_widths`` tuple is non-empty with
        positive entries, every ``*_lr``, ``*_batch_size`` and ``*_steps`` field is > 0 (except
        ``ddpm_extra_steps`` ≥ 0). Rules that tie fields together follow.
        """
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name), hints[f.name])
        if len(self.denoiser_widths) % 2 == 0:
            raise ConfigError(
                "denoiser_widths must have an odd number of widths (down blocks, bottleneck, up blocks), "
                f"got {list(self.denoiser_widths)!r}"
            )
        for name, choices in FIELD_CHOICES.items():
            value = getattr(self, name, choices[0])
            if value not in choices:
                raise ConfigError(f"{name} must be one of {choices}, got {value!r}")
        if self.sampler_steps > self.diffusion_timesteps:
            raise ConfigError(
                f"sampler_steps ({self.sampler_steps}) exceeds diffusion_timesteps ({self.diffusion_timesteps})"
            )
        if self.exec_horizon is not None and not 0 < self.exec_horizon <= self.horizon:
            raise ConfigError(
                f"exec_horizon ({self.exec_horizon}) must be in [1, horizon ({self.horizon})]: a skill is "
                "decoded for at most H steps"
            )
        if getattr(self, "success_cut", None) == "hold" and self.gamma >= 1.0:
            raise ConfigError(
                "success_cut='hold' values the goal at r_T / (1 − gamma), which needs gamma < 1: "
                "lower gamma or choose success_cut='terminal'"
            )

    # --- construction and JSON ---
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides: Any) -> AgentConfig:
        if preset not in cls.PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; {cls.__name__} has {sorted(cls.PRESETS)}")
        values = {**cls.PRESETS[preset], **overrides}
        preset_exec = cls.PRESETS[preset].get("exec_horizon")
        horizon = _coerce("horizon", values.get("horizon", cls.horizon), int)
        if "exec_horizon" not in overrides and preset_exec is not None and preset_exec > horizon:
            values["exec_horizon"] = None  # the preset's replanning interval exceeds this task's H
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AgentConfig:
        known = {f.name: f for f in fields(cls)}
        for name in values:
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
                raise ConfigError(
                    f"{cls.__name__} has no field {name!r}.{suggestion} Fields: {', '.join(known)}"
                )
        hints = typing.get_type_hints(cls)
        config = cls(**{name: _coerce(name, value, hints[name]) for name, value in values.items()})
        config.validate()
        return config

    @classmethod
    def from_saved(cls, values: dict[str, Any], source: str = "the checkpoint") -> AgentConfig:
        """A config written by ``to_dict`` (a checkpoint's ``config.json``), strictly.

        Unlike :meth:`from_dict` (user overrides on top of defaults), a saved config must name every
        field: a field it lacks is *not* filled with today's default, because the agent was trained
        and tuned with values that may differ (an older quick agent without ``act_candidates`` and
        ``exec_horizon`` would otherwise act with the paper's 500 candidates every 30 steps).
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{source}'s config must be a JSON object, got {type(values).__name__}")
        known = cls.field_names()
        missing = [name for name in known if name not in values]
        if missing:
            defaults = {f.name: _jsonable(f.default) for f in fields(cls) if f.name in missing}
            raise ConfigError(
                f"{source}'s config lacks fields {missing}; it was written by an older latent-skills: "
                f"add the values the agent was trained with to its config.json (today's {cls.__name__} "
                f"defaults would be {defaults}, which may not be what it was trained and tuned with)"
            )
        unknown = [name for name in values if name not in known]
        if unknown:
            raise ConfigError(
                f"{source}'s config has fields {unknown} that {cls.__name__} does not know; it was "
                "written by a newer latent-skills: upgrade latent-skills to load it"
            )
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    def replace(self, **changes: Any) -> AgentConfig:
        return type(self).from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class Range:
    """An interval of allowed values: ``low``/``high`` ``None`` for unbounded, ``*_open`` to exclude
    the bound. ``str`` reads ``> 0``, ``≥ 0``, ``in (0, 1]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None and self.low is not None:
            return f"{'>' if self.low_open else '≥'} {_number(self.low)}"
        if self.low is None and self.high is not None:
            return f"{'<' if self.high_open else '≤'} {_number(self.high)}"
        if self.low is None:
            return "any number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        assert self.high is not None  # both bounds are set here
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
UNIT_OPEN_TOP = Range(0.0, 1.0, high_open=True)

#: Allowed values of every numeric config field that the suffix rules of :func:`field_range`
#: (``*_lr``, ``*_batch_size``, ``*_steps`` > 0) do not cover. A new numeric field needs an entry
#: here or a covered suffix (tests/test_config.py checks every config class).
FIELD_RANGES: dict[str, Range] = {
    # AgentConfig
    "horizon": POSITIVE,
    "gamma": Range(0.0, 1.0, low_open=True),
    "latent_dim": POSITIVE,
    "vae_hidden": POSITIVE,
    "vae_gru_layers": POSITIVE,
    "vae_beta": NON_NEGATIVE,
    "diffusion_timesteps": POSITIVE,
    "prior_cond_drop": UNIT_OPEN_TOP,
    "prior_snr_clip": POSITIVE,
    "guidance": NON_NEGATIVE,
    "ddpm_extra_steps": NON_NEGATIVE,
    "act_candidates": POSITIVE,
    "exec_horizon": POSITIVE,  # and ≤ horizon (validate)
    # numpy's and torch's usual seed range; seed · 1000 + stage index must stay < 2^64 for torch
    "seed": Range(0, 2**32, high_open=True),
    "grad_clip": POSITIVE,
    # LDCQConfig (and BCQH, LatentDiffuser)
    "q_polyak": UNIT_OPEN_TOP,
    "q_candidates": POSITIVE,
    "bank_ram_gb": POSITIVE,
    "per_alpha": NON_NEGATIVE,
    "per_beta_start": Range(0.0, 1.0),
    "per_beta_growth": NON_NEGATIVE,
    "per_beta_every": POSITIVE,
    "distill_steps": NON_NEGATIVE,  # 0: no distilled sampler
    "distill_nfe": POSITIVE,  # and ≤ diffusion_timesteps (validate)
    # LDGCConfig
    "hindsight_horizons": POSITIVE,  # and hindsight_horizons · horizon ≥ 1 (validate)
    # LDCPConfig
    "plan_candidates": POSITIVE,
    "plan_depth": POSITIVE,
    # LatentDiffuserConfig
    "energy_beta": NON_NEGATIVE,
    "energy_samples": Range(2),  # the contrastive loss compares samples
    "energy_guidance": NON_NEGATIVE,
}


def field_range(name: str) -> Range | None:
    """The allowed values of numeric field ``name`` (``None``: no rule, e.g. a string field)."""
    if name in FIELD_RANGES:
        return FIELD_RANGES[name]
    if name.endswith(("_lr", "_batch_size", "_steps")):
        return POSITIVE
    return None


def _check_field(name: str, value: Any, hint: Any) -> None:
    """Type-generic checks of one field's value, then its range."""
    if value is None:
        if type(None) not in typing.get_args(hint):
            raise ConfigError(f"{name} must not be None")
        return
    if isinstance(value, tuple):
        if name.endswith("_widths") and (not value or min(value) <= 0):
            raise ConfigError(
                f"{name} must be a non-empty list of layer widths, each > 0, got {list(value)!r}"
            )
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    allowed = field_range(name)
    if isinstance(value, float) and not (math.isfinite(value) and (allowed is None or value in allowed)):
        raise ConfigError(
            f"{name} must be a finite number{'' if allowed is None else f' {allowed}'}, got {value!r}"
        )
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type; accept strings from the command line."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return _coerce(name, value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list of ints, got {value!r}")
        return tuple(_coerce(name, v, int) for v in value)
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an int, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            as_float = None
        if as_float is not None and as_float.is_integer():
            return int(as_float)
    elif hint is float:
        if not isinstance(value, bool):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
    elif hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


@dataclass
class LDCQConfig(AgentConfig):
    """LDCQ adds stage 3: diffusion-constrained clipped double Q-learning over (s, z)."""

    q_lr: float = 5e-4
    q_batch_size: int = 128
    q_steps: int = 300_000
    q_polyak: float = 0.995  # target ← polyak · target + (1 − polyak) · online
    q_widths: tuple[int, ...] = (256, 256, 256, 32)
    q_candidates: int = 500  # n prior samples per next state in the target's max
    # "bank": sampled once per distinct next state after stage 2; "online": per batch; "auto": a bank
    # when the Q stage draws at least as many windows as there are next states, else online
    candidate_source: str = "auto"
    bank_ram_gb: float = 4.0  # past this the bank is a memory-mapped file
    per_alpha: float = 0.7
    per_beta_start: float = 0.3
    # PER's importance-sampling exponent β: "stage" anneals it linearly from per_beta_start to 1 over
    # the Q stage's steps, whatever their number; "steps" is the LDCQ code's rule (per_beta_growth
    # added every per_beta_every steps, up to 1), which leaves β at 0.33 after the quick preset's 5,000
    per_beta_schedule: str = "stage"
    per_beta_growth: float = 0.03
    per_beta_every: int = 3000
    # The value after an episode cut at success (truncated right after a step with positive reward,
    # e.g. PointMaze's goal-conditioned data): "bootstrap" Q(s_T, ·) like any truncation, although no
    # window starts at s_T; "terminal" nothing after the cut; "hold" the reward of the last step
    # forever, r_T / (1 − γ), the value of staying at the goal on an env that pays every step there
    success_cut: str = "bootstrap"
    # --- a few-step sampler distilled from the prior (stage "distill", after the prior) ---
    # gradient steps distilling the prior's solver (sampler, sampler_steps, guidance) into a student
    # that samples in distill_nfe denoiser passes; 0: no student, the bank and acting run the solver
    distill_steps: int = 0
    distill_nfe: int = 1
    distill_batch_size: int = 256
    distill_lr: float = 1e-4
    # what samples through a distilled student: "all" (acting and Q's targets: the bank or on-the-fly
    # candidates), "targets" (Q's targets only), "acting" (acting only) or "none" (the prior's solver)
    distilled_for: str = "all"

    ACTING: ClassVar[tuple[str, ...]] = ACTING_FIELDS + ("distilled_for",)

    def validate(self) -> None:
        super().validate()
        if self.distill_steps > 0 and self.sampler == "ddpm":
            raise ConfigError(
                "distill_steps > 0 distils a deterministic solver (each noise lands on one latent); "
                "sampler='ddpm' draws fresh noise at every step: choose sampler='dpm-solver++' or 'ddim'"
            )
        if self.distill_nfe > self.diffusion_timesteps:
            raise ConfigError(
                f"distill_nfe ({self.distill_nfe}) exceeds diffusion_timesteps ({self.diffusion_timesteps})"
            )


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
}


def quick_preset(config_class: type[AgentConfig], **extra: Any) -> dict[str, Any]:
    """The quick preset's values for the fields ``config_class`` has, plus the variant's ``extra``."""
    names = set(config_class.field_names())
    return {**{k: v for k, v in QUICK.items() if k in names}, **extra}


AgentConfig.PRESETS = {"paper": {}, "quick": quick_preset(AgentConfig)}
LDCQConfig.PRESETS = {"paper": {}, "quick": quick_preset(LDCQConfig)}


# ---- variant configs (LDGC, LDCP, BCQH, LatentDiffuser): one dataclass each, above this line's end marker ----
@dataclass
class LDGCConfig(AgentConfig):
    """LDGC: the prior p(z | s0, goal) learns from hindsight goals; no Q-function."""

    # Classifier-free guidance toward the goal: w > 1 sharpens p(z | s, g) beyond the conditional.
    guidance: float = 2.0
    # Acting takes the medoid of this many guided samples: one fixed-noise sample (deterministic=True)
    # can sit in a tail of p(z | s, g) at every choice.
    act_candidates: int = 16
    # k (steps from s0 to its hindsight goal) ~ Geometric with mean hindsight_horizons · H, clipped at
    # the episode's last state: mostly goals the next few skills reach, with a tail of far ones; unlike
    # uniform-over-the-rest, it does not depend on episode length.
    hindsight_horizons: float = 4.0
    # What guidance's dropout removes: "condition" (state and goal: w sharpens p(z|s,g)^w / p(z)^(w-1))
    # or "goal" (p(z|s,g)^w / p(z|s)^(w-1)); "goal" did worse at every w on the test toy
    # (BENCHMARKS.md, "Settings chosen by measurement"), so it is an option, not the default
    goal_dropout: str = "condition"
    # (how w, the candidates and hindsight_horizons were chosen: BENCHMARKS.md, "Settings chosen by
    # measurement")

    def validate(self) -> None:
        super().validate()
        if not self.hindsight_horizons * self.horizon >= 1.0:
            raise ConfigError(
                f"hindsight_horizons · horizon must be ≥ 1 step, got {self.hindsight_horizons} · {self.horizon}"
            )


LDGCConfig.PRESETS = {"paper": {}, "quick": quick_preset(LDGCConfig)}


@dataclass
class LDCPConfig(AgentConfig):
    """LDCP adds stage 3, a temporally abstract world model p(s_{t+H} | s_t, z), and plans with it:
    ``plan_candidates`` prior samples per state, searched ``plan_depth`` skills deep."""

    # The paper (appendix B) gives no world-model sizes: an MLP as wide as the critics, trained as
    # long as the skill VAE.
    dynamics_widths: tuple[int, ...] = (256, 256, 256)
    dynamics_lr: float = 3e-4
    dynamics_batch_size: int = 256
    dynamics_steps: int = 100_000
    # n and d: the paper plans at depth 2 (H = 30 → 60 steps ahead) and does not state n; the tree
    # has n^d leaves per state, so n is kept below LDCQ's 500 candidates.
    plan_candidates: int = 64
    plan_depth: int = 2

    ACTING: ClassVar[tuple[str, ...]] = ACTING_FIELDS + ("plan_candidates", "plan_depth")
    MAX_PLAN_LEAVES: ClassVar[int] = 1_000_000

    def validate(self) -> None:
        super().validate()
        leaves = self.plan_candidates**self.plan_depth
        if leaves > self.MAX_PLAN_LEAVES:
            raise ConfigError(
                f"plan_candidates ** plan_depth = {leaves} plan leaves per state (limit "
                f"{self.MAX_PLAN_LEAVES}); lower plan_candidates or plan_depth"
            )


# quick plans one skill deep: a briefly trained world model compounds its error from predicted
# states (BENCHMARKS.md, "Settings chosen by measurement")
LDCPConfig.PRESETS = {
    "paper": {},
    "quick": quick_preset(
        LDCPConfig,
        dynamics_widths=(128, 128),
        dynamics_lr=1e-3,
        dynamics_steps=3000,
        plan_candidates=16,
        plan_depth=1,
    ),
}


@dataclass
class BCQHConfig(LDCQConfig):
    """BCQ-H (paper §5.3): LDCQ's Q-learning with candidates from the skill VAE's Gaussian prior
    p(z | s0) instead of the diffusion prior, so there is no prior stage (its fields, and the
    distillation's, are unused)."""


BCQHConfig.PRESETS = {"paper": {}, "quick": quick_preset(BCQHConfig)}


@dataclass
class LatentDiffuserConfig(LDCQConfig):
    """LatentDiffuser adds stage 4, a time-dependent energy model trained by contrastive energy
    prediction, and samples latents from p(z | s) · exp(β Q(s, z)) by energy-guided diffusion.

    The paper text here (papers/001) gives no numbers for the energy model; these are the defaults of
    QGPO (Lu et al. 2023), whose contrastive energy prediction it uses: β = 3, K = 16 support samples
    per state (32 on AntMaze), lr 3e-4, batch 256, four 256-wide SiLU layers, 100 epochs of 10k steps,
    guidance scale 1.
    """

    energy_beta: float = 3.0  # β: inverse temperature of exp(β Q) (0: the prior itself)
    # "spread": β multiplies Q standardised over each state's K samples, so the weights keep their
    # shape as Q grows; "raw": β · Q as QGPO writes it (agents saved before format 3)
    energy_q_scale: str = "spread"
    energy_samples: int = 16  # K prior samples per state in the contrastive loss
    energy_lr: float = 3e-4
    energy_batch_size: int = 256  # states per batch (each with its K samples)
    energy_steps: int = 1_000_000
    energy_widths: tuple[int, ...] = (256, 256, 256, 256)
    energy_guidance: float = 1.0  # s: the score gets s · ∇f (0: LDCQ's unguided candidates)
    # The paper executes one sample of the guided prior; more candidates take the argmax of Q.
    act_candidates: int = 1

    ACTING: ClassVar[tuple[str, ...]] = ACTING_FIELDS + ("energy_guidance",)


# quick: LDCQ's argmax over 500 candidates, now guided ones, and an energy model sized like its critic
LatentDiffuserConfig.PRESETS = {
    "paper": {},
    "quick": quick_preset(
        LatentDiffuserConfig,
        act_candidates=500,
        energy_widths=(128, 128),
        energy_lr=1e-3,
        energy_steps=3000,
    ),
}

# ---- end of variant configs ----

__all__ = [
    "ACTING_FIELDS",
    "CANDIDATE_SOURCES",
    "QUICK",
    "SOLVERS",
    "AgentConfig",
    "BCQHConfig",
    "ConfigError",
    "LDCPConfig",
    "LDCQConfig",
    "LDGCConfig",
    "LatentDiffuserConfig",
    "default_horizon",
    "quick_preset",
]
