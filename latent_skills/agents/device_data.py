"""Training batches gathered where the networks are.

On a CPU a batch is a numpy gather turned into a tensor without a copy. On an accelerator that would
copy every batch from the host; instead the arrays behind the windows (the episodes' observations and
actions, the per-window arrays) are uploaded once and each batch is gathered on the device from its
indices: one small host-to-device copy per step. Both paths give the same values (``tests/test_faults.py``
trains through the device path on a CPU and gets the same weights).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from latent_skills.data.windows import WindowedArray, WindowMask


def gathers_on_device(device: torch.device) -> bool:
    return device.type != "cpu"


MEMMAP_SLICE_BYTES = 256 * 2**20


def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host array on ``device`` without waiting for the device's queue: on CUDA through
    pinned memory, copied asynchronously (PyTorch does not reuse the pinned block before the copy
    ends). A plain copy elsewhere."""
    host = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether an array of ``nbytes`` may be copied to ``device``: on CUDA, if it takes at most half
    the free memory; elsewhere (unified memory, or a CPU standing in for a device in tests) always."""
    if device.type == "cuda":
        return nbytes <= torch.cuda.mem_get_info(device)[0] // 2
    return True


class DeviceArrays:
    """Device copies of host arrays, made on first use and kept while the host array lives (keyed by
    its identity; a copy is dropped when its array is freed, e.g. a replaced candidate bank)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._copies: dict[int, torch.Tensor] = {}

    def __call__(self, array: np.ndarray) -> torch.Tensor:
        key = id(array)
        copy = self._copies.get(key)
        if copy is None:
            copy = self._upload_whole(array)
            self._copies[key] = copy
            weakref.finalize(array, self._copies.pop, key, None)
        return copy

    def _upload_whole(self, array: np.ndarray) -> torch.Tensor:
        if not isinstance(array, np.memmap):
            # a copy even on a CPU (tests), so that the copy does not keep its host array alive
            return torch.tensor(np.ascontiguousarray(array), device=self.device)
        # a memory-mapped array (a bank larger than the host RAM allowed) goes up in slices, never
        # read into host memory whole
        copy = torch.empty(array.shape, dtype=torch.from_numpy(array[:0]).dtype, device=self.device)
        rows = max(1, MEMMAP_SLICE_BYTES // max(1, array[:1].nbytes))
        for start in range(0, len(array), rows):
            copy[start : start + rows] = torch.from_numpy(np.ascontiguousarray(array[start : start + rows]))
        return copy

    def gather(self, source: Any, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``source[index]`` as a device tensor, for a WindowedArray, a WindowMask or a numpy array;
        ``index`` a host array or a device tensor."""
        idx = index.to(self.device) if isinstance(index, torch.Tensor) else upload(index, self.device)
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
