"""Prioritized experience replay over a fixed set of transitions (Schaul et al. 2015).

The transitions are the dataset's skill windows, so the buffer never grows: a flat array sum tree,
sampled and updated for a whole batch at once (one numpy pass per tree level, no Python loop over
the batch). On an accelerator the same tree lives on the device (:class:`DevicePrioritizedSampler`).
"""

from __future__ import annotations

import numpy as np
import torch

from .device_data import upload


def tree_capacity(size: int) -> int:
    """Leaves of the sum tree over ``size`` transitions: the next power of two."""
    if size < 1:
        raise ValueError("PrioritizedSampler needs at least one transition")
    return 1 << int(np.ceil(np.log2(size)))


def check_saved_tree(saved: tuple[int, ...], own: tuple[int, ...]) -> None:
    if saved != own:
        raise ValueError(
            f"saved priorities are for {saved} tree nodes, this buffer has {own}: the checkpoint's "
            "dataset differs from the one loaded"
        )


class PrioritizedSampler:
    """Samples indices in ``[0, size)`` with probability ∝ priority^α and gives importance weights."""

    def __init__(self, size: int, alpha: float, eps: float = 1e-6) -> None:
        self.size, self.alpha, self.eps = size, alpha, eps
        self.capacity = tree_capacity(size)
        self.tree = np.zeros(2 * self.capacity, np.float64)  # node i has children 2i, 2i+1; root 1
        self.max_priority = 1.0
        self._set(np.arange(size), np.ones(size))

    def _set(self, index: np.ndarray, value: np.ndarray) -> None:
        nodes = index + self.capacity
        self.tree[nodes] = value
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indices and importance weights ``(N · P(i))^-β`` normalised by their maximum."""
        # stratified: one draw per equal slice of the total mass
        targets = (np.arange(batch_size) + rng.random(batch_size)) * (self.total / batch_size)
        nodes = np.ones(batch_size, np.int64)
        while nodes[0] < self.capacity:
            left = 2 * nodes
            go_right = targets >= self.tree[left]
            targets = np.where(go_right, targets - self.tree[left], targets)
            nodes = left + go_right
        index = np.minimum(nodes - self.capacity, self.size - 1)
        probs = self.tree[index + self.capacity] / self.total
        weights = (self.size * np.maximum(probs, 1e-12)) ** (-beta)
        return index, (weights / weights.max()).astype(np.float32)

    def update(self, index: np.ndarray, td_error: np.ndarray) -> None:
        priority = (np.abs(td_error) + self.eps) ** self.alpha
        self.max_priority = max(self.max_priority, float(priority.max()))
        # a batch can hold the same index twice: keep the last write, as a sequential update would
        last = len(index) - 1 - np.unique(index[::-1], return_index=True)[1]
        self._set(index[last], priority[last])

    def training_state(self) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """The priorities (the whole sum tree) for a checkpoint that resumes training exactly."""
        return {"max_priority": self.max_priority}, {"tree": torch.from_numpy(self.tree.copy())}

    def load_training_state(self, meta: dict[str, float], tensors: dict[str, torch.Tensor]) -> None:
        tree = tensors["tree"].numpy()
        check_saved_tree(tree.shape, self.tree.shape)
        self.tree[:] = tree
        self.max_priority = float(meta["max_priority"])


class DevicePrioritizedSampler:
    """:class:`PrioritizedSampler`'s sum tree kept on the training device (accelerators), so that a Q
    step never waits for the device: sampling and updates are a few kernels per tree level, indices,
    weights and TD errors stay on the device, and nothing is read back to the host.

    It draws its uniform numbers from the same numpy stream as the host sampler and keeps the same
    float64 tree (float32 on MPS, which has no float64); priorities agree with the host's to float32
    rounding (torch's and numpy's float32 powers can differ in the last bit), so both sample the same
    batches but for a draw that falls within rounding of a boundary. Checkpoints move between the two.
    """

    def __init__(self, size: int, alpha: float, device: torch.device, eps: float = 1e-6) -> None:
        self.size, self.alpha, self.eps, self.device = size, alpha, eps, device
        self.capacity = tree_capacity(size)
        self.depth = self.capacity.bit_length() - 1  # levels below the root
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.tree = torch.zeros(2 * self.capacity, dtype=dtype, device=device)
        self.max_priority = torch.ones((), dtype=dtype, device=device)
        self._set(torch.arange(size, device=device), torch.ones(size, dtype=dtype, device=device))

    def _set(self, index: torch.Tensor, value: torch.Tensor) -> None:
        """Leaves ``index`` := ``value`` (repeated indices must carry equal values), then their parents."""
        nodes = index + self.capacity
        self.tree[nodes] = value.to(self.tree.dtype)
        for _ in range(self.depth):
            nodes = nodes // 2
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def sample(
        self, batch_size: int, beta: float, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and importance weights on the device, as :meth:`PrioritizedSampler.sample`."""
        uniform = upload(rng.random(batch_size), self.device).to(self.tree.dtype)
        steps = torch.arange(batch_size, device=self.device, dtype=self.tree.dtype)
        targets = (steps + uniform) * (self.tree[1] / batch_size)
        nodes = torch.ones(batch_size, dtype=torch.long, device=self.device)
        for _ in range(self.depth):
            left = 2 * nodes
            go_right = targets >= self.tree[left]
            targets = torch.where(go_right, targets - self.tree[left], targets)
            nodes = left + go_right.long()
        index = torch.clamp(nodes - self.capacity, max=self.size - 1)
        probs = self.tree[index + self.capacity] / self.tree[1]
        weights = (self.size * torch.clamp(probs, min=1e-12)) ** (-beta)
        return index, (weights / weights.max()).float()

    def update(self, index: torch.Tensor, td_error: torch.Tensor) -> None:
        # in the errors' dtype, as on the host (whose float32 power may differ in the last bit)
        priority = (td_error.abs() + self.eps) ** self.alpha
        self.max_priority = torch.maximum(self.max_priority, priority.max().to(self.tree.dtype))
        # a batch can hold the same index twice: every copy writes the value of its last occurrence
        # (a sequential update's result), found without a data-dependent shape (no host read)
        positions = torch.arange(len(index), device=self.device)
        same = index[:, None] == index[None, :]
        last = torch.where(same, positions[None, :], -1).amax(1)
        self._set(index, priority[last])

    def training_state(self) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        return {"max_priority": float(self.max_priority)}, {"tree": self.tree.double().cpu()}

    def load_training_state(self, meta: dict[str, float], tensors: dict[str, torch.Tensor]) -> None:
        tree = tensors["tree"]
        check_saved_tree(tuple(tree.shape), tuple(self.tree.shape))
        self.tree.copy_(tree.to(self.tree.dtype))
        self.max_priority.fill_(float(meta["max_priority"]))
