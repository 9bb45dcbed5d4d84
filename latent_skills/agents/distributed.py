"""Data-parallel training over ``torch.distributed``, started by ``torchrun``.

``torchrun --standalone --nproc-per-node N $(which latent-skills) train ...`` (or
``agent.learn()`` in a script run by torchrun) trains one agent on N processes. torchrun sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; with ``WORLD_SIZE`` > 1
:func:`init` joins the process group once (gloo for CPU tensors, NCCL for CUDA ones on
``cuda:LOCAL_RANK``). Without those variables nothing here does anything and a run is the
single-process run, bit for bit.

How a step is shared (see ``training.run_stage`` and ``TrainingStage.take_shard``):

- every rank draws the *same* global batch of window indices from the stage's seeded stream (the
  single-process stream) and takes its contiguous slice of the rows, so the global batch size is the
  config's and the rows are exactly those of a one-process run;
- after ``backward`` the gradients are summed across ranks, each rank's weighted by its share of the
  batch (:func:`all_reduce_gradients`), before clipping and the optimiser step; every rank then takes
  the same step and keeps identical weights. We all-reduce gradients ourselves instead of wrapping
  modules in ``DistributedDataParallel``: the stages call their modules' own ``loss`` methods (not
  ``forward``), target networks and samplers are outside any wrapper, and one explicit collective per
  step is easy to read and to check;
- the logged metrics are all-reduced means over the global batch (so they are what a one-process run
  logs), and the stop decisions (a callback returning False, Ctrl-C/SIGTERM, a non-finite loss) are
  agreed by all ranks at the same step.

A rank that dies makes the others' next collective fail within ``LATENT_SKILLS_DIST_TIMEOUT`` seconds
(default 600: it must exceed the longest pause of rank 0 alone, an evaluation or a checkpoint save).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import timedelta

import torch
import torch.distributed as dist

TIMEOUT_ENV = "LATENT_SKILLS_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0


def requested_world_size() -> int:
    """The number of processes torchrun (or the environment) asks for; 1 when not set."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        seconds = DEFAULT_TIMEOUT_S if raw is None else float(raw)
    except ValueError as exc:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: give a number of seconds") from exc
    if seconds <= 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: give a positive number of seconds")
    return timedelta(seconds=seconds)


def init() -> bool:
    """Join the process group when ``WORLD_SIZE`` > 1 (once; later calls do nothing). Returns
    whether this process trains with others."""
    if is_initialized():
        return True
    if requested_world_size() <= 1:
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        backend = "cpu:gloo,cuda:nccl"  # CUDA tensors over NCCL; a --device cpu run still works
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, timeout=timeout())
    return True


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Whether this process logs, shows progress, evaluates and saves (rank 0, or the only one)."""
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def shard_rows(batch: int) -> slice:
    """This rank's contiguous slice of a global batch of ``batch`` rows (all of them in one process)."""
    world, me = world_size(), rank()
    if world == 1:
        return slice(0, batch)
    if batch < world:
        raise ValueError(
            f"a batch of {batch} rows cannot be shared by {world} processes: use a batch size of at "
            f"least {world} (the batch size is the global one, split across processes)"
        )
    base, extra = divmod(batch, world)
    lo = me * base + min(me, extra)
    return slice(lo, lo + base + (1 if me < extra else 0))


def all_reduce_gradients(params: Iterable[torch.Tensor], weight: float = 1.0) -> None:
    """Sum ``weight`` · grad over ranks, in place, in one flat collective (parameters without a
    gradient are skipped: every rank has the same graph). With ``weight`` = this rank's share of the
    batch the result is the gradient of the global batch's mean loss."""
    if not is_initialized():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads]) * weight
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of ``values`` (a new tensor; ``values`` itself in one process)."""
    if not is_initialized():
        return values
    out = values.clone()
    dist.all_reduce(out)
    return out


def broadcast(tensor: torch.Tensor, src: int) -> None:
    """``tensor`` from rank ``src`` to all ranks, in place."""
    if is_initialized():
        dist.broadcast(tensor, src)


def destroy() -> None:
    if is_initialized():
        dist.destroy_process_group()


__all__ = [
    "TIMEOUT_ENV",
    "all_reduce_gradients",
    "all_reduce_sum",
    "barrier",
    "broadcast",
    "init",
    "is_initialized",
    "is_main",
    "local_rank",
    "rank",
    "requested_world_size",
    "shard_rows",
    "timeout",
    "world_size",
]
