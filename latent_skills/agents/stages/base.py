"""What every training stage shares: the narrow view of its agent it is built from
(:class:`StageContext`), its random streams, the shard of each step's batch, one step's result
(:class:`StepResult`) and the exact training state it saves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast, overload

import numpy as np
import torch
from torch import nn

from latent_skills.checkpoint import split_state
from latent_skills.config import AgentConfig
from latent_skills.nn import SkillVAE

from .. import distributed
from ..device_data import DeviceArrays, gathers_on_device
from ..resume import (
    Resumable,
    load_optimizer_state,
    numpy_generator_state,
    optimizer_state,
    set_numpy_generator_state,
)
from ..spec import AgentSpec
from ..training_data import TrainingData

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows

    from ..priors import LatentPrior

TrainingState = tuple[dict[str, Any], dict[str, torch.Tensor]]  # a stage's state between steps
ConfigT = TypeVar("ConfigT", bound=AgentConfig)


@dataclass(frozen=True)
class StageStreams:
    """A stage's random streams, seeded from the config's seed and the stage's ``index`` (its place
    among the agent's stages). Both are the same on every rank: all draw the global batch's indices
    and noise and each takes its rows (:class:`Shard`), so N ranks train as one process does."""

    seed: int
    index: int
    rng: np.random.Generator  # batch indices
    generator: torch.Generator  # noise, on the training device

    @classmethod
    def seeded(cls, seed: int, index: int, device: torch.device) -> StageStreams:
        rng = np.random.default_rng([seed, index])
        return cls(seed, index, rng, torch.Generator(device).manual_seed(seed * 1000 + index))


@dataclass(frozen=True)
class StageContext(Generic[ConfigT]):
    """What a stage sees of its agent: the config (typed as the agent's), the spec, the training
    data, the modules by name, the prior as the agent samples it, the device, whether to show
    progress, and the stage's random streams."""

    config: ConfigT
    spec: AgentSpec
    data: TrainingData
    modules: Mapping[str, nn.Module]
    prior: LatentPrior
    device: torch.device
    streams: StageStreams
    progress: bool = False

    @property
    def windows(self) -> SkillWindows:
        return self.data.windows

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """q(z|τ) mean and std of every window (computed once per trained skill encoder)."""
        vae = cast(SkillVAE, self.modules["vae"])
        return self.data.posterior_of(vae, self.device, progress_bar=self.progress)


@dataclass(frozen=True)
class Shard:
    """A step's global batch (window indices drawn alike on every rank) and this rank's rows of
    it: all of them in one process."""

    batch: Any  # np.ndarray, or a device tensor where the Q stage samples on the device
    rows: slice | None = None  # None: every row
    weight: float = 1.0  # the rows' share of the batch's mean loss, by which their gradient counts

    @property
    def size(self) -> int:
        return len(self.batch)

    def take(self, drawn: Any) -> Any:
        """This rank's rows of ``drawn`` (a tensor or array, or a tuple of them, batch first)."""
        if self.rows is None:
            return drawn
        return tuple(x[self.rows] for x in drawn) if isinstance(drawn, tuple) else drawn[self.rows]

    def draw(self, draw: Callable[[int], Any]) -> Any:
        """``draw(global batch size)`` and this rank's rows of it: one process's random stream,
        whatever the number of ranks."""
        return self.take(draw(self.size))


@dataclass(frozen=True)
class StepResult:
    """One step's loss, its metrics (0-dim tensors on the device), the batch's shard and what
    :meth:`TrainingStage.after_step` needs beyond it (the Q stage: each row's TD error)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    shard: Shard
    row_errors: torch.Tensor | None = None


class TrainingStage(Generic[ConfigT]):
    """One stage of training. Subclasses set the class attributes and implement ``build_modules``,
    ``__init__`` (optimiser, data) and ``loss``; a stage sees its agent only through its
    :class:`StageContext`."""

    name: ClassVar[str]
    creates: ClassVar[tuple[str, ...]] = ()  # the modules it builds and trains (copied by reuse_stages)
    shaped_by: ClassVar[tuple[str, ...]] = ()  # config fields that shape them
    steps_field: ClassVar[str]  # the config field with its number of gradient steps
    condition_kind: ClassVar[str | None] = None  # for a prior stage: what the prior conditions on
    # an optional stage runs only when its steps field is > 0 (0: skipped, not needed by later stages)
    optional: ClassVar[bool] = False

    @classmethod
    def build_modules(cls, config: Any, spec: AgentSpec, state_dim: int) -> dict[str, nn.Module]:
        """The modules this stage creates, for ``state_dim``-number states (the observation
        encoder's output) and ``spec``'s actions."""
        return {}

    def __init__(self, ctx: StageContext[ConfigT]) -> None:
        self.ctx = ctx
        self.config: ConfigT = ctx.config
        self.rng, self.generator = ctx.streams.rng, ctx.streams.generator
        self.world, self.rank = distributed.world_size(), distributed.rank()
        # batches gathered on the device from device copies of the arrays (:mod:`..device_data`)
        self.on_device = gathers_on_device(ctx.device)
        self.n_steps: int = getattr(ctx.config, self.steps_field)  # this run's plan sets it (run_stage)
        self.trained: list[nn.Module] = []  # in train mode during the stage, optimised
        self.followers: list[nn.Module] = []  # changed by after_step (target networks)
        self.resumables: dict[str, Resumable] = {}
        self.optimizer: torch.optim.Optimizer

    @classmethod
    def skipped(cls, config: Any, spec: AgentSpec) -> bool:
        """Whether this agent does not run the stage: an optional stage whose steps field is 0."""
        return cls.optional and getattr(config, cls.steps_field) == 0

    def loss(self, step: int) -> StepResult:
        raise NotImplementedError

    def finish(self) -> None:
        """Work once the stage's last step is done, before it counts as trained (and is saved)."""

    def after_step(self, step: int, result: StepResult) -> None:
        """Work after the optimiser step (priorities, target networks), from what ``loss`` returned."""

    @overload
    def take_shard(self, batch: np.ndarray) -> tuple[np.ndarray, Shard]: ...
    @overload
    def take_shard(self, batch: torch.Tensor) -> tuple[torch.Tensor, Shard]: ...
    def take_shard(self, batch: np.ndarray | torch.Tensor) -> tuple[np.ndarray | torch.Tensor, Shard]:
        """This rank's rows of the global batch ``batch`` (drawn alike on every rank; all of it in
        one process) and the shard that says which they are."""
        if self.world == 1:
            return batch, Shard(batch)
        rows = distributed.shard_rows(len(batch))
        shard = Shard(batch, rows, (rows.stop - rows.start) / len(batch))
        return batch[rows], shard

    def draw_windows(self, batch_size: int, pool: np.ndarray | None = None) -> np.ndarray:
        """A global batch of window indices from the stage's stream: any window, or one of ``pool``."""
        if pool is None:
            return self.rng.integers(0, len(self.ctx.windows), batch_size)
        return pool[self.rng.integers(0, len(pool), batch_size)]

    def normal_draw(self, width: int) -> Callable[[int], torch.Tensor]:
        """A draw of ``(n, width)`` standard normals from the stage's torch stream."""
        return lambda n: torch.randn((n, width), generator=self.generator, device=self.ctx.device)

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.ctx.device)

    def gather(self, source: Any, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``source[index]`` (windows, a mask or a per-window array) on the training device: gathered
        on the host on a CPU, on the device from device copies elsewhere (:mod:`..device_data`)."""
        device = self.ctx.device
        if not self.on_device:
            return self.tensor(np.asarray(source[index]))
        arrays = self.ctx.data.extras.setdefault(f"device_arrays:{device}", DeviceArrays(device))
        return arrays.gather(source, index)

    # -- resuming exactly
    def training_state(self) -> TrainingState:
        """Everything but the weights that the next step depends on, as JSON + tensors."""
        optimizer_meta, optimizer_tensors = optimizer_state(self.optimizer)
        meta: dict[str, Any] = {"optimizer": optimizer_meta, "resumables": {}}
        tensors = {f"optimizer.{k}": v for k, v in optimizer_tensors.items()}
        meta["numpy_generator"] = numpy_generator_state(self.rng)
        tensors["torch_generator"] = self.generator.get_state()
        for name, part in self.resumables.items():
            part_meta, part_tensors = part.training_state()
            meta["resumables"][name] = part_meta
            tensors.update({f"{name}.{k}": v for k, v in part_tensors.items()})
        return meta, tensors

    def load_training_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        load_optimizer_state(self.optimizer, meta["optimizer"], split_state(tensors, "optimizer"))
        set_numpy_generator_state(self.rng, meta["numpy_generator"])
        self.generator.set_state(tensors["torch_generator"])
        for name, part in self.resumables.items():
            part.load_training_state(meta["resumables"][name], split_state(tensors, name))
