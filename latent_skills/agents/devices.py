"""Which torch device an agent runs on: "auto" picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from latent_skills.config import ConfigError

from . import distributed


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA, else Apple's MPS, else the CPU; otherwise ``device`` checked to exist here.

    A device this machine lacks (``"cuda"`` without a GPU, ``"cuda:3"`` with two) or a string torch
    does not parse is a :class:`ConfigError` now, not a torch traceback at the first tensor.
    Under torchrun (``WORLD_SIZE`` > 1), ``"auto"`` and ``"cuda"`` mean ``cuda:LOCAL_RANK``.
    """
    if str(device) == "auto":
        if torch.cuda.is_available():
            return _local_cuda(torch.device("cuda"))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"device {device!r} is not a device torch knows; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={str(device)!r}: CUDA is not available on this machine; use device='cpu' or 'auto'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0 … cuda:{torch.cuda.device_count() - 1}); use one of those, 'cpu' or 'auto'"
            )
        resolved = _local_cuda(resolved)
    elif resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(
                f"device={str(device)!r}: MPS (Apple GPU) is not available on this machine; "
                "use device='cpu' or 'auto'"
            )
    elif resolved.type != "cpu":
        raise ConfigError(
            f"device={str(device)!r}: latent-skills runs on 'cpu', 'cuda' or 'mps'; use one of those or 'auto'"
        )
    return resolved


def _local_cuda(device: torch.device) -> torch.device:
    """``cuda`` without an index is this process's GPU, ``cuda:LOCAL_RANK``, under torchrun."""
    if device.index is None and distributed.requested_world_size() > 1:
        return torch.device("cuda", distributed.local_rank() % max(torch.cuda.device_count(), 1))
    return device
