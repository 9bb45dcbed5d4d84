"""Every config field, declared once, grouped by the part of the agent that reads it.

A field's :func:`~latent_skills.config.fields.setting` gives its default, its allowed range or
choices, whether it is an acting setting, and a one-line doc. The agents' configs
(:mod:`latent_skills.config.agents`) are made of these groups; a config lists its fields in the order
they are declared here. Numbers without a source are the LDCQ paper's (papers/000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from latent_skills.diffusion.solvers import SOLVERS

from .fields import NON_NEGATIVE, POSITIVE, UNIT_OPEN_TOP, ConfigError, Range, declare, setting

DDPM_VARIANCES = ("beta", "posterior")
CANDIDATE_SOURCES = ("auto", "bank", "online")


class SettingsGroup:
    """A group's rules that tie its fields together: each group's ``validate`` calls ``super()``."""

    def validate(self) -> None:
        """Nothing to check beyond each field's own range (see ``AgentConfig.validate``)."""


@dataclass
class SkillSettings(SettingsGroup):
    """The data windows and the skill β-VAE (stage 1, ``SkillsStage``)."""

    horizon: int = setting(
        30, "H: steps per skill window (paper: mazes 30, kitchen 20, locomotion 10)", range=POSITIVE
    )
    gamma: float = setting(
        0.995,
        "discount γ (Q-learning's γ^H, the windows' discounted returns)",
        range=Range(0.0, 1.0, low_open=True),
    )
    latent_dim: int = setting(16, "size of the latent skill z", range=POSITIVE)
    vae_hidden: int = setting(256, "width of the VAE's GRU and MLPs", range=POSITIVE)
    vae_gru_layers: int = setting(2, "layers of the encoder's bidirectional GRU", range=POSITIVE)
    vae_beta: float = setting(0.05, "β: weight of KL(q(z|τ) ‖ p(z|s0)) in the VAE loss", range=NON_NEGATIVE)
    skills_lr: float = setting(5e-5, "the VAE's learning rate", range=POSITIVE)
    skills_batch_size: int = setting(128, "windows per VAE batch", range=POSITIVE)
    skills_steps: int = setting(100_000, "gradient steps of the skills stage", range=POSITIVE)
    # "full" keeps H-step windows only: an episode's last H − 1 windows are shorter, yet acting runs
    # every skill for exec_horizon steps; "all" scored far higher on UMaze (BENCHMARKS.md, "Short windows")
    skill_windows: str = setting(
        "all",
        "windows the VAE and the prior learn from: 'all' or 'full' (H steps only; Q uses all)",
        choices=("all", "full"),
    )


@dataclass
class DiffusionPriorSettings(SettingsGroup):
    """The latent diffusion prior p(z | s0) (stage 2, ``PriorStage``)."""

    diffusion_timesteps: int = setting(200, "T (paper §5.4; its appendix table says 500)", range=POSITIVE)
    denoiser_widths: tuple[int, ...] = setting(
        (128, 32, 16, 8, 16, 32, 128),
        "the denoiser's residual block widths (odd count: down, bottleneck, up)",
    )
    prior_lr: float = setting(1e-4, "the denoiser's learning rate", range=POSITIVE)
    prior_batch_size: int = setting(32, "windows per prior batch", range=POSITIVE)
    prior_steps: int = setting(300_000, "gradient steps of the prior stage", range=POSITIVE)
    prior_cond_drop: float = setting(
        0.1, "probability of dropping the condition (classifier-free guidance)", range=UNIT_OPEN_TOP
    )
    prior_snr_clip: float = setting(5.0, "the loss weight min(SNR(t), clip)", range=POSITIVE)

    def validate(self) -> None:
        if len(self.denoiser_widths) % 2 == 0:
            raise ConfigError(
                "denoiser_widths must have an odd number of widths (down blocks, bottleneck, up blocks), "
                f"got {list(self.denoiser_widths)!r}"
            )
        super().validate()


