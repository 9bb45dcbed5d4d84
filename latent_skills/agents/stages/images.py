"""Stage ``images``: the image encoder, a β-VAE on single frames, trained before everything else
(the LDCQ paper's App. C); then every frame is encoded once and the later stages learn from the
encoded states (see :mod:`..training_data`).

Frames come from disk a batch at a time (:class:`~latent_skills.data.frames.DatasetFrames`), never
all at once; a batch is ``image_batch_size`` frames drawn uniformly from every observation of the
dataset (the same rows of each image part, where the observation has several). The stage runs only
where the observation has a learned encoder's part (an image): flat observations skip it.
"""

from __future__ import annotations

from typing import cast

import torch

from latent_skills.config import AgentConfig
from latent_skills.nn.encoders import ObservationEncoder
from latent_skills.nn.image_encoder import ImageVAE

from ..spec import AgentSpec
from ..training_data import set_state_stats
from .base import StageContext, StepResult, TrainingStage


class ImagesStage(TrainingStage[AgentConfig]):
    """Σ over image parts of the β-VAE loss: squared error summed over the frame + β·KL(q ‖ N(0, I))."""

    name = "images"
    creates = ("observation_encoder",)
    steps_field = "image_steps"
    optional = True

    @classmethod
    def skipped(cls, config: AgentConfig, spec: AgentSpec) -> bool:
        return super().skipped(config, spec) or not spec.learned_encoder

    def __init__(self, ctx: StageContext[AgentConfig]) -> None:
        super().__init__(ctx)
        encoder = cast(ObservationEncoder, ctx.modules["observation_encoder"])
        self.parts = [cast(ImageVAE, part) for _, part in encoder.learned_parts()]
        self.frames = ctx.data.frames
        if len(self.frames) != len(self.parts):
            raise ValueError(f"{len(self.parts)} image parts but frames of {len(self.frames)}")
        self.trained = [encoder]
        self.optimizer = torch.optim.Adam(encoder.parameters(), lr=ctx.config.image_lr)

    def loss(self, step: int) -> StepResult:
        c = self.config
        rows, shard = self.take_shard(self.rng.integers(0, len(self.frames[0]), c.image_batch_size))
        totals: dict[str, torch.Tensor] = {}
        for part, frames in zip(self.parts, self.frames, strict=True):
            noise = shard.draw(self.normal_draw(part.features_dim))
            out = part.loss(self.tensor(frames[rows]), c.image_beta, noise)
            for key, value in out.items():
                totals[key] = totals.get(key, 0.0) + value
        return StepResult(totals["loss"], totals, shard)

    def finish(self) -> None:
        # the encoder changed: every frame encoded again, and the state normalisers fitted to them
        set_state_stats(self.ctx.modules, self.ctx.data.rebuild())
