"""An agent as a checkpoint folder and back (the format itself: :mod:`latent_skills.checkpoint`).

Loading picks the class from the registry by the name ``config.json`` gives; nothing the checkpoint
names is imported or called. It validates before it allocates: the agent the config describes is
built under an allocation budget derived from the tensor files' headers (a config edited to ask for a
huge model is stopped after at most that much), its tensors' names, shapes and dtypes are compared
with the headers, and only then is any tensor data read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.overrides import TorchFunctionMode

from latent_skills.checkpoint import (
    BOUND_TENSORS,
    CONFIG_HASH_KEY,
    CheckpointError,
    TensorInfo,
    read_checkpoint,
    split_state,
    write_checkpoint,
)
from latent_skills.config import ConfigError

from .registry import agent_class
from .spec import AgentSpec
from .stages import TrainingState

if TYPE_CHECKING:
    from .base import LatentSkillAgent


def write_agent(
    agent: LatentSkillAgent, path: str | Path, run: dict[str, Any] | None, state: TrainingState | None
) -> Path:
    """``config.json`` + ``model.safetensors`` (+ the training state of an unfinished ``run``)."""
    tensors = {
        f"{prefix}.{name}": value
        for prefix, module in agent._modules.items()
        for name, value in module.state_dict().items()
    }
    meta = {
        "agent_type": type(agent).__name__,
        "library_version": _library_version(),
        "config": agent.config.to_dict(),
        "spec": agent.spec.to_dict(),
        "stages_completed": list(agent.stages_completed),
        "num_timesteps": agent.num_timesteps,
        "world_size": agent.world_size,
    }
    training_tensors = None
    if run is not None:
        meta["training_state"] = {**run, "stage_state": None if state is None else state[0]}
        training_tensors = {} if state is None else {f"stage.{k}": v for k, v in state[1].items()}
    return write_checkpoint(path, meta, tensors, training_tensors)


def sb3_style_folder(path: str | Path) -> Path:
    """The checkpoint folder ``path`` names, read as Stable-Baselines3 reads a zip: ``X.zip`` finds folder
    ``X`` (``EvalCallback`` saves ``best_model``, users type ``best_model.zip``) and ``X`` finds folder
    ``X.zip`` (``CheckpointCallback`` saves ``rl_model_1000_steps.zip``). An existing ``path`` wins."""
    folder = Path(path)
    if folder.exists():
        return folder
    other = folder.with_suffix("") if folder.suffix == ".zip" else folder.with_name(folder.name + ".zip")
    return other if other.is_dir() else folder


def read_agent(
    cls: type[LatentSkillAgent], base: type[LatentSkillAgent], path: str | Path, device: str | torch.device
) -> LatentSkillAgent:
    """The agent saved in ``path``, as ``cls`` (``base``: any registered class)."""
    path = sb3_style_folder(path)
    built: list[LatentSkillAgent] = []

    def build_and_compare(meta: dict[str, Any], headers: dict[str, TensorInfo]) -> None:
        built.clear()  # a reader that raced a save checks again
        agent = _build(cls, base, path, meta, headers, device)
        _compare(path, agent, {k: v for k, v in headers.items() if not k.startswith("training_state.")})
        built.append(agent)

    meta, tensors = read_checkpoint(path, training_state=True, check=build_and_compare)
    agent = built[0]
    kind = meta["agent_type"]
    training_tensors = split_state(tensors, "training_state")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("training_state.")}
    for prefix, module in agent._modules.items():
        state = split_state(tensors, prefix)
        for name, value in module.state_dict().items():
            if name.rsplit(".", 1)[-1] in BOUND_TENSORS and not torch.equal(value.cpu(), state[name]):
                raise CheckpointError(
                    f"{path}: {prefix}.{name} in model.safetensors differs from the action bounds "
                    "config.json records; the checkpoint is damaged or was edited."
                )
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}/model.safetensors does not fit this {kind} ({prefix}): {exc}"
            ) from exc
    agent.stages_completed = list(meta.get("stages_completed", []))
    agent.num_timesteps = int(meta.get("num_timesteps", 0))
    agent.world_size = int(meta.get("world_size", 1))
    if isinstance(meta.get("training_state"), dict):
        agent._resume_state = (meta["training_state"], training_tensors)
    return agent


# What building an agent may allocate beyond the tensors it saves (non-persistent buffers, the
# sampler's schedule, temporaries), and what each allocation is charged at least (its Python objects).
BUILD_SLACK_BYTES = 64 << 20
ALLOCATION_OVERHEAD_BYTES = 512


def _build(
    cls: type[LatentSkillAgent],
    base: type[LatentSkillAgent],
    path: str | Path,
    meta: dict[str, Any],
    headers: dict[str, TensorInfo],
    device: str | torch.device,
) -> LatentSkillAgent:
    """The agent ``meta`` describes, freshly initialised, built under an allocation budget: twice the
    bytes of the tensors the file holds, plus BUILD_SLACK_BYTES."""
    kind = meta["agent_type"]
    try:
        target = agent_class(kind)
    except ValueError as exc:
        raise CheckpointError(f"{path} holds an agent of unknown type {kind!r}: {exc}") from exc
    if cls is not base and target is not cls:
        raise CheckpointError(
            f"{path} holds a {kind} agent, not a {cls.__name__}: load it with {kind}.load(...) "
            "or latent_skills.load_agent(...)"
        )
    try:
        config = target.config_class.from_saved(meta["config"], source=f"{path}/config.json")
        spec = AgentSpec.from_dict(meta["spec"])
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        reseal = (
            " (after editing it, write it with latent_skills.checkpoint.seal_config(meta) so that "
            "its config_sha256 matches)"
            if CONFIG_HASH_KEY in meta
            else ""
        )
        raise CheckpointError(f"{path}/config.json does not describe a valid {kind}: {exc}{reseal}") from exc
    stored = sum(info.nbytes for name, info in headers.items() if not name.startswith("training_state."))
    budget = _AllocationBudget(2 * stored + BUILD_SLACK_BYTES)
    try:
        with budget:
            return target(config, spec, device)
    except _OverBudget:
        raise CheckpointError(
            f"{path}/config.json describes a {kind} far larger than model.safetensors holds "
            f"({stored:,} bytes of tensors; building it asked for more than {budget.limit:,}): the "
            "config was edited or damaged. Nothing more was allocated."
        ) from None
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}/config.json does not describe a valid {kind}: {exc}") from exc


def _compare(path: str | Path, agent: LatentSkillAgent, found: dict[str, TensorInfo]) -> None:
    """Every tensor the agent saves, present in the file with its shape and dtype; nothing else."""
    kind = type(agent).__name__
    stray = sorted({name.split(".", 1)[0] for name in found} - set(agent._modules))
    if stray:
        raise CheckpointError(f"{path}/model.safetensors has tensors for unknown modules {stray}")
    expected = {
        f"{prefix}.{name}": value
        for prefix, module in agent._modules.items()
        for name, value in module.state_dict().items()
    }
    problems = []
    missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    if missing:
        problems.append(f"missing {_few(missing)}")
    if extra:
        problems.append(f"unexpected {_few(extra)}")
    for name in sorted(expected.keys() & found.keys()):
        want, got = expected[name], found[name]
        if tuple(want.shape) != got.shape:
            problems.append(f"{name} has shape {list(got.shape)}, the config's model {list(want.shape)}")
        elif want.dtype != got.dtype:
            problems.append(f"{name} is {got.dtype}, the config's model {want.dtype}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(
            f"{path}/model.safetensors does not fit this {kind} as its config.json describes it: {shown}"
        )


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


class _OverBudget(Exception):
    pass


_SIZED = {torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.full, torch.empty_strided}
_SIZED_METHODS = {
    torch.Tensor.new_empty,
    torch.Tensor.new_zeros,
    torch.Tensor.new_ones,
    torch.Tensor.new_full,
}


class _AllocationBudget(TorchFunctionMode):
    """Stops the building of an agent once its tensor constructors (``torch.empty``, ``zeros``,
    ``arange``, ..., the calls ``nn`` layers make) ask for more than ``limit`` bytes in all, before the
    allocation that would exceed it."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.used = limit, 0

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        elements = _elements(func, args, kwargs)
        if elements is not None:
            dtype = kwargs.get("dtype")
            if isinstance(dtype, torch.dtype):
                itemsize = dtype.itemsize
            else:  # integers by default for these two, the default float dtype for the others
                itemsize = 8 if func in (torch.arange, torch.randint) else torch.get_default_dtype().itemsize
            self.used += elements * itemsize + ALLOCATION_OVERHEAD_BYTES
            if self.used > self.limit:
                raise _OverBudget
        return func(*args, **kwargs)