@dataclass
class SamplingSettings(SettingsGroup):
    """How the diffusion prior is sampled (acting, the candidate bank, on-the-fly targets): bound to
    the prior when it is built (``DiffusionPrior``)."""

    guidance: float = setting(
        1.0,
        "classifier-free guidance weight w: 0 unconditional, 1 conditional",
        range=NON_NEGATIVE,
        acting=True,
    )
    sampler: str = setting(
        "dpm-solver++", "the solver (latent_skills.diffusion.solvers.SOLVERS)", choices=SOLVERS, acting=True
    )
    sampler_steps: int = setting(
        10, "denoiser evaluations of a few-step solver (DDPM runs all T)", range=POSITIVE, acting=True
    )
    # the paper uses 10; off by default: repeating the t = 0 prediction widened the latents
    # (BENCHMARKS.md, "Settings chosen by measurement")
    ddpm_extra_steps: int = setting(
        0, "'Diffusion-X' steps at t = 0 after DDPM", range=NON_NEGATIVE, acting=True
    )
    ddpm_variance: str = setting(
        "beta",
        "σ_t² of each DDPM step: 'beta' (β_t, the paper's Algorithm 1) or 'posterior' (β̃_t, narrower)",
        choices=DDPM_VARIANCES,
        acting=True,
    )

    def validate(self) -> None:
        timesteps = getattr(self, "diffusion_timesteps", None)
        if timesteps is not None and self.sampler_steps > timesteps:
            raise ConfigError(
                f"sampler_steps ({self.sampler_steps}) exceeds diffusion_timesteps ({timesteps})"
            )
        super().validate()


@dataclass
class ActingSettings(SettingsGroup):
    """How a trained agent chooses and runs skills (``SkillPolicy``, the selectors)."""

    act_candidates: int = setting(500, "prior samples per choice of a skill", range=POSITIVE, acting=True)
    exec_horizon: int | None = setting(
        None, "replan every exec_horizon low-level steps (≤ H; None: H)", range=POSITIVE, acting=True
    )

    def validate(self) -> None:
        horizon = getattr(self, "horizon", None)
        if self.exec_horizon is not None and horizon is not None and not 0 < self.exec_horizon <= horizon:
            raise ConfigError(
                f"exec_horizon ({self.exec_horizon}) must be in [1, horizon ({horizon})]: a skill is "
                "decoded for at most H steps"
            )
        super().validate()


@dataclass
class RunSettings(SettingsGroup):
    """The training run (``agents/training.py``)."""

    # numpy's and torch's usual seed range; seed · 1000 + stage index must stay < 2^64 for torch
    seed: int = setting(
        0, "seeds every stage's weights, batches and the acting noise", range=Range(0, 2**32, high_open=True)
    )
    grad_clip: float = setting(10.0, "gradient norm clip of every stage", range=POSITIVE)


@dataclass
class QSettings(SettingsGroup):
    """Diffusion-constrained clipped double Q-learning over (s, z) (stage 3, ``QStage``)."""

    q_lr: float = setting(5e-4, "the critics' learning rate", range=POSITIVE)
    q_batch_size: int = setting(128, "transitions per Q batch", range=POSITIVE)
    q_steps: int = setting(300_000, "gradient steps of the Q stage", range=POSITIVE)
    q_polyak: float = setting(0.995, "target ← polyak · target + (1 − polyak) · online", range=UNIT_OPEN_TOP)
    q_widths: tuple[int, ...] = setting((256, 256, 256, 32), "the critics' hidden widths")
    q_candidates: int = setting(500, "n prior samples per next state in the target's max", range=POSITIVE)
    # "auto": a bank when the Q stage draws at least as many windows as there are next states
    candidate_source: str = setting(
        "auto",
        "the target's candidates: 'bank' (sampled once per next state), 'online' (per batch) or 'auto'",
        choices=CANDIDATE_SOURCES,
    )
    bank_ram_gb: float = setting(
        4.0, "past this size the candidate bank is a memory-mapped file", range=POSITIVE
    )
    per_alpha: float = setting(0.7, "prioritized replay's α", range=NON_NEGATIVE)
    per_beta_start: float = setting(
        0.3, "prioritized replay's importance-sampling β at the start", range=Range(0.0, 1.0)
    )
    # "steps" leaves β at 0.33 after the quick preset's 5,000 steps
    per_beta_schedule: str = setting(
        "stage",
        "β's growth: 'stage' (linear to 1 over the Q stage) or 'steps' (the LDCQ code's rule below)",
        choices=("stage", "steps"),
    )
    per_beta_growth: float = setting(
        0.03, "β added every per_beta_every steps ('steps' schedule)", range=NON_NEGATIVE
    )
    per_beta_every: int = setting(3000, "steps between β's growths ('steps' schedule)", range=POSITIVE)
    # after an episode cut at success (truncated right after a positive reward, e.g. PointMaze's
    # goal-conditioned data): "bootstrap" Q(s_T, ·) like any truncation, although no window starts at
    # s_T; "terminal" nothing; "hold" r_T / (1 − γ), staying at the goal on an env that pays every step
    success_cut: str = setting(
        "bootstrap",
        "the value after an episode cut at success: 'bootstrap', 'terminal' or 'hold'",
        choices=("bootstrap", "terminal", "hold"),
    )

    def validate(self) -> None:
        if self.success_cut == "hold" and getattr(self, "gamma", 0.0) >= 1.0:
            raise ConfigError(
                "success_cut='hold' values the goal at r_T / (1 − gamma), which needs gamma < 1: "
                "lower gamma or choose success_cut='terminal'"
            )
        super().validate()


