"""Prioritized experience replay over a fixed set of transitions (Schaul et al. 2015).

The transitions are the dataset's skill windows, so the buffer never grows: a flat array sum tree,
sampled and updated for a whole batch at once (one numpy pass per tree level, no Python loop over
the batch).
"""

from __future__ import annotations

import numpy as np
import torch


class PrioritizedSampler:
    """Samples indices in ``[0, size)`` with probability ∝ priority^α and gives importance weights."""

    def __init__(self, size: int, alpha: float, eps: float = 1e-6) -> None:
        if size < 1:
            raise ValueError("PrioritizedSampler needs at least one transition")
        self.size, self.alpha, self.eps = size, alpha, eps
        self.capacity = 1 << int(np.ceil(np.log2(size)))
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
        if tree.shape != self.tree.shape:
            raise ValueError(
                f"saved priorities are for {tree.shape} tree nodes, this buffer has {self.tree.shape}: "
                "the checkpoint's dataset differs from the one loaded"
            )
        self.tree[:] = tree
        self.max_priority = float(meta["max_priority"])
