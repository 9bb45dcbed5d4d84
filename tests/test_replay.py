"""Prioritised replay: the host sum tree, and the same tree kept on the training device."""

from __future__ import annotations

import numpy as np
import torch

from latent_skills.agents.replay import DevicePrioritizedSampler, PrioritizedSampler


def test_sampling_follows_the_priorities():
    sampler = PrioritizedSampler(5, alpha=1.0, eps=0.0)
    sampler.update(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    rng = np.random.default_rng(0)
    counts = np.zeros(5)
    for _ in range(400):
        index, weights = sampler.sample(64, beta=1.0, rng=rng)
        counts += np.bincount(index, minlength=5)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4, 0.0], atol=0.01)
    # importance weights (N·P)^-β over their maximum: the rarest sampled row weighs 1
    index, weights = sampler.sample(64, beta=1.0, rng=rng)
    np.testing.assert_allclose(weights, 0.1 / (np.array([1.0, 2.0, 3.0, 4.0])[index] / 10), rtol=1e-6)


def test_a_repeated_index_keeps_its_last_error():
    sampler = PrioritizedSampler(4, alpha=1.0, eps=0.0)
    sampler.update(np.array([2, 1, 2]), np.array([5.0, 1.0, 3.0]))
    assert sampler.tree[sampler.capacity + 2] == 3.0 and sampler.total == 1 + 1 + 3 + 1


def test_the_device_tree_samples_and_updates_as_the_host_tree():
    size, batch = 37, 16
    host = PrioritizedSampler(size, alpha=0.7)
    device = DevicePrioritizedSampler(size, alpha=0.7, device=torch.device("cpu"))
    rng_host, rng_device, errors = (
        np.random.default_rng(1),
        np.random.default_rng(1),
        np.random.default_rng(2),
    )
    for step in range(30):
        beta = 0.4 + 0.02 * step
        index, weights = host.sample(batch, beta, rng_host)
        d_index, d_weights = device.sample(batch, beta, rng_device)
        assert isinstance(d_index, torch.Tensor) and isinstance(d_weights, torch.Tensor)
        np.testing.assert_array_equal(d_index.numpy(), index)
        np.testing.assert_allclose(d_weights.numpy(), weights, rtol=1e-6)
        td = errors.exponential(size=batch).astype(np.float32)
        index[::5] = index[0]  # repeated rows: the last write wins on both
        host.update(index, td)
        device.update(torch.from_numpy(index), torch.from_numpy(td))
        # torch's and numpy's float32 powers may differ in the last bit
        np.testing.assert_allclose(device.tree.numpy(), host.tree, rtol=1e-6)
    assert float(device.max_priority) == np.float32(host.max_priority)
    # checkpoints move between the two
    meta, tensors = device.training_state()
    restored = PrioritizedSampler(size, alpha=0.7)
    restored.load_training_state(meta, tensors)
    np.testing.assert_array_equal(restored.tree, device.tree.numpy())