@dataclass
class DistillSettings(SettingsGroup):
    """A few-step sampler distilled from the prior's solver (stage "distill", ``DistillStage``)."""

    distill_steps: int = setting(
        0,
        "gradient steps distilling the solver (sampler, sampler_steps, guidance) into a student; 0: none",
        range=NON_NEGATIVE,
    )
    distill_nfe: int = setting(
        1, "the student's denoiser passes per sample (≤ diffusion_timesteps)", range=POSITIVE
    )
    distill_batch_size: int = setting(256, "states per distillation batch", range=POSITIVE)
    distill_lr: float = setting(1e-4, "the student's learning rate", range=POSITIVE)
    distilled_for: str = setting(
        "all",
        "what samples through the student: 'all', 'targets' (Q's), 'acting' or 'none'",
        choices=("all", "targets", "acting", "none"),
        acting=True,
    )

    def validate(self) -> None:
        if self.distill_steps > 0 and getattr(self, "sampler", None) == "ddpm":
            raise ConfigError(
                "distill_steps > 0 distils a deterministic solver (each noise lands on one latent); "
                "sampler='ddpm' draws fresh noise at every step: choose sampler='dpm-solver++' or 'ddim'"
            )
        timesteps = getattr(self, "diffusion_timesteps", None)
        if timesteps is not None and self.distill_nfe > timesteps:
            raise ConfigError(f"distill_nfe ({self.distill_nfe}) exceeds diffusion_timesteps ({timesteps})")
        super().validate()


@dataclass
class GoalSettings(SettingsGroup):
    """LDGC's goal-conditioned prior p(z | s0, g) trained on hindsight goals (``GoalPriorStage``)."""

    # k (steps from s0 to its goal) ~ Geometric with mean hindsight_horizons · H, clipped at the
    # episode's end: mostly goals the next few skills reach, with a tail of far ones; unlike
    # uniform-over-the-rest it does not depend on episode length
    hindsight_horizons: float = setting(
        4.0, "mean distance to a hindsight goal, in skills (× H steps)", range=POSITIVE
    )
    # "goal" did worse at every w on the test toy (BENCHMARKS.md, "Settings chosen by measurement")
    goal_dropout: str = setting(
        "condition",
        "what guidance's dropout removes: 'condition' (state and goal) or 'goal'",
        choices=("condition", "goal"),
    )

    def validate(self) -> None:
        if not self.hindsight_horizons * getattr(self, "horizon", 1) >= 1.0:
            raise ConfigError(
                "hindsight_horizons · horizon must be ≥ 1 step, got "
                f"{self.hindsight_horizons} · {getattr(self, 'horizon', 1)}"
            )
        super().validate()