def _elements(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> int | None:
    """How many elements a tensor constructor call makes (None: not a constructor, or one that copies
    data that exists already)."""
    try:
        if func in _SIZED or func is torch.randint or func in _SIZED_METHODS:
            rest = args[1:] if func in _SIZED_METHODS else args
            size = kwargs.get("size")
            if size is None:
                size = next((a for a in rest if isinstance(a, Sequence)), None)
            if size is None:  # torch.empty(3, 4)
                size = [a for a in rest if isinstance(a, int)][: None if func is not torch.randint else 0]
            return math.prod(int(n) for n in size)
        if func is torch.arange:
            numbers = [float(a) for a in args if isinstance(a, int | float)]
            if not numbers:
                numbers = [float(kwargs.get("start", 0)), float(kwargs["end"]), float(kwargs.get("step", 1))]
            start, end = (0.0, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
            step = numbers[2] if len(numbers) > 2 else 1.0
            return max(0, math.ceil((end - start) / step)) if step else None
        if func in (torch.linspace, torch.logspace):
            return int(kwargs.get("steps", args[2] if len(args) > 2 else 0))
        if func is torch.eye:
            n = int(args[0] if args else kwargs["n"])
            return n * int(args[1] if len(args) > 1 else kwargs.get("m", n))
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):
        return None
    return None


def _library_version() -> str:
    # the source's own version (the one place it is written), also right for a source checkout or an
    # editable install whose installed metadata is older than the code
    from latent_skills import __version__

    return __version__
