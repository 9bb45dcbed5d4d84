"""The image encoder: a small convolutional β-VAE on single frames, as the LDCQ paper's Appendix C.

App. C runs LDCQ on CARLA from 48×48 RGB images by compressing *each single frame* (not a sequence)
with a β-VAE into a 32-number state; LDCQ then runs unchanged on the sequence of compressed states.
What follows it: one frame in, 32 numbers out (:data:`FEATURES`), a β-VAE trained first on single
frames (``ImagesStage``), and its posterior mean as the state every later network reads. What App. C
does not give, and is ours: the layers (three 4×4 stride-2 convolutions of 32-64-64 channels and a
256-unit layer, mirrored by the decoder, the shape of Higgins et al.'s β-VAE at these sizes), the
reconstruction term (squared error summed over the frame's values in [0, 1], a Gaussian likelihood)
and the training settings (``image_*`` fields of the config).

It takes ``uint8`` images, channels last: ``(H, W)`` or ``(H, W, C)`` with ``C`` ≤ 4 and ``H``, ``W``
multiples of 8 (three halvings). Another image is refused at ``from_dataset`` with the fix.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from .encoders import PartEncoder, is_image, register_encoder

FEATURES = 32  # App. C: "a 32-dimensional compressed state"
_CHANNELS = (32, 64, 64)
_HIDDEN = 256
_STRIDE = 2 ** len(_CHANNELS)  # the image's sides must be multiples of it


def _channels(shape: tuple[int, ...]) -> int:
    return 1 if len(shape) == 2 else shape[2]


@register_encoder
class ImageVAE(PartEncoder):
    """A β-VAE on single ``uint8`` frames; its features are the posterior mean (``FEATURES`` numbers)."""

    kind = "image"
    learned = True
    takes = (
        f"a uint8 image, channels last, (H, W) or (H, W, C) with C ≤ 4 and H, W multiples of {_STRIDE} "
        "(resize with gymnasium.wrappers.ResizeObservation; move channels last with an ObservationWrapper)"
    )
    max_channels: ClassVar[int] = 4

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(shape)
        channels = _channels(shape)
        self.grid = (shape[0] // _STRIDE, shape[1] // _STRIDE)
        flat = _CHANNELS[-1] * self.grid[0] * self.grid[1]
        widths = (channels, *_CHANNELS)
        convs: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            convs += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU()]
        self.encoder = nn.Sequential(
            *convs, nn.Flatten(), nn.Linear(flat, _HIDDEN), nn.ReLU(), nn.Linear(_HIDDEN, 2 * FEATURES)
        )
        deconvs: list[nn.Module] = []
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1], strict=True):
            deconvs += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU()]
        self.decoder = nn.Sequential(
            nn.Linear(FEATURES, _HIDDEN),
            nn.ReLU(),
            nn.Linear(_HIDDEN, flat),
            nn.ReLU(),
            nn.Unflatten(1, (_CHANNELS[-1], *self.grid)),
            *deconvs[:-1],  # no ReLU on the last layer: it gives the frame's logits
        )

    @classmethod
    def accepts(cls, space: gym.Space) -> bool:
        if not (isinstance(space, gym.spaces.Box) and is_image(space) and space.dtype == np.uint8):
            return False
        shape = space.shape
        return (
            len(shape) in (2, 3)
            and _channels(shape) <= cls.max_channels
            and all(side >= _STRIDE and side % _STRIDE == 0 for side in shape[:2])
        )

    @classmethod
    def features_for(cls, shape: tuple[int, ...]) -> int:
        return FEATURES

    def frames(self, part: torch.Tensor) -> torch.Tensor:
        """``(B, H, W[, C])`` values in 0..255 (any dtype) → ``(B, C, H, W)`` floats in [0, 1]."""
        part = part.reshape(len(part), *self.shape).float() / 255.0
        return part.unsqueeze(1) if len(self.shape) == 2 else part.permute(0, 3, 1, 2)

    def posterior(self, part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | frame): mean and log-variance, ``(B, FEATURES)`` each."""
        mean, log_var = self.encoder(self.frames(part)).chunk(2, dim=-1)
        return mean, log_var.clamp(-12.0, 8.0)

    def forward(self, part: torch.Tensor) -> torch.Tensor:
        return self.posterior(part)[0]

    def reconstruct(self, part: torch.Tensor) -> torch.Tensor:
        """The decoded posterior mean of each frame, ``(B, H, W[, C])`` floats in [0, 255]."""
        pixels = torch.sigmoid(self.decoder(self.posterior(part)[0])) * 255.0
        return pixels.squeeze(1) if len(self.shape) == 2 else pixels.permute(0, 2, 3, 1)

    def loss(self, part: torch.Tensor, beta: float, noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """β-VAE loss per frame, batch mean: Σ (x̂ − x)² over the frame's values in [0, 1] + β·KL(q ‖ N(0, I)).
        ``noise``: standard normals ``(B, FEATURES)`` for the reparameterised sample (the stage's stream)."""
        target = self.frames(part)
        mean, log_var = self.posterior(part)
        z = mean + torch.exp(0.5 * log_var) * noise
        squared = (torch.sigmoid(self.decoder(z)) - target).square().flatten(1)
        kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(-1)
        reconstruction = squared.sum(-1)
        return {
            "loss": (reconstruction + beta * kl).mean(),
            "mse": squared.mean(),  # per value: comparable across frame sizes
            "kl": kl.mean(),
        }
