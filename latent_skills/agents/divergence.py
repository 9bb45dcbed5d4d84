"""Finite checks that do not stall an accelerator.

Reading a CUDA tensor on the host (``bool(torch.isfinite(loss))``, ``loss.item()``) waits for every
queued kernel, so a per-step check leaves the GPU idle between small kernels. Here each step folds its
loss and gradient norm into flags that stay on the device; :meth:`DivergenceWatch.check` reads them, once
every ``interval`` steps and before anything is saved, evaluated or stopped. On a CPU a read costs
nothing, so the interval there is 1 and a divergence is caught at the step it happens.

When a check finds a non-finite value, the weights go back to those of the last check that passed (up to
``interval`` steps back: the steps after it were taken blindly and may have spread the NaN).
"""

from __future__ import annotations

import torch

from . import distributed


class TrainingDivergedError(FloatingPointError):
    """A loss or gradient turned non-finite; the weights are those of the last good check."""


def check_interval(device: torch.device, log_interval: int) -> int:
    """Steps between reads of the flags: every step on a CPU, every ``log_interval`` on a device."""
    return 1 if device.type == "cpu" else max(1, log_interval)


class DivergenceWatch:
    def __init__(self, tracked: list[torch.Tensor], device: torch.device, interval: int) -> None:
        self.tracked, self.interval = tracked, interval
        self.snapshot = [p.detach().clone() for p in tracked]  # the weights of the last good check
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # step of the first NaN
        self.bad_loss = torch.zeros((), device=device)  # the loss at that step
        self.bad_gradient = torch.zeros((), dtype=torch.bool, device=device)  # the loss was finite there

    def observe(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Fold one step's loss and gradient norm into the flags, on the device."""
        loss = loss.detach()
        finite_loss = torch.isfinite(loss)
        newly = (self.first_bad < 0) & ~(finite_loss & torch.isfinite(grad_norm))
        self.first_bad = torch.where(newly, torch.full_like(self.first_bad, step), self.first_bad)
        self.bad_loss = torch.where(newly, loss.to(self.bad_loss.dtype), self.bad_loss)
        self.bad_gradient = torch.where(newly, finite_loss, self.bad_gradient)

    def due(self, step: int) -> bool:
        return (step + 1) % self.interval == 0

    def check(self, stage: str, refresh: bool = True) -> None:
        """Read the flags (agreed over all ranks). Non-finite: restore the last good weights and raise;
        finite: with ``refresh``, the current weights become the ones to restore (call it before the
        optimiser step, when the weights are those whose loss was just seen finite)."""
        first_bad = int(self.first_bad)
        if distributed.world_size() > 1:  # a rank that saw a NaN stops every rank
            flag = torch.tensor([1.0 if first_bad >= 0 else 0.0])
            if float(distributed.all_reduce_sum(flag)[0]) > 0 and first_bad < 0:
                first_bad = -2  # another rank's
        if first_bad == -1:
            if refresh:
                with torch.no_grad():
                    for saved, param in zip(self.snapshot, self.tracked, strict=True):
                        saved.copy_(param)
            return
        with torch.no_grad():
            for param, saved in zip(self.tracked, self.snapshot, strict=True):
                param.copy_(saved)
        fix = (
            f"training stopped with the weights of the last good check. Lower the stage's learning rate "
            f"(e.g. --set {stage}_lr=...) or check the dataset for outliers."
        )
        if first_bad == -2:
            raise TrainingDivergedError(f"Stage {stage!r}: another process's loss became non-finite; {fix}")
        if bool(self.bad_gradient):
            raise TrainingDivergedError(
                f"Stage {stage!r}: gradients became non-finite at step {first_bad}; {fix}"
            )
        raise TrainingDivergedError(
            f"Stage {stage!r}: the loss became {float(self.bad_loss)} at step {first_bad}; {fix}"
        )
