"""Evaluation protocols: which env an agent is scored on, for how long, and how a score is computed.

A dataset's stored evaluation env does not always score the way the papers' tables did (D4RL).
Minari's ``D4RL/kitchen`` env keeps paying a completed task on every step of a 450-step episode, and
Minari's AntMaze env draws a random start and goal and pays every step spent at the goal. A score is
only worth printing beside the paper's if it follows D4RL's protocol, so evaluation follows a named
protocol:

- ``"d4rl"``: D4RL's protocol, for the families the papers use: :class:`D4RLKitchen`,
  :class:`D4RLAntMaze`, :class:`D4RLMaze2D` (single-goal PointMaze).
- ``"dataset"``: :class:`DatasetProtocol`, the dataset's evaluation env as stored.

``None`` (or ``"auto"``) picks ``"d4rl"`` where one of D4RL's protocols applies to the agent's stored
evaluation env (decided from the env id, its JSON kwargs and the observation's keys: see
:func:`choose_protocol`), ``"dataset"`` otherwise.

Every protocol builds its env as the rest of the library does (:mod:`.safe_make`): a registered id
plus JSON kwargs and a time limit, so nothing a checkpoint names is imported or called.

Sources (read for these settings): D4RL's code (github.com/Farama-Foundation/D4RL):
``d4rl/kitchen/__init__.py`` and ``kitchen_envs.py`` (kitchen), ``d4rl/locomotion/__init__.py``,
``maze_env.py``, ``ant.py`` and ``goal_reaching_env.py`` (antmaze), ``d4rl/pointmaze/__init__.py``
and ``maze_model.py`` (maze2d); Gymnasium-Robotics' ``FrankaKitchen-v1``, ``AntMaze_*-v4`` and
``PointMaze_*-v3`` (the envs these settings are applied to); Minari's dataset pages for the stored
observation spaces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from .robotics import register_robotics_envs
from .safe_make import EnvRecord

D4RL, DATASET, AUTO = "d4rl", "dataset", "auto"
PROTOCOLS: tuple[str, ...] = (D4RL, DATASET)
SOURCE = "this agent"

# D4RL's kitchen task sets (d4rl/kitchen/kitchen_envs.py): kitchen-mixed uses the first,
# kitchen-partial and kitchen-complete the second (KitchenMicrowaveKettleLightSliderV0).
KITCHEN_TASK_SETS: tuple[frozenset[str], ...] = (
    frozenset({"microwave", "kettle", "bottom burner", "light switch"}),
    frozenset({"microwave", "kettle", "light switch", "slide cabinet"}),
)
KITCHEN_EPISODE_STEPS = 280  # d4rl/kitchen/__init__.py: max_episode_steps=280 for all three


@dataclass(frozen=True)
class D4RLMaze:
    """One of D4RL's maze layouts: the Gymnasium-Robotics map with the same walls, the fixed start
    (``R``) and goal (``G``) cells of D4RL's evaluation maps, and D4RL's episode lengths."""

    name: str
    walls: tuple[tuple[int, ...], ...]  # 1 = wall, 0 = free, as Gymnasium-Robotics' maps
    reset_cell: tuple[int, int]  # (row, col): antmaze's R in *_MAZE_TEST (maze_env.py)
    antmaze_goal: tuple[int, int]  # (row, col): antmaze's G in *_MAZE_TEST (maze_env.py)
    maze2d_goal: tuple[int, int]  # (row, col): maze2d's G (pointmaze/maze_model.py)
    antmaze_steps: int  # locomotion/__init__.py, antmaze-*-v2
    maze2d_steps: int  # pointmaze/__init__.py, maze2d-*-v1

    def matches(self, maze_map: Sequence[Sequence[Any]]) -> bool:
        """Whether ``maze_map`` has this layout's walls (markers such as ``"g"`` count as free)."""
        return _walls(maze_map) == self.walls


