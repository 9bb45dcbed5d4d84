"""The distillation stage: a few-step student of the trained prior's solver.

Sampling the prior costs ``sampler_steps`` denoiser passes per latent, and the candidate bank (one
sampling per distinct next state) and every acting decision (``act_candidates`` latents) pay it. The
student is a denoiser of the teacher's shape, started from the teacher's weights, whose
``distill_nfe``-step DDIM chain from noise ``z_T`` is regressed onto the teacher solver's output from
the same ``z_T`` (guidance included), on the states the prior learned from. A deterministic solver
maps each noise to one latent, so the target is a function, not an average over modes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch
from torch import nn

from latent_skills.diffusion import DiffusionSchedule, distillation_loss
from latent_skills.nn import LatentDenoiser, StudentDenoiser

from .spec import AgentSpec
from .stages import TrainingStage, skill_window_pool

if TYPE_CHECKING:
    from .base import LatentSkillAgent


class DistillStage(TrainingStage):
    """Distil the prior's solver into ``distill_nfe`` steps: MSE between the student's and the
    teacher's latents (standardised) from the same noise. Skipped when ``distill_steps`` is 0."""

    name = "distill"
    creates = ("student",)
    shaped_by: ClassVar[tuple[str, ...]] = (
        "diffusion_timesteps",
        "denoiser_widths",
        "sampler",
        "sampler_steps",
        "guidance",
        "distill_nfe",
    )
    steps_field = "distill_steps"
    optional = True

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec) -> dict[str, nn.Module]:
        if config.distill_steps == 0:
            return {}
        return {"student": StudentDenoiser(config.latent_dim, spec.state_dim, config.denoiser_widths)}

    def __init__(self, agent: LatentSkillAgent, index: int) -> None:
        super().__init__(agent, index)
        modules = agent.modules()
        self.teacher = cast(LatentDenoiser, modules["denoiser"])
        self.student = cast(StudentDenoiser, modules["student"])
        self.student.ready.zero_()  # until the last step, sampling uses the teacher
        self.schedule = DiffusionSchedule(agent.config.diffusion_timesteps).to(agent.device)
        self.pool = skill_window_pool(agent)
        self.first = agent.data.windows.first_states
        self.trained = [self.student]
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=agent.config.distill_lr)  # type: ignore[attr-defined]

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c: Any = self.agent.config
        if step == 0:  # start from the teacher (a fresh run; a resumed one has the student's weights)
            self.student.net.load_state_dict(self.teacher.state_dict())
        idx = self.take_shard(self.draw_windows(c.distill_batch_size, self.pool))
        noise = self.global_draw(self.normal_draw(c.latent_dim))
        states = self.gather(self.first, idx).float()
        prior = self.agent.policy.prior
        cond, null_cond = prior.condition(states), prior.null_condition(states)
        value = distillation_loss(
            self.student,
            self.teacher,
            self.schedule,
            cond,
            noise,
            student_steps=c.distill_nfe,
            solver=c.sampler,
            steps=c.sampler_steps,
            guidance=c.guidance,
            null_cond=null_cond,
        )
        return value, {"loss": value}

    def after_step(self, step: int) -> None:
        if step == self.n_steps - 1:
            self.student.ready.fill_(1.0)
