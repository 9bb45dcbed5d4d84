"""What it takes to stop a training run and continue it exactly: the in-progress stage's optimiser
moments, generator states and replay priorities as JSON + tensors (no pickle), and signal handling
that stops at the end of a step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from stable_baselines3.common.logger import CSVOutputFormat, Logger, configure

Tensors = dict[str, torch.Tensor]


class Resumable(Protocol):
    """Anything a stage keeps between steps besides module weights (e.g. replay priorities)."""

    def training_state(self) -> tuple[dict[str, Any], Tensors]: ...

    def load_training_state(self, meta: dict[str, Any], tensors: Tensors) -> None: ...


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C or SIGTERM; a checkpoint that resumes it was saved first."""

    def __init__(self, message: str, signal_number: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signal_number = signal_number


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], Tensors]:
    """An optimiser's ``state_dict`` split into JSON (hyperparameters, scalars) and tensors."""
    state = optimizer.state_dict()
    tensors: Tensors = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return {"param_groups": state["param_groups"], "scalars": scalars}, tensors


def load_optimizer_state(optimizer: torch.optim.Optimizer, meta: dict[str, Any], tensors: Tensors) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [
        {**group, "betas": tuple(group["betas"])} if "betas" in group else group
        for group in meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def numpy_generator_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)  # ints and strings: JSON as it is


def set_numpy_generator_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


class StopSignals:
    """Holds SIGINT (Ctrl-C) and SIGTERM (what clusters and ``timeout`` send) while a training step
    runs, so the loop can stop at the end of the step with consistent weights and optimiser state.

    Between steps (building a candidate bank, encoding windows) a signal stops at once; during
    ``steps()`` it is recorded in ``received`` and the loop checks it after each step. A second
    signal always stops at once. Outside the main thread (where handlers cannot be set) signals keep
    their default behaviour.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._in_steps = False

    def _handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received or not self._in_steps:
            self.received.append(signum)
            raise TrainingInterrupted(f"stopped by {name}", signum)
        self.received.append(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def steps(self) -> Iterator[None]:
        """Signals arriving inside this block wait for the loop to check ``received``."""
        self._in_steps = True
        try:
            yield
        finally:
            self._in_steps = False


class NumpyGeneratorState:
    """A numpy generator as a :class:`Resumable` (for a stage that draws from more than one)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def training_state(self) -> tuple[dict[str, Any], Tensors]:
        return {"state": numpy_generator_state(self.rng)}, {}

    def load_training_state(self, meta: dict[str, Any], tensors: Tensors) -> None:
        set_numpy_generator_state(self.rng, meta["state"])


def append_csv_logger(log_dir: str | os.PathLike) -> Logger:
    """An SB3 logger that appends to ``log_dir/progress.csv`` (a resumed run continues its curve)."""
    path = Path(log_dir) / "progress.csv"
    if not path.is_file():
        return configure(str(log_dir), ["csv"])
    return Logger(str(log_dir), [_AppendingCSV(path)])


class _AppendingCSV(CSVOutputFormat):
    def __init__(self, path: Path) -> None:
        self.file = open(path, "r+")  # noqa: SIM115 - SB3's writer keeps the file open and closes it
        header = self.file.readline().strip()
        self.keys = header.split(",") if header else []
        self.separator, self.quotechar = ",", '"'
        self.file.seek(0, os.SEEK_END)