def _walls(maze_map: Sequence[Sequence[Any]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(1 if cell == 1 else 0 for cell in row) for row in maze_map)


# The walls are D4RL's U_MAZE / BIG_MAZE / HARDEST_MAZE (maze_env.py), which are Gymnasium-Robotics'
# U_MAZE / MEDIUM_MAZE / LARGE_MAZE (maze/maps.py) cell for cell.
D4RL_MAZES: tuple[D4RLMaze, ...] = (
    D4RLMaze(
        "umaze",
        ((1, 1, 1, 1, 1), (1, 0, 0, 0, 1), (1, 1, 1, 0, 1), (1, 0, 0, 0, 1), (1, 1, 1, 1, 1)),
        reset_cell=(1, 1),
        antmaze_goal=(3, 1),
        maze2d_goal=(1, 1),
        antmaze_steps=700,
        maze2d_steps=300,
    ),
    D4RLMaze(
        "medium",
        (
            (1, 1, 1, 1, 1, 1, 1, 1),
            (1, 0, 0, 1, 1, 0, 0, 1),
            (1, 0, 0, 1, 0, 0, 0, 1),
            (1, 1, 0, 0, 0, 1, 1, 1),
            (1, 0, 0, 1, 0, 0, 0, 1),
            (1, 0, 1, 0, 0, 1, 0, 1),
            (1, 0, 0, 0, 1, 0, 0, 1),
            (1, 1, 1, 1, 1, 1, 1, 1),
        ),
        reset_cell=(1, 1),
        antmaze_goal=(6, 6),
        maze2d_goal=(6, 6),
        antmaze_steps=1000,
        maze2d_steps=600,
    ),
    D4RLMaze(
        "large",
        (
            (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1),
            (1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1),
            (1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1),
            (1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1),
            (1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1),
            (1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1),
            (1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1),
            (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        ),
        reset_cell=(1, 1),
        antmaze_goal=(7, 9),
        maze2d_goal=(7, 9),
        antmaze_steps=1000,
        maze2d_steps=800,
    ),
)


# ---------------------------------------------------------------------------------------- protocols
class EvaluationProtocol(ABC):
    """How an agent is evaluated: the env (``record``, built by :meth:`make_env`), the reference
    scores handed to the episode loop, and :meth:`score`, which turns the loop's result (returns,
    ``success_rate`` where the env reports success) into the protocol's ``normalized_score`` and
    ``success_rate``, adding ``protocol``."""

    name: ClassVar[str]
    record: EnvRecord

    @property
    def reference(self) -> tuple[float, float] | None:
        """Reference scores for :func:`~.evaluation.normalized_score` in the episode loop."""
        return None

    def make_env(self) -> gym.Env:
        """The protocol's env: the registered id with JSON kwargs and time limit (:mod:`.safe_make`)."""
        return self.record.make(SOURCE)

    @abstractmethod
    def score(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with this protocol's ``normalized_score``, ``success_rate`` and ``protocol``."""


@dataclass(frozen=True)
class DatasetProtocol(EvaluationProtocol):
    """``"dataset"``: the dataset's evaluation env as stored (its id, kwargs and episode length).
    Score: 100·(R − ref_min)/(ref_max − ref_min) with the dataset's reference scores; Kitchen, which
    has none, 100·R/4 on its own reward (which, in Minari's kitchen env, pays a completed task on every
    later step). ``success_rate``: episodes where the env reported ``success``/``is_success``."""

    name: ClassVar[str] = DATASET
    record: EnvRecord
    reference_scores: tuple[float, float] | None = None

    @property
    def reference(self) -> tuple[float, float] | None:
        return self.reference_scores

    def score(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**result, "protocol": self.name}


@dataclass(frozen=True)
class D4RLKitchen(EvaluationProtocol):
    """``"d4rl"`` on FrankaKitchen: D4RL's kitchen protocol (``d4rl/kitchen/kitchen_envs.py``,
    ``KitchenBase``: ``REMOVE_TASKS_WHEN_COMPLETE = TERMINATE_ON_TASK_COMPLETE = True``;
    ``d4rl/kitchen/__init__.py``: ``max_episode_steps=280``, ``ref_min_score=0``, ``ref_max_score=4``).

    Env: ``FrankaKitchen-v1`` with the dataset's four tasks (mixed: microwave, kettle, bottom burner,
    light switch; partial and complete: microwave, kettle, light switch, slide cabinet),
    ``remove_task_when_completed=True`` (a task pays once, on the step it is completed),
    ``terminate_on_tasks_completed=True`` and 280 steps. The return is then the number of distinct
    tasks completed. Score: 100 × tasks completed / 4, averaged over episodes; success: all four done.
    """

    name: ClassVar[str] = D4RL
    record: EnvRecord
    tasks: tuple[str, ...]

    def score(self, result: dict[str, Any]) -> dict[str, Any]:
        completed = np.asarray(result["returns"], float)  # reward = tasks completed that step, once each
        n = len(self.tasks)
        return {
            **result,
            "normalized_score": float(100.0 * completed.mean() / n),
            "success_rate": float(np.mean(completed >= n)),
            "protocol": self.name,
        }


@dataclass(frozen=True)
class D4RLAntMaze(EvaluationProtocol):
    """``"d4rl"`` on AntMaze: D4RL's antmaze-v2 protocol (``d4rl/locomotion/__init__.py``:
    ``eval=True``, ``reward_type='sparse'``, the ``*_MAZE_TEST`` maps, 700 steps for umaze and 1000
    for medium and large, ``ref_min_score=0``, ``ref_max_score=1``; ``maze_env.py``: the start is the
    map's ``R`` cell, the goal its single ``G`` cell, both with a little uniform noise;
    ``goal_reaching_env.py``: reward 1 within 0.5 of the goal and, with ``eval=True``, the episode
    ends there).

    Env: the Gymnasium-Robotics AntMaze of the same layout with D4RL's start (``"r"``) and goal
    (``"g"``) cells as the only ones in the map, ``continuing_task=False`` (the episode ends at the
    goal), ``reset_target=False``, ``reward_type="sparse"``, D4RL's episode length. The return is 1 if
    the goal was reached, else 0. Score: 100 × the fraction of episodes that reached the goal;
    success: the env's ``info["success"]`` (Gymnasium-Robotics counts the goal reached within 0.45,
    D4RL within 0.5: the one difference left).
    """

    name: ClassVar[str] = D4RL
    record: EnvRecord
    maze: D4RLMaze

    def score(self, result: dict[str, Any]) -> dict[str, Any]:
        rate = result.get("success_rate")
        if rate is None:  # the env reports success on every step; this is not that env
            raise ValueError(f"{self.record.id} reported no success: the D4RL AntMaze score needs it")
        return {
            **result,
            "normalized_score": 100.0 * float(rate),
            "success_rate": rate,
            "protocol": self.name,
        }


@dataclass(frozen=True)
class D4RLMaze2D(EvaluationProtocol):
    """``"d4rl"`` on single-goal PointMaze: D4RL's maze2d protocol (``d4rl/pointmaze/__init__.py``,
    ``maze2d-*-v1``: ``reward_type='sparse'``, ``reset_target=False``, one fixed goal cell, 300 / 600 /
    800 steps for umaze / medium / large; ``maze_model.py``: reward 1 on every step within 0.5 of the
    goal, the episode never ends at the goal; start anywhere free).

    Env: the dataset's stored evaluation env, which must already be that: ``PointMaze_*-v3`` with
    D4RL's single goal cell (the only ``"g"`` in the map), ``continuing_task=True``,
    ``reset_target=False``, sparse reward and D4RL's episode length (as
    :mod:`latent_skills.data.makers.pointmaze` writes with ``task="single-goal"``). Score: 100·(R −
    ref_min)/(ref_max − ref_min) with the dataset's reference scores (D4RL's normalisation; the
    reference values are the dataset's, measured on this env). Success: the env's ``info["success"]``.
    """

    name: ClassVar[str] = D4RL
    record: EnvRecord
    maze: D4RLMaze
    reference_scores: tuple[float, float]

    @property
    def reference(self) -> tuple[float, float] | None:
        return self.reference_scores

    def score(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**result, "protocol": self.name}


# ---------------------------------------------------------------------------------------- choosing
def _registered(record: EnvRecord) -> tuple[dict[str, Any], int | None]:
    """The record's kwargs and time limit, where it leaves them out the registered ones."""
    register_robotics_envs()
    registered = gym.registry.get(record.id)
    kwargs = {**(registered.kwargs if registered else {}), **record.kwargs}
    steps = record.max_episode_steps
    if steps is None and registered is not None:
        steps = registered.max_episode_steps
    return kwargs, steps


def _layout(maze_map: Any) -> D4RLMaze | None:
    if not isinstance(maze_map, list) or not all(isinstance(row, list) for row in maze_map):
        return None
    return next((maze for maze in D4RL_MAZES if maze.matches(maze_map)), None)


def _kitchen(record: EnvRecord, goal_keys: Sequence[str]) -> D4RLKitchen | str:
    kwargs, _ = _registered(record)
    tasks = kwargs.get("tasks_to_complete", list(goal_keys))
    if not isinstance(tasks, list) or frozenset(tasks) not in KITCHEN_TASK_SETS:
        return f"its tasks {tasks!r} are not one of D4RL's kitchen task sets"
    d4rl_kwargs = {
        **record.kwargs,
        "tasks_to_complete": list(tasks),
        "remove_task_when_completed": True,
        "terminate_on_tasks_completed": True,
    }
    return D4RLKitchen(EnvRecord(record.id, d4rl_kwargs, KITCHEN_EPISODE_STEPS), tuple(tasks))


def _antmaze(record: EnvRecord) -> D4RLAntMaze | str:
    kwargs, _ = _registered(record)
    maze = _layout(kwargs.get("maze_map"))
    if maze is None:
        return "its maze is not one of D4RL's (umaze, medium, large)"
    maze_map: list[list[Any]] = [list(row) for row in maze.walls]
    maze_map[maze.reset_cell[0]][maze.reset_cell[1]] = "r"
    maze_map[maze.antmaze_goal[0]][maze.antmaze_goal[1]] = "g"
    d4rl_kwargs = {
        **record.kwargs,
        "maze_map": maze_map,
        "continuing_task": False,
        "reset_target": False,
        "reward_type": "sparse",
    }
    return D4RLAntMaze(EnvRecord(record.id, d4rl_kwargs, maze.antmaze_steps), maze)


def _maze2d(record: EnvRecord, reference: tuple[float, float] | None) -> D4RLMaze2D | str:
    kwargs, steps = _registered(record)
    maze_map = kwargs.get("maze_map")
    maze = _layout(maze_map)
    if maze is None or maze_map is None:
        return "its maze is not one of D4RL's (umaze, medium, large)"
    markers = {(i, j): c for i, row in enumerate(maze_map) for j, c in enumerate(row) if isinstance(c, str)}
    problems = [
        f"its goal cells are {sorted(markers)} (D4RL: only {maze.maze2d_goal})"
        if {k: v.lower() for k, v in markers.items()} != {maze.maze2d_goal: "g"}
        else "",
        "" if kwargs.get("reward_type", "sparse") == "sparse" else "its reward is not sparse",
        "" if kwargs.get("continuing_task", True) is True else "it ends episodes at the goal",
        "" if kwargs.get("reset_target") is False else "it moves the goal (reset_target)",
        "" if steps == maze.maze2d_steps else f"its episodes last {steps} steps (D4RL: {maze.maze2d_steps})",
        "" if reference is not None else "the dataset has no reference scores",
    ]
    problems = [p for p in problems if p]
    if problems:
        return "; ".join(problems)
    assert reference is not None
    return D4RLMaze2D(record, maze, reference)


def d4rl_protocol(
    record: EnvRecord, goal_keys: Sequence[str] = (), reference: tuple[float, float] | None = None
) -> EvaluationProtocol | str:
    """D4RL's protocol for the evaluation env ``record``, or why none applies (a sentence).

    Decided from the env id and its JSON kwargs (with the registered defaults where the record leaves
    them out): ``FrankaKitchen-*`` with one of D4RL's task sets (the stored ``tasks_to_complete``, or
    ``goal_keys``, the keys of the observation's ``achieved_goal``), ``AntMaze_*`` on one of D4RL's
    layouts, and ``PointMaze_*`` already set up as D4RL's maze2d (one fixed goal at D4RL's cell).
    """
    if record.id.startswith("FrankaKitchen"):
        return _kitchen(record, goal_keys)
    if record.id.startswith("AntMaze_"):
        return _antmaze(record)
    if record.id.startswith("PointMaze_"):
        return _maze2d(record, reference)
    return "D4RL's protocols cover FrankaKitchen, AntMaze and single-goal PointMaze (maze2d)"


def choose_protocol(
    name: str | None,
    record: EnvRecord | None,
    *,
    goal_keys: Sequence[str] = (),
    reference: tuple[float, float] | None = None,
    dataset_id: str | None = None,
) -> EvaluationProtocol:
    """The protocol ``name`` (``"d4rl"``, ``"dataset"``, or ``None``/``"auto"``: ``"d4rl"`` where it
    applies, else ``"dataset"``) for an agent whose stored evaluation env is ``record``.

    A protocol that does not apply (``"d4rl"`` on a dataset D4RL has no protocol for) or an unknown
    name is a ValueError naming the choices."""
    choices = f"choose one of {[AUTO, *PROTOCOLS]} (None = {AUTO!r})"
    if name is not None and name not in (AUTO, *PROTOCOLS):
        raise ValueError(f"unknown evaluation protocol {name!r}: {choices}")
    if record is None:
        if name == D4RL:
            raise ValueError(
                f"protocol 'd4rl' needs the agent's evaluation env, and none is recorded; {choices}"
            )
        raise ValueError("This agent has no evaluation env recorded: pass env= (a gym.Env or an env id).")
    if name == DATASET:
        return DatasetProtocol(record, reference)
    found = d4rl_protocol(record, goal_keys, reference)
    if isinstance(found, EvaluationProtocol):
        return found
    if name == D4RL:
        where = (
            f"dataset {dataset_id!r} (evaluation env {record.id!r})" if dataset_id else f"env {record.id!r}"
        )
        raise ValueError(
            f"protocol 'd4rl' does not apply to {where}: {found}. Use protocol='dataset' (the "
            f"dataset's evaluation env as stored); {choices}"
        )
    return DatasetProtocol(record, reference)
