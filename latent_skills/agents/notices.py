"""A one-line notice when a stage on a CPU will take hours: the paper preset is sized for a GPU.

``LDCQ.from_dataset(id)`` uses the paper's hyperparameters (the API contract) and the command line
the quick preset; on a CPU the paper preset runs for days. Rather than a different default per entry
point, a stage measures its own speed over its first steps and, if the rest would take more than
:data:`SLOW_STAGE_S`, says so once with the estimate and the ways out.
"""

from __future__ import annotations

import time
import warnings

import torch

SLOW_STAGE_S = 3600.0  # a stage estimated to take longer gets the notice
MEASURE_S = 10.0  # measured over at least this long ...
MEASURE_STEPS = 5  # ... and this many steps (the paper skills stage runs ~1 step/s on a CPU core)


class SlowTrainingWarning(UserWarning):
    """A stage on a CPU is estimated to take hours (see :mod:`latent_skills.agents.notices`)."""


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} days"


class SlowStageNotice:
    """Watches one stage's first steps on a CPU and warns once if the rest will take hours."""

    def __init__(
        self, agent: str, stage: str, steps_field: str, n_steps: int, done: int, device: torch.device
    ) -> None:
        self.agent, self.stage, self.steps_field, self.n_steps = agent, stage, steps_field, n_steps
        self.active = device.type == "cpu" and n_steps - done > MEASURE_STEPS
        self.first, self.start = done, time.perf_counter()

    def message(self, rate: float) -> str | None:
        """The notice for a stage running ``rate`` steps/s at step ``first``, or None if it is quick."""
        left = (self.n_steps - self.first) / rate
        if left <= SLOW_STAGE_S:
            return None
        return (
            f"{self.agent} {self.stage} on the CPU: {rate:.3g} steps/s, so its {self.n_steps - self.first:,} "
            f"steps take about {_hours(left)}. The paper preset is sized for a GPU: for a first run on a "
            f"CPU use preset='quick' (command line: --preset quick), fewer steps ({self.steps_field}=N), "
            "or device='cuda'."
        )

    def step(self, done: int) -> None:
        """Call after each step; the first call past the measuring window decides."""
        if not self.active:
            return
        elapsed = time.perf_counter() - self.start
        if done - self.first < MEASURE_STEPS or elapsed < MEASURE_S:
            return
        self.active = False
        text = self.message((done - self.first) / elapsed)
        if text is not None:
            warnings.warn(text, SlowTrainingWarning, stacklevel=2)


__all__ = ["SLOW_STAGE_S", "SlowStageNotice", "SlowTrainingWarning"]
