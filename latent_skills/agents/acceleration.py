"""Optional speed-ups for training: ``torch.compile`` and bf16 autocast.

Both are off by default and change the numbers a run produces. On this project's 2-core CPU
(``benchmarks/stage_speed.py --compile`` / ``--precision bf16``; BENCHMARKS.md has the figures)
compiling makes the paper preset's Q stage 1.4× faster once compiled but costs about half a minute
per stage and needs a C++ compiler, so it pays on long runs only; bf16 autocast is many times slower
on a CPU without bf16 instructions. Neither is measured on a GPU yet. ``learn(compile=True)`` (or a dict of ``torch.compile`` keyword
arguments, e.g. ``{"mode": "max-autotune"}``) compiles the agent's networks *in place*
(``nn.Module.compile``), so evaluation and the candidate bank use the compiled code too; the weights and
checkpoints are unchanged. ``learn(precision="bf16")`` runs each step's forward pass under
``torch.autocast`` (weights, gradients and optimiser state stay float32, so no loss scaling is needed).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

__all__ = ["PRECISIONS", "autocast", "check_precision", "compile_networks", "compile_options"]

PRECISIONS = ("float32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """The context a training step's forward pass runs in: bf16 autocast on ``device``, or nothing."""
    if check_precision(precision) == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compile_networks(modules: Iterable[nn.Module], done: set[int], options: dict[str, Any]) -> int:
    """Compile each module and its direct children in place with ``torch.compile(**options)``,
    skipping those in ``done`` (ids, updated); returns how many were compiled.

    The children matter because stages call them directly (the skill VAE's loss calls its encoder
    and decoder, not its own ``forward``); a compiled parent inlines compiled children. Modules
    holding a recurrent layer stay eager: the skill encoder's GRU runs on packed sequences, which
    ``torch.compile`` cannot trace.
    """
    count = 0
    for module in modules:
        for sub in (module, *module.children()):
            if id(sub) in done or isinstance(sub, nn.ModuleList | nn.ModuleDict) or not _compilable(sub):
                continue
            sub.compile(**options)
            done.add(id(sub))
            count += 1
    return count


def _compilable(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) and not any(
        isinstance(m, nn.RNNBase) for m in module.modules()
    )


def compile_options(compile: bool | dict[str, Any]) -> dict[str, Any] | None:
    """``learn``'s ``compile`` argument as ``torch.compile`` keyword arguments (None: do not compile)."""
    if isinstance(compile, dict):
        return dict(compile)
    if isinstance(compile, bool):
        return {} if compile else None
    raise TypeError(f"compile must be True/False or a dict of torch.compile arguments, got {compile!r}")
