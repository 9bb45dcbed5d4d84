"""One experiment flow, written once: make the dataset if it is missing, build the agent, learn with
saves, evaluate, write ``eval.json``.

    from latent_skills.recipes import load_recipe
    from latent_skills.runs import run
    outcome = run(load_recipe("ldcq-pointmaze-umaze-quick"), "runs/ldcq-umaze", seed=0)
    outcome.agent, outcome.result  # the trained agent (saved there) and its evaluation (eval.json)

``latent-skills train``, sweeps (:func:`latent_skills.sweep.run_one`), the zoo's release and the
benchmarks use it, or its steps where they do more between them (resuming, data-parallel ranks,
timing each stage): :func:`ensure_dataset`, :func:`train`, :func:`evaluate`, and :data:`SCORE_KEYS`,
the numbers every record of an evaluation keeps.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_skills.agents import LatentSkillAgent
    from latent_skills.recipes import Recipe

# The dataset `latent-skills train` uses when given none: made here, in a minute, without network.
EMBEDDED_DATASET = "latent-skills/pointmaze/umaze-v0"
EVAL_NAME = "eval.json"  # the evaluation of a run, in its folder
LOGS_NAME = "logs"  # the run's logs (progress.csv, ...), in its folder
COLLECT_STEPS = 100_000  # env steps of a dataset this library makes when it is missing
# The headline numbers of an evaluation (``agent.evaluate``'s dict), in the order records list them.
SCORE_KEYS = ("mean_return", "std_return", "normalized_score", "success_rate")

Echo = Callable[[str], Any]


def scores(result: Mapping[str, Any], *extra: str) -> dict[str, Any]:
    """What a record keeps of an evaluation: :data:`SCORE_KEYS` then ``extra`` (None where absent)."""
    return {key: result.get(key) for key in (*SCORE_KEYS, *extra)}


def made_here(dataset_id: str) -> tuple[str, str] | None:
    """``(maze, task)`` when ``dataset_id`` names a dataset this library makes (the ids
    ``latent-skills collect pointmaze`` writes by default), else None."""
    if not dataset_id.startswith("latent-skills/"):
        return None
    from latent_skills.data.makers import MAZES, TASKS, default_dataset_id

    for maze in MAZES:
        for task in TASKS:
            if default_dataset_id(maze, task) == dataset_id:
                return maze, task
    return None


def ensure_dataset(
    dataset_id: str,
    *,
    download: bool = False,
    steps: int = COLLECT_STEPS,
    progress: bool = True,
    echo: Echo | None = print,
) -> float | None:
    """Make ``dataset_id`` local. One this library makes (:func:`made_here`) is collected when missing
    (``steps`` env steps, seed 0, no network); another is downloaded by Minari with ``download=True``,
    or is a :class:`~latent_skills.data.DatasetNotFoundError` naming the fix. Returns the seconds the
    collection took (None: nothing was collected)."""
    from latent_skills.data.loading import is_local, load_dataset

    if is_local(dataset_id):
        return None
    made = made_here(dataset_id)
    if made is None:
        load_dataset(dataset_id, download=download)
        return None
    from latent_skills.data.makers import collect_pointmaze

    maze, task = made
    if echo is not None:
        echo(f"{dataset_id} is not local: making it ({steps // 1000}k steps, no network needed).")
    start = time.perf_counter()
    collect_pointmaze(maze, steps=steps, seed=0, task=task, progress=progress)
    return time.perf_counter() - start


def train(
    agent: LatentSkillAgent,
    out: str | os.PathLike,
    *,
    log_formats: Sequence[str] | None = ("csv",),
    resume: bool = False,
    progress_bar: bool = False,
    save_every: int | None = None,
    **learn: Any,
) -> LatentSkillAgent:
    """``agent.learn`` saving into ``out`` (resumable after each stage, and every ``save_every`` steps
    inside one), logging ``log_formats`` under ``out/logs`` (None: keep the agent's logger, as the
    other ranks of a data-parallel run do); ``resume`` continues the run saved there, its logs too.
    ``learn``: more of ``agent.learn``'s options. The logger is closed at the end, whatever happens."""
    if log_formats is not None:
        from latent_skills.loggers import configure_logger

        agent.set_logger(configure_logger(Path(out) / LOGS_NAME, log_formats, agent=agent, append=resume))
    try:
        agent.learn(
            progress_bar=progress_bar, save_path=Path(out), save_every=save_every, resume=resume, **learn
        )
    finally:
        agent.logger.close()  # flushes TensorBoard, finishes the W&B run
    return agent


def evaluate(
    agent: LatentSkillAgent,
    out: str | os.PathLike | None,
    *,
    episodes: int,
    envs: int = 10,
    seed: int = 0,
    progress_bar: bool = False,
) -> dict[str, Any]:
    """``agent.evaluate`` over ``episodes`` episodes (on at most ``envs`` envs, seeded by ``seed``),
    written to ``out/eval.json`` (``out=None``: not written)."""
    result = agent.evaluate(
        n_episodes=episodes, n_envs=min(envs, episodes), seed=seed, progress_bar=progress_bar
    )
    if out is not None:
        write_eval(result, Path(out) / EVAL_NAME)
    return result


def write_eval(result: Mapping[str, Any], path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run` made: the trained agent, its evaluation (None: not evaluated) and the seconds
    from building the agent to the end of training (the evaluation not included)."""

    agent: LatentSkillAgent
    result: dict[str, Any] | None
    train_seconds: float


def run(
    recipe: Recipe,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    device: str = "auto",
    download: bool = False,
    eval_episodes: int | None = None,
    eval_envs: int = 10,
    log_formats: Sequence[str] = ("csv",),
    progress_bar: bool = False,
    save_every: int | None = None,
    echo: Echo | None = None,
    **learn: Any,
) -> RunOutcome:
    """The whole flow for ``recipe`` with ``seed``: :func:`ensure_dataset`, ``recipe.make_agent``
    (``settings``: config fields over the recipe), :func:`train` into ``out``, then :func:`evaluate`
    on ``eval_episodes`` episodes (default: the recipe's; 0: no evaluation) into ``out/eval.json``."""
    ensure_dataset(recipe.dataset, download=download, progress=progress_bar, echo=echo)
    start = time.perf_counter()
    agent = recipe.make_agent(seed=seed, device=device, download=download, **dict(settings or {}))
    train(agent, out, log_formats=log_formats, progress_bar=progress_bar, save_every=save_every, **learn)
    train_seconds = time.perf_counter() - start
    episodes = recipe.eval_episodes if eval_episodes is None else eval_episodes
    result = None
    if episodes:
        result = evaluate(agent, out, episodes=episodes, envs=eval_envs, seed=seed, progress_bar=progress_bar)
    return RunOutcome(agent, result, train_seconds)