@dataclass
class PlanningSettings(SettingsGroup):
    """LDCP's world model p(s_{t+H} | s_t, z) (``DynamicsStage``) and its tree search (``TreeSearch``)."""

    MAX_PLAN_LEAVES: ClassVar[int] = 1_000_000

    # the paper (appendix B) gives no sizes: an MLP as wide as the critics, trained as long as the VAE
    dynamics_widths: tuple[int, ...] = setting((256, 256, 256), "the world model's hidden widths")
    dynamics_lr: float = setting(3e-4, "the world model's learning rate", range=POSITIVE)
    dynamics_batch_size: int = setting(256, "windows per world-model batch", range=POSITIVE)
    dynamics_steps: int = setting(100_000, "gradient steps of the dynamics stage", range=POSITIVE)
    # the paper plans at depth 2 (H = 30: 60 steps ahead) and does not state n; the tree has n^d
    # leaves per state, so n is kept below LDCQ's 500 candidates
    plan_candidates: int = setting(
        64, "n: prior samples per state of the search", range=POSITIVE, acting=True
    )
    plan_depth: int = setting(
        2, "d: skills searched ahead (n^d leaves per state)", range=POSITIVE, acting=True
    )

    def validate(self) -> None:
        leaves = self.plan_candidates**self.plan_depth
        if leaves > self.MAX_PLAN_LEAVES:
            raise ConfigError(
                f"plan_candidates ** plan_depth = {leaves} plan leaves per state (limit "
                f"{self.MAX_PLAN_LEAVES}); lower plan_candidates or plan_depth"
            )
        super().validate()


@dataclass
class EnergySettings(SettingsGroup):
    """LatentDiffuser's time-dependent energy model (stage 4, ``EnergyStage``) and its guidance
    (``EnergyGuidedPrior``). Papers/001 gives no numbers: these are QGPO's (Lu et al. 2023)."""

    energy_beta: float = setting(
        3.0, "β: inverse temperature of exp(β Q) (0: the prior itself)", range=NON_NEGATIVE
    )
    # "spread" keeps the weights' shape as Q grows; "raw" is how agents saved before format 3 weighed
    energy_q_scale: str = setting(
        "spread",
        "β multiplies Q standardised over each state's K samples ('spread') or raw Q ('raw')",
        choices=("spread", "raw"),
    )
    energy_samples: int = setting(
        16, "K prior samples per state in the contrastive loss (≥ 2: it compares them)", range=Range(2)
    )
    energy_lr: float = setting(3e-4, "the energy model's learning rate", range=POSITIVE)
    energy_batch_size: int = setting(256, "states per energy batch (each with its K samples)", range=POSITIVE)
    energy_steps: int = setting(1_000_000, "gradient steps of the energy stage", range=POSITIVE)
    energy_widths: tuple[int, ...] = setting((256, 256, 256, 256), "the energy model's hidden widths")
    energy_guidance: float = setting(
        1.0, "s: the score gets s · ∇f (0: LDCQ's unguided candidates)", range=NON_NEGATIVE, acting=True
    )


@dataclass
class ImageSettings(SettingsGroup):
    """The image encoder, a β-VAE on single frames (stage ``images``, ``ImagesStage``; the LDCQ paper's
    App. C, which gives its 32-number code but not these settings: ours). Read only where the
    observation has an image part; flat observations skip the stage whatever these say."""

    image_steps: int = setting(
        50_000,
        "gradient steps of the images stage (0: keep the encoder's initial weights)",
        range=NON_NEGATIVE,
    )
    image_lr: float = setting(1e-4, "the image β-VAE's learning rate", range=POSITIVE)
    image_batch_size: int = setting(128, "frames per image batch (read from disk per batch)", range=POSITIVE)
    image_beta: float = setting(
        1.0, "β: weight of KL(q(z|frame) ‖ N(0, I)) beside the summed squared error", range=NON_NEGATIVE
    )


# Declaration order is the order a config lists its fields in (config.json, error messages, ACTING).
declare(
    SkillSettings,
    DiffusionPriorSettings,
    SamplingSettings,
    ActingSettings,
    RunSettings,
    QSettings,
    DistillSettings,
    GoalSettings,
    PlanningSettings,
    EnergySettings,
    ImageSettings,
)

__all__ = [
    "CANDIDATE_SOURCES",
    "DDPM_VARIANCES",
    "ActingSettings",
    "DiffusionPriorSettings",
    "DistillSettings",
    "EnergySettings",
    "GoalSettings",
    "ImageSettings",
    "PlanningSettings",
    "QSettings",
    "RunSettings",
    "SamplingSettings",
    "SettingsGroup",
    "SkillSettings",
]
