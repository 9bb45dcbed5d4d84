"""Training batches gathered where the networks are.

On a CPU a batch is a numpy gather turned into a tensor without a copy. On an accelerator that would
copy every batch from the host; instead the arrays behind the windows (the episodes' observations and
actions, the per-window arrays) are uploaded once and each batch is gathered on the device from its
indices: one small host-to-device copy per step. Both paths give the same values (``tests/test_faults.py``
trains through the device path on a CPU and gets the same weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from latent_skills.data.windows import WindowedArray, WindowMask


def gathers_on_device(device: torch.device) -> bool:
    return device.type != "cpu"


class DeviceArrays:
    """Device copies of host arrays, made on first use and kept (keyed by the array's identity, so the
    arrays must live as long as this cache: those of one dataset's windows do)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._copies: dict[int, tuple[np.ndarray, torch.Tensor]] = {}

    def __call__(self, array: np.ndarray) -> torch.Tensor:
        key = id(array)
        if key not in self._copies:
            self._copies[key] = (array, torch.as_tensor(np.ascontiguousarray(array), device=self.device))
        return self._copies[key][1]

    def gather(self, source: Any, index: np.ndarray) -> torch.Tensor:
        """``source[index]`` as a device tensor, for a WindowedArray, a WindowMask or a numpy array."""
        idx = torch.as_tensor(index, device=self.device)
        if isinstance(source, WindowMask):
            lengths = self(source.lengths)[idx]
            return torch.arange(source.horizon, device=self.device) < lengths[:, None]
        if isinstance(source, WindowedArray):
            starts, last = self(source.starts)[idx], self(source.last)[idx]
            data = self(source.data)
            if source.horizon is None:
                return data[starts + last]
            steps = torch.arange(source.horizon, device=self.device)
            values = data[starts[:, None] + torch.minimum(steps, last[:, None])]
            if source.zero_past_last:
                values = values.masked_fill((steps > last[:, None])[..., None], 0)
            return values
        return self(source)[idx]
