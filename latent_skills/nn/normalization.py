"""Per-dimension state standardisation as a torch module, so its statistics travel with the weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

#: Floor on the per-dimension standard deviation. A dimension that is (nearly) constant in the dataset
#: (a fixed goal, a joint that never moves, a velocity that is always 0) has std ≈ 0; dividing by it
#: turns the tiny deviations seen at test time (simulator noise, a slightly different goal) into
#: values of 10^4..10^6 that saturate every layer downstream. With a floor of 1e-3 such a dimension is
#: at most amplified 1000×, while every dimension that carries information (std ≫ 1e-3 in any
#: reasonable unit) is standardised exactly. 1e-6 (float32 epsilon territory) would only avoid the
#: division by zero, not the blow-up.
MIN_STD = 1e-3


def _as_float_vector(values: Any, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
    tensor = tensor.detach().to(device="cpu", dtype=torch.float32).reshape(-1)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"StateNormalizer {name} has non-finite entries; check the dataset's states.")
    return tensor


class StateNormalizer(nn.Module):
    """``forward(x) = (x − mean) / max(std, min_std)`` over the last axis of ``x`` (shape ``(..., S)``).

    ``mean`` and ``std`` are float32 registered buffers: they are in ``state_dict()`` (hence in
    ``model.safetensors``), move with ``.to(device)`` and are never trained. ``std`` is stored already
    floored, so the buffer holds exactly the divisor used.

    Build it from statistics (``StateNormalizer(mean=..., std=...)``, numpy or torch), from data
    (``StateNormalizer.from_data(states)``), from any object with ``mean``/``std`` attributes
    (``StateNormalizer.from_stats(stats)``, e.g. ``latent_skills.data.StateStats``), or from just a
    dimension (``StateNormalizer(dim)``: identity statistics, to be overwritten by ``set_stats`` or by
    ``load_state_dict``).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        dim: int | None = None,
        *,
        mean: Any = None,
        std: Any = None,
        min_std: float = MIN_STD,
    ) -> None:
        super().__init__()
        if not min_std > 0:
            raise ValueError(f"min_std must be positive, got {min_std}.")
        self.min_std = float(min_std)
        if mean is None and std is None:
            if dim is None:
                raise ValueError("StateNormalizer needs a dimension or mean/std statistics.")
            if int(dim) < 1:
                raise ValueError(f"StateNormalizer dimension must be >= 1, got {dim}.")
            mean_t = torch.zeros(int(dim))
            std_t = torch.ones(int(dim))
        else:
            if mean is None or std is None:
                raise ValueError("Give both mean and std (or neither, with a dimension).")
            mean_t = _as_float_vector(mean, "mean")
            std_t = _as_float_vector(std, "std")
            if dim is not None and int(dim) != mean_t.numel():
                raise ValueError(f"dim={dim} but mean has {mean_t.numel()} entries.")
        self._check(mean_t, std_t)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t.clamp_min(self.min_std))

    @staticmethod
    def _check(mean: torch.Tensor, std: torch.Tensor) -> None:
        if mean.shape != std.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and std {tuple(std.shape)} differ in shape.")
        if (std < 0).any():
            raise ValueError("StateNormalizer std has negative entries.")

    @classmethod
    def from_data(cls, states: Any, min_std: float = MIN_STD) -> StateNormalizer:
        """Statistics over every leading axis of ``states`` (``(..., S)``), accumulated in float64."""
        data = torch.as_tensor(np.asarray(states) if not torch.is_tensor(states) else states)
        data = data.detach().to("cpu", torch.float64).reshape(-1, data.shape[-1])
        if len(data) == 0:
            raise ValueError("StateNormalizer.from_data got no states.")
        return cls(mean=data.mean(0), std=data.std(0, unbiased=False), min_std=min_std)

    @classmethod
    def from_stats(cls, stats: Any, min_std: float = MIN_STD) -> StateNormalizer:
        """From any object with ``mean`` and ``std`` attributes (e.g. ``data.StateStats``)."""
        return cls(mean=stats.mean, std=stats.std, min_std=min_std)

    @property
    def dim(self) -> int:
        return self.mean.numel()

    @torch.no_grad()
    def set_stats(self, mean: Any, std: Any) -> None:
        """Overwrite the statistics in place (same dimension; device and dtype kept)."""
        mean_t = _as_float_vector(mean, "mean")
        std_t = _as_float_vector(std, "std")
        self._check(mean_t, std_t)
        if mean_t.numel() != self.dim:
            raise ValueError(f"Statistics have {mean_t.numel()} entries, the normaliser {self.dim}.")
        self.mean.copy_(mean_t)
        self.std.copy_(std_t.clamp_min(self.min_std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"Expected states with last dimension {self.dim}, got {tuple(x.shape)}.")
        # clamp again so statistics loaded from a checkpoint cannot divide by (near) zero either
        return (x - self.mean) / self.std.clamp_min(self.min_std)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Undo ``forward``."""
        return x * self.std.clamp_min(self.min_std) + self.mean

    def extra_repr(self) -> str:
        return f"dim={self.dim}, min_std={self.min_std:g}"
