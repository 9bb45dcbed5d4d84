"""The training loop: which stages run, one step after another, with logging, callbacks, evaluation
during the last stage, divergence checks, periodic checkpoints, and stopping on Ctrl-C / SIGTERM at the
end of a step so that the run resumes exactly.

For callbacks (Stable-Baselines3's, unchanged) a *step* is one gradient step of the current stage:
``on_step`` runs after each, and ``agent.num_timesteps`` counts gradient steps over all stages (and
earlier ``learn`` calls). ``training_env`` is ``agent.get_env()``, the evaluation env as a VecEnv: no env
is stepped while training offline. ``locals`` holds ``total_timesteps`` (the count ``num_timesteps``
reaches if no callback stops training) and ``plan`` from the start, then, at each step, the stage's
``name``, ``step``, ``n_steps``, ``loss`` and ``logs`` (this step's metrics as 0-dim tensors on the
training device: ``float(logs["loss"])`` reads one, and on a GPU waits for the device to catch up).

Nothing in the loop reads the device every step: metrics are summed on the device and read every
``log_interval`` steps, and finite checks are read as :mod:`.divergence` says.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the loop trains data-parallel (see :mod:`.distributed`): each
rank computes its rows of the global batch, the gradients are averaged before clipping, the logged
metrics are the global batch's means (a callback's per-step ``logs`` are this rank's); rank 0 alone logs, shows progress, runs callbacks and evaluations
and writes checkpoints (the others wait at a barrier after each), and all ranks agree on when to stop.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import Logger
from torch import nn

from latent_skills._progress import on_terminal, progress
from latent_skills.checkpoint import CheckpointError, split_state

from . import distributed
from .acceleration import autocast, check_precision, compile_networks, compile_options
from .divergence import DivergenceWatch, check_interval
from .notices import SlowStageNotice
from .periodic_eval import PeriodicEvaluation
from .resume import StopSignals, TrainingInterrupted
from .stages import TrainingStage, TrainingState

if TYPE_CHECKING:
    from .base import LatentSkillAgent

Checkpoint = Callable[..., Path]  # (stage, step, state, sync=True) -> the folder


@dataclass(frozen=True)
class ResumePoint:
    """Where a saved run stopped inside its first remaining stage."""

    step: int
    stage_state: dict[str, Any] | None
    tensors: dict[str, torch.Tensor]


def learn(
    agent: LatentSkillAgent,
    total_timesteps: int | None,
    *,
    callback: BaseCallback | Callable | list | None,
    progress_bar: bool | None,
    stages: list[str] | tuple[str, ...] | str | None,
    save_path: str | Path | None,
    save_every: int | None,
    resume: bool,
    log_interval: int,
    eval_freq: int | None = None,
    eval_episodes: int = 10,
    eval_envs: int = 1,
    compile: bool | dict[str, Any] = False,
    precision: str = "float32",
) -> None:
    """See :meth:`LatentSkillAgent.learn`."""
    check_precision(precision)
    compiling = compile_options(compile)
    distributed.init()
    world, main = distributed.world_size(), distributed.is_main()
    if save_every is not None and (save_every < 1 or save_path is None):
        raise ValueError(f"save_every={save_every} needs save_path and must be ≥ 1")
    if resume:
        if total_timesteps is not None or stages is not None:
            raise ValueError(
                "resume=True continues the saved run's plan: leave out total_timesteps and stages"
            )
        plan, resumed = resumed_plan(agent)
    else:
        plan, resumed = make_plan(agent, total_timesteps, stages), None
    evaluator = None
    if eval_freq is not None:
        evaluator = PeriodicEvaluation(agent, eval_freq, eval_episodes, eval_envs, save_path, resume)
        if evaluator.stage not in plan:
            warnings.warn(
                f"eval_freq={eval_freq}: evaluations run in stage {evaluator.stage!r}, which this call "
                f"does not train ({list(plan)})",
                stacklevel=3,
            )
    user_logger = agent.logger
    if not main:  # rank 0 alone logs, evaluates and runs the callbacks
        evaluator, callback = None, None
        agent.logger = Logger(folder=None, output_formats=[])
    elif world > 1:
        agent.logger.log(f"data-parallel training on {world} processes (torch.distributed)")
    agent.world_size = world
    cb = init_callback(agent, callback)
    agent.progress = (on_terminal() if progress_bar is None else progress_bar) and main
    remaining = sum(plan.values()) - (0 if resumed is None else resumed.step)
    cb.on_training_start(
        {
            "self": agent,
            "total_timesteps": agent.num_timesteps + remaining,  # SB3's ProgressBarCallback reads it
            "plan": dict(plan),
            "callback": cb,
            "log_interval": log_interval,
            "tb_log_name": type(agent).__name__,
        },
        globals(),
    )
    names = list(plan)
    target = Path(save_path or "latent-skills-interrupted")

    def checkpoint(stage: str, step: int, state: TrainingState | None, sync: bool = True) -> Path:
        remaining = {n: plan[n] for n in names[names.index(stage) :]}
        path = target
        if main:  # the other ranks hold the same weights; they wait until it is written
            path = agent._write(target, {"plan": remaining, "stage": stage, "step": step}, state)
        if sync:
            distributed.barrier()
        return path

    signals = StopSignals()
    try:
        with signals.installed():
            for name in names:
                mark_untrained_from(agent, name)
                start = resumed if name == names[0] else None
                stopped = run_stage(
                    agent,
                    name,
                    plan[name],
                    start,
                    (cb, evaluator),
                    signals,
                    checkpoint,
                    save_every,
                    log_interval,
                    compiling=compiling,
                    precision=precision,
                )
                if stopped is not None:  # a callback stopped training: the stage is unfinished
                    if save_path is not None:
                        checkpoint(name, *stopped)
                    break
                agent.stages_completed = [
                    s for s in agent.stage_names() if s in {*agent.stages_completed, name}
                ]
                if save_path is not None:
                    later = names[names.index(name) + 1 :]
                    if later:
                        checkpoint(later[0], 0, None)
                    else:
                        if main:
                            agent._write(save_path, None, None)
                        distributed.barrier()
    except TrainingInterrupted as exc:
        if main:
            print(f"\n{exc}")
        raise
    finally:
        train_mode(agent, False)
        agent.logger = user_logger
    agent._resume_state = None
    cb.on_training_end()


def make_plan(
    agent: LatentSkillAgent, total: int | None, stages: list[str] | tuple[str, ...] | str | None
) -> dict[str, int]:
    """The stages to run, in order, with their step counts; errors name what is missing."""
    order = list(agent.stage_names())
    skipped = agent.skipped_stages()
    chosen = order if stages is None else [stages] if isinstance(stages, str) else list(stages)
    if not chosen:
        raise ValueError(f"stages=[] trains nothing: name some of {order}")
    unknown = [s for s in chosen if s not in order]
    if unknown:
        raise ValueError(f"{type(agent).__name__} has stages {order}; unknown: {unknown}")
    named_skipped = [s for s in chosen if s in skipped] if stages is not None else []
    if named_skipped:
        fields = [agent.stage_class(s).steps_field for s in named_skipped]
        raise ValueError(
            f"stages {named_skipped} are off in this config ({', '.join(f'{f}=0' for f in fields)}): set steps"
        )
    chosen = [s for s in order if s in chosen and s not in skipped]
    for stage in chosen:
        needed = [s for s in order[: order.index(stage)] if s not in skipped]
        missing = [s for s in needed if s not in agent.stages_completed + chosen]
        if missing:
            raise ValueError(
                f"stage {stage!r} trains over {missing}, which this agent has not trained: "
                f"learn(stages={missing + [stage]}) or reuse_stages(...) them first"
            )
    planned = agent.stage_steps()
    if total is None:
        return {s: planned[s] for s in chosen}
    if total < 1:
        raise ValueError(f"total_timesteps must be ≥ 1, got {total}")
    weight = sum(planned[s] for s in chosen)
    split = {s: int(total * planned[s] / weight) for s in chosen}
    split[chosen[-1]] += total - sum(split.values())
    empty = [s for s in chosen if split[s] < 1]
    if empty:
        raise ValueError(
            f"total_timesteps={total} leaves stages {empty} no step (split {split}): give more steps, or "
            "choose stages=..."
        )
    return split


def resumed_plan(agent: LatentSkillAgent) -> tuple[dict[str, int], ResumePoint]:
    if agent._resume_state is None:
        raise ValueError(
            "Nothing to resume: this agent holds no unfinished run (it finished, or was saved by "
            "save()). Train more with learn(stages=[...])."
        )
    run, tensors = agent._resume_state
    plan = {str(k): int(v) for k, v in run["plan"].items()}
    unknown = [s for s in plan if s not in agent.stage_names()]
    if unknown or not plan:
        raise CheckpointError(f"the checkpoint's training state names stages {unknown or 'none'}")
    return plan, ResumePoint(int(run["step"]), run.get("stage_state"), tensors)


def mark_untrained_from(agent: LatentSkillAgent, name: str) -> None:
    """Training ``name`` again makes it and every stage built on it (the later ones) untrained."""
    later = agent.stage_names()[agent.stage_names().index(name) :]
    agent.stages_completed = [s for s in agent.stages_completed if s not in later]


def init_callback(agent: LatentSkillAgent, callback: Any) -> BaseCallback:
    if isinstance(callback, list):
        callback = CallbackList(callback)
    elif callback is None:
        callback = CallbackList([])
    elif not isinstance(callback, BaseCallback):
        callback = ConvertCallback(callback)
    callback.init_callback(agent)  # reads .logger, .num_timesteps, get_env(), save()
    return callback


def train_mode(agent: LatentSkillAgent, on: bool) -> None:
    for module in agent.modules().values():
        module.train(on)


def run_stage(
    agent: LatentSkillAgent,
    name: str,
    n_steps: int,
    resumed: ResumePoint | None,
    watchers: tuple[BaseCallback, PeriodicEvaluation | None],
    signals: StopSignals,
    checkpoint: Checkpoint,
    save_every: int | None,
    log_interval: int,
    compiling: dict[str, Any] | None = None,
    precision: str = "float32",
) -> tuple[int, TrainingState] | None:
    """Run stage ``name`` from its first (or resumed) step to ``n_steps``; if a callback stops it,
    return the steps done and the stage's training state. Interrupts save a checkpoint that resumes
    at the last finished step. ``watchers``: the callbacks, and the evaluation during training."""
    callback, evaluator = watchers
    stage: TrainingStage | None = None
    done = 0 if resumed is None else resumed.step
    bar = progress(
        total=n_steps,
        initial=done,
        desc=f"{type(agent).__name__} {name}",
        unit="step",
        disable=not agent.progress,
    )
    try:
        stage = agent.make_stage(name)
        stage.n_steps = n_steps
        if compiling is not None:  # after make_stage, which may create this stage's networks
            compile_networks(agent.modules().values(), agent.compiled_modules, compiling)
        if resumed is not None and resumed.step > 0:
            assert resumed.stage_state is not None
            stage.load_training_state(resumed.stage_state, split_state(resumed.tensors, "stage"))
        train_mode(agent, False)
        for module in stage.trained:
            module.train(True)
        params = [p for group in stage.optimizer.param_groups for p in group["params"]]
        tracked: list[torch.Tensor] = [p for m in stage.trained + stage.followers for p in m.parameters()]
        watch = DivergenceWatch(tracked, agent.device, check_interval(agent.device, log_interval))
        running: dict[str, torch.Tensor] = {}  # metric sums since the last log, on the device
        start, first = time.perf_counter(), done
        notice = SlowStageNotice(type(agent).__name__, name, stage.steps_field, n_steps, done, agent.device)
        with signals.steps():
            for step in range(first, n_steps):
                with autocast(agent.device, precision):
                    result = stage.loss(step)
                loss, share = result.loss, result.shard.weight  # share: this rank's, of the global batch
                logs = {key: value.detach() for key, value in result.metrics.items()}  # 0-dim, on the device
                stage.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                distributed.all_reduce_gradients(params, share)  # the global batch's mean
                grad_norm = nn.utils.clip_grad_norm_(params, agent.config.grad_clip)
                watch.observe(step, loss, grad_norm)
                if watch.due(step):
                    watch.check(name)  # before the update: these weights gave a finite loss
                stage.optimizer.step()
                stage.after_step(step, result)
                agent.num_timesteps += 1
                done = step + 1
                for key, value in logs.items():  # weighted by the rank's share: summed over ranks below
                    running[key] = running.get(key, 0.0) + share * value
                if done % log_interval == 0 or done == n_steps:
                    count = (step % log_interval) + 1
                    means = dict(
                        zip(running, (global_sums(list(running.values())) / count).tolist(), strict=True)
                    )
                    for key, value in means.items():
                        agent.logger.record(f"{name}/{key}", value)
                    agent.logger.record("time/steps_per_s", (done - first) / (time.perf_counter() - start))
                    agent.logger.record("time/total_timesteps", agent.num_timesteps)  # SB3's key: curves' x
                    agent.logger.dump(agent.num_timesteps)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()})
                    running.clear()
                bar.update(1)
                notice.step(done)
                if evaluator is not None:
                    if evaluator.due(name, done):
                        watch.check(name, refresh=False)
                    evaluator.after_step(agent, name, done, stage.trained)
                callback.update_locals(locals())
                proceed, interrupted = callback.on_step(), bool(signals.received)
                if distributed.world_size() > 1:  # every rank stops at the same step
                    proceed, interrupted = agree_to_stop(proceed, interrupted)
                saving = save_every is not None and done % save_every == 0 and done < n_steps
                if not proceed or interrupted or saving or done == n_steps:
                    watch.check(name, refresh=False)  # nothing non-finite is saved or kept
                if not proceed:
                    return done, stage.training_state()
                if interrupted:
                    raise KeyboardInterrupt
                if saving:
                    checkpoint(name, done, stage.training_state())
            stage.finish()
    except KeyboardInterrupt as exc:
        if isinstance(exc, TrainingInterrupted) and len(signals.received) > 1:
            raise  # a second signal: stop at once, the last checkpoint stands
        if stage is not None and done > 0:
            state: TrainingState | None = stage.training_state()
        elif resumed is not None and resumed.step > 0:  # interrupted while rebuilding the stage
            assert resumed.stage_state is not None
            state = (resumed.stage_state, split_state(resumed.tensors, "stage"))
        else:
            state = None
        path = checkpoint(name, done, state, sync=False)  # another rank may be gone: no barrier
        cause = signal.Signals(signals.received[0]).name if signals.received else "KeyboardInterrupt"
        raise TrainingInterrupted(
            f"Interrupted ({cause}) in stage {name!r} after step {done} of {n_steps}: checkpoint "
            f"saved to {path}. Resume exactly with\n  {type(agent).__name__}.load({str(path)!r})"
            f".learn(resume=True)\nor `latent-skills train --resume {path}`.",
            signals.received[0] if signals.received else signal.SIGINT,
        ) from exc
    finally:
        bar.close()
        train_mode(agent, False)
    return None


def global_sums(values: list[torch.Tensor]) -> torch.Tensor:
    """``values`` (0-dim, on the device) stacked, and summed over ranks: one read, one collective."""
    if not values:
        return torch.zeros(0)
    local = torch.stack([v.float() for v in values]).cpu()
    return distributed.all_reduce_sum(local.double()) if distributed.world_size() > 1 else local.double()


def agree_to_stop(proceed: bool, interrupted: bool) -> tuple[bool, bool]:
    """Rank 0's callbacks decide whether to go on; a signal to any rank interrupts all."""
    flags = torch.tensor([0.0 if proceed else 1.0, 1.0 if interrupted else 0.0])
    stop, signalled = distributed.all_reduce_sum(flags).tolist()
    return stop == 0, signalled > 0
