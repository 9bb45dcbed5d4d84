"""Stage 2b of LDCQ, ``distill``: a few-step student of the trained prior's solver.

Sampling the prior costs ``sampler_steps`` denoiser passes per latent, and the candidate bank (one
sampling per distinct next state) and every acting decision (``act_candidates`` latents) pay it. The
student is a denoiser of the teacher's shape, started from the teacher's weights, whose
``distill_nfe``-step DDIM chain from noise ``z_T`` is regressed onto the teacher solver's output from
the same ``z_T`` (guidance included), on the states the prior learned from. A deterministic solver
maps each noise to one latent, so the target is a function, not an average over modes.
"""

from __future__ import annotations

from typing import ClassVar, cast

import numpy as np
import torch
from torch import nn

from latent_skills.config import LDCQConfig
from latent_skills.diffusion import DiffusionSchedule, distillation_loss, distillation_targets
from latent_skills.nn import LatentDenoiser, StudentDenoiser

from ..spec import AgentSpec
from .base import StageContext, StepResult, TrainingStage
from .skills import skill_window_pool

TEACHER_ROWS = 4096  # rows per teacher call: a block of steps' batches
# chains per state in a teacher call: the denoiser embeds each state once for all its chains
CHAINS_PER_STATE = 16


class DistillStage(TrainingStage[LDCQConfig]):
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
    def build_modules(cls, config: LDCQConfig, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        if config.distill_steps == 0:
            return {}
        return {"student": StudentDenoiser(config.latent_dim, state_dim, config.denoiser_widths)}

    def __init__(self, ctx: StageContext[LDCQConfig]) -> None:
        super().__init__(ctx)
        c = ctx.config
        self.teacher = cast(LatentDenoiser, ctx.modules["denoiser"])
        self.student = cast(StudentDenoiser, ctx.modules["student"])
        self.student.ready.zero_()  # until the last step, sampling uses the teacher
        self.schedule = DiffusionSchedule(c.diffusion_timesteps).to(ctx.device)
        self.pool = skill_window_pool(ctx.windows, c)
        self.first = ctx.windows.first_states
        # the teacher runs once per block of steps, on all their rows at once: a denoiser pass over
        # thousands of rows costs little more than over one batch (on a CPU, per-call overheads)
        self.block_steps = max(1, TEACHER_ROWS // c.distill_batch_size)
        self.block: int | None = None
        self.block_data: tuple[
            np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor
        ]  # idx, cond, noise, target
        self.trained = [self.student]
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=c.distill_lr)

    def fill_block(self, block: int) -> None:
        """The windows, noise and teacher latents of every step of ``block``, drawn from streams
        seeded by the block (a resumed run recomputes the same ones, so no draws need saving):
        ``CHAINS_PER_STATE`` chains per drawn state, shuffled across the block's steps."""
        c, device = self.config, self.ctx.device
        rows = self.block_steps * c.distill_batch_size
        states_n = -(-rows // CHAINS_PER_STATE)
        seed = np.random.SeedSequence([c.seed, self.ctx.streams.index, block])
        rng = np.random.default_rng(seed)
        pool = self.pool
        idx = (
            rng.integers(0, len(self.ctx.windows), states_n)
            if pool is None
            else pool[rng.integers(0, len(pool), states_n)]
        )
        generator = torch.Generator(device).manual_seed(int(seed.generate_state(1)[0]))
        prior = self.ctx.prior
        states = self.gather(self.first, idx).float()
        cond, null_cond = prior.condition(states), prior.null_condition(states)
        noise = torch.randn((states_n * CHAINS_PER_STATE, c.latent_dim), generator=generator, device=device)
        target = distillation_targets(
            self.teacher,
            self.schedule,
            cond,
            noise,
            solver=c.sampler,
            steps=c.sampler_steps,
            guidance=c.guidance,
            null_cond=null_cond,
            chains=CHAINS_PER_STATE,
        )
        # the chains of a state sit together for the teacher; the steps' batches mix states
        order = rng.permutation(len(noise))[:rows]
        state_of = order // CHAINS_PER_STATE  # chain i belongs to drawn state i // CHAINS_PER_STATE
        chains, states_at = (torch.as_tensor(a, device=noise.device) for a in (order, state_of))
        self.block = block
        self.block_data = (idx[state_of], cond[states_at], noise[chains], target[chains])

    def loss(self, step: int) -> StepResult:
        c = self.config
        if step == 0:  # start from the teacher (a fresh run; a resumed one has the student's weights)
            self.student.net.load_state_dict(self.teacher.state_dict())
        block, row = divmod(step, self.block_steps)
        if block != self.block:
            self.fill_block(block)
        idx, cond, noise, target = self.block_data
        batch = slice(row * c.distill_batch_size, (row + 1) * c.distill_batch_size)
        _, shard = self.take_shard(idx[batch])  # this rank's rows of the step's global batch
        rows = shard.take(torch.arange(batch.start, batch.stop, device=noise.device))
        value = distillation_loss(
            self.student, self.schedule, cond[rows], noise[rows], target[rows], student_steps=c.distill_nfe
        )
        return StepResult(value, {"loss": value}, shard)

    def after_step(self, step: int, result: StepResult) -> None:
        if step == self.n_steps - 1:
            self.student.ready.fill_(1.0)
