"""Per-dimension state standardisation as a torch module, so its statistics travel with the weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

#: Threshold (absolute, in the data's units) below which a dimension's standard deviation over the
#: dataset marks it as constant: such a dimension is centred but *not scaled* (divisor 1). A dimension
#: that varies less than 1e-2 across a whole dataset (a fixed goal, a joint that never moves, a
#: velocity that is always 0, an untouched object) carries no information a network could use, and
#: dividing by its tiny std only amplifies what differs at test time: single-goal maze data stores the
#: same desired goal at every step (std 0), and an evaluation env that moves its goal by ±0.25 turned
#: into inputs of ±250 with the former floor of 1e-3. Every dimension that carries information has a
#: std ≫ 1e-2 in any reasonable unit and is standardised exactly. The rule is a step, not a floor: a
#: floor of 1e-2 would still amplify such a dimension 100×.
MIN_STD = 1e-2


def constant_safe_std(std: torch.Tensor, min_std: float = MIN_STD) -> torch.Tensor:
    """The divisor per dimension: ``std``, or 1 where ``std < min_std`` (a constant dimension).

    Idempotent (a divisor maps to itself), so it can be applied both when
    statistics are set and again to statistics loaded from a checkpoint, including older ones whose
    buffer holds the former floor of 1e-3.
    """
    return torch.where(std < min_std, torch.ones_like(std), std)


def _as_float_vector(values: Any, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
    tensor = tensor.detach().to(device="cpu", dtype=torch.float32).reshape(-1)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"StateNormalizer {name} has non-finite entries; check the dataset's states.")
    return tensor


class StateNormalizer(nn.Module):
    """``forward(x) = (x − mean) / d`` over the last axis of ``x`` (shape ``(..., S)``), where the
    divisor ``d`` is the std, or 1 for a dimension whose std is below ``min_std`` (constant in the
    data: centred, not scaled; see :data:`MIN_STD`).

    ``mean`` and ``std`` are float32 registered buffers: they are in ``state_dict()`` (hence in
    ``model.safetensors``), move with ``.to(device)`` and are never trained. ``std`` is stored as the
    divisor (1 on constant dimensions), so the buffer holds exactly the divisor used; statistics
    loaded from a checkpoint (also one written with the former 1e-3 floor) are converted on load, and
    ``forward``/``inverse`` apply the rule again.

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
        self.register_buffer("std", constant_safe_std(std_t, self.min_std))

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
        self.std.copy_(constant_safe_std(std_t, self.min_std))

    @property
    def divisor(self) -> torch.Tensor:
        """What ``forward`` divides by: ``std``, 1 on constant dimensions."""
        return constant_safe_std(self.std, self.min_std)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        with torch.no_grad():  # an older checkpoint's std may hold the former floor (1e-3)
            self.std.copy_(self.divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"Expected states with last dimension {self.dim}, got {tuple(x.shape)}.")
        # the rule again, so statistics copied into the buffer by hand cannot amplify a constant dimension
        return (x - self.mean) / self.divisor

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Undo ``forward``."""
        return x * self.divisor + self.mean

    def extra_repr(self) -> str:
        return f"dim={self.dim}, min_std={self.min_std:g}"
