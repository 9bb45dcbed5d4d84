"""Grid planner and waypoint controller for gymnasium-robotics mazes (the D4RL/Minari expert).

The expert that generated D4RL's ``maze2d`` and Minari's ``D4RL/pointmaze`` datasets plans over the
maze's cell grid with Q-iteration (four moves, 50 iterations, γ = 0.99, reward 1 on entering the goal
cell) and follows the resulting cell path with a PD controller. This module reproduces it.

The controller runs once per environment step, so everything on the per-step path uses plain Python
floats: numpy calls on 2-element arrays cost more than the arithmetic itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MOVES", "MazeExpert", "GridPlanner", "q_iteration_next_cells"]

Cell = tuple[int, int]

# (row, col) steps in the order of Minari's generation script (EXPLORATION_ACTIONS: col+1, col-1,
# row-1, row+1): the order decides ties in the argmax, i.e. which of two equally short paths is taken.
MOVES: tuple[Cell, ...] = ((0, 1), (0, -1), (-1, 0), (1, 0))


def _is_free(maze_map: Sequence[Sequence[Any]], cell: Cell) -> bool:
    """A cell is free when it is on the map and not a wall (walls are the integer 1)."""
    i, j = cell
    if not (0 <= i < len(maze_map) and 0 <= j < len(maze_map[0])):
        return False
    return maze_map[i][j] != 1


def q_iteration_next_cells(
    maze_map: Sequence[Sequence[Any]],
    goal_cell: Cell,
    iterations: int = 50,
    gamma: float = 0.99,
) -> dict[Cell, Cell]:
    """Solve the grid MDP for ``goal_cell`` by Q-iteration and return each free cell's next cell.

    States are the map's cells, actions the four moves; a move into a wall or off the map is invalid
    (no successor, so its value is only its reward, 0). The reward is 1 for a move that enters the
    goal cell. The greedy next cell of the goal cell itself is not meaningful and is left out.

    Args:
        maze_map: the maze's list of rows (1 = wall; anything else is free).
        goal_cell: ``(row, col)`` of the goal; must be free.
        iterations: number of Q-iteration sweeps (50 in D4RL/Minari).
        gamma: discount (0.99 in D4RL/Minari).

    Returns:
        ``{cell: next_cell}`` for every free cell other than the goal.

    Raises:
        ValueError: the goal is a wall, or some free cell cannot reach the goal within
            ``iterations`` moves (the greedy path would loop forever).
    """
    goal_cell = (int(goal_cell[0]), int(goal_cell[1]))
    if not _is_free(maze_map, goal_cell):
        raise ValueError(f"goal cell {goal_cell} is a wall or off the map")
    rows, cols = len(maze_map), len(maze_map[0])
    n_states, n_actions = rows * cols, len(MOVES)
    # next_state[s, a] (or -1 for an invalid move), reward[s, a]
    next_state = np.full((n_states, n_actions), -1, dtype=np.int64)
    reward = np.zeros((n_states, n_actions))
    for i in range(rows):
        for j in range(cols):
            for a, (di, dj) in enumerate(MOVES):
                nxt = (i + di, j + dj)
                if _is_free(maze_map, nxt):
                    next_state[i * cols + j, a] = nxt[0] * cols + nxt[1]
                    reward[i * cols + j, a] = 1.0 if nxt == goal_cell else 0.0
    valid = next_state >= 0
    safe_next = np.where(valid, next_state, 0)
    q = np.zeros((n_states, n_actions))
    for _ in range(iterations):
        v = q.max(axis=1)
        q = reward + gamma * np.where(valid, v[safe_next], 0.0)

    best = q.argmax(axis=1)
    result: dict[Cell, Cell] = {}
    for i in range(rows):
        for j in range(cols):
            cell = (i, j)
            if cell == goal_cell or not _is_free(maze_map, cell):
                continue
            s = i * cols + j
            if q[s].max() <= 0.0:
                raise ValueError(f"cell {cell} cannot reach goal {goal_cell} within {iterations} moves")
            di, dj = MOVES[int(best[s])]
            result[cell] = (i + di, j + dj)
    return result


class GridPlanner:
    """Greedy Q-iteration policies over one maze map, computed once per goal cell and cached."""

    def __init__(self, maze_map: Sequence[Sequence[Any]], iterations: int = 50, gamma: float = 0.99) -> None:
        self.maze_map = [list(row) for row in maze_map]
        self.iterations = iterations
        self.gamma = gamma
        self._cache: dict[Cell, dict[Cell, Cell]] = {}

    def next_cells(self, goal_cell: Cell) -> dict[Cell, Cell]:
        """``{cell: next_cell}`` towards ``goal_cell`` (see :func:`q_iteration_next_cells`)."""
        key = (int(goal_cell[0]), int(goal_cell[1]))
        policy = self._cache.get(key)
        if policy is None:
            policy = q_iteration_next_cells(self.maze_map, key, self.iterations, self.gamma)
            self._cache[key] = policy
        return policy

    def path(self, start_cell: Cell, goal_cell: Cell) -> list[Cell]:
        """Cells visited from ``start_cell`` (excluded) to ``goal_cell`` (included)."""
        policy = self.next_cells(goal_cell)
        cell, out = (int(start_cell[0]), int(start_cell[1])), []
        while cell != tuple(goal_cell):
            cell = policy[cell]
            out.append(cell)
        return out


class MazeExpert:
    """The D4RL/Minari waypoint expert for gymnasium-robotics point mazes; call it on an obs dict.

    It plans a cell path to the goal cell with :class:`GridPlanner` and steers with
    ``a = clip(kp·(target − position) − kd·velocity, −1, 1)``. Intermediate waypoints are cell centres
    minus ``U[0,1)²·waypoint_jitter``; the last waypoint is the exact goal. It moves on to the next
    waypoint when within ``waypoint_threshold`` of the current one, and replans whenever
    ``obs["desired_goal"]`` moves (by more than 1e-3).

    Args:
        maze: the environment's ``env.unwrapped.maze`` (a ``gymnasium_robotics`` ``Maze``).
        rng: generator for the waypoint jitter; a fresh unseeded one when None.
        kp, kd: PD gains (10 and 1 in D4RL/Minari).
        waypoint_threshold: distance at which a waypoint counts as reached (0.1).
        waypoint_jitter: scale of the uniform offset subtracted from intermediate waypoints (0.2).
    """

    def __init__(
        self,
        maze: Any,
        rng: np.random.Generator | None = None,
        *,
        kp: float = 10.0,
        kd: float = 1.0,
        waypoint_threshold: float = 0.1,
        waypoint_jitter: float = 0.2,
    ) -> None:
        self.maze = maze
        self.rng = rng if rng is not None else np.random.default_rng()
        self.kp, self.kd = float(kp), float(kd)
        self.waypoint_threshold = float(waypoint_threshold)
        self.waypoint_jitter = float(waypoint_jitter)
        self.planner = GridPlanner(maze.maze_map)
        # Grid geometry as floats for the per-step cell conversions.
        self._scale = float(maze.maze_size_scaling)
        self._xc = float(maze.x_map_center)
        self._yc = float(maze.y_map_center)
        self.reset()

    def reset(self) -> None:
        """Forget the current plan (call at an env reset); the next call replans."""
        self._goal: tuple[float, float] | None = None
        self._goal_cell: Cell = (-1, -1)
        self._policy: Mapping[Cell, Cell] = {}
        self._target_cell: Cell = (-1, -1)
        self._tx = self._ty = 0.0

    def xy_to_cell(self, x: float, y: float) -> Cell:
        """Same as ``maze.cell_xy_to_rowcol`` on plain floats."""
        return (
            math.floor((self._yc - y) / self._scale),
            math.floor((x + self._xc) / self._scale),
        )

    def cell_to_xy(self, cell: Cell) -> tuple[float, float]:
        """Same as ``maze.cell_rowcol_to_xy`` on plain floats."""
        return (
            (cell[1] + 0.5) * self._scale - self._xc,
            self._yc - (cell[0] + 0.5) * self._scale,
        )

    def _set_target(self, cell: Cell) -> None:
        self._target_cell = cell
        if cell == self._goal_cell:
            assert self._goal is not None
            self._tx, self._ty = self._goal
        else:
            cx, cy = self.cell_to_xy(cell)
            u = self.rng.random(2)
            self._tx = cx - float(u[0]) * self.waypoint_jitter
            self._ty = cy - float(u[1]) * self.waypoint_jitter

    def _replan(self, x: float, y: float, gx: float, gy: float) -> None:
        self._goal = (gx, gy)
        self._goal_cell = self.xy_to_cell(gx, gy)
        self._policy = self.planner.next_cells(self._goal_cell)
        cell = self.xy_to_cell(x, y)
        # Already in the goal cell, or (never seen: the ball cannot enter walls) off the free grid:
        # head straight for the goal.
        self._set_target(self._policy.get(cell, self._goal_cell))

    def act(self, x: float, y: float, vx: float, vy: float, gx: float, gy: float) -> tuple[float, float]:
        """One control step on plain floats: position, velocity, goal -> action ``(ax, ay)``."""
        goal = self._goal
        if goal is None or math.hypot(gx - goal[0], gy - goal[1]) > 1e-3:
            self._replan(x, y, gx, gy)
        if (
            self._target_cell != self._goal_cell
            and math.hypot(self._tx - x, self._ty - y) <= self.waypoint_threshold
        ):
            self._set_target(self._policy[self._target_cell])
        ax = self.kp * (self._tx - x) - self.kd * vx
        ay = self.kp * (self._ty - y) - self.kd * vy
        return min(1.0, max(-1.0, ax)), min(1.0, max(-1.0, ay))

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Action (float32, shape ``(2,)``) for a PointMaze observation dict."""
        x, y, vx, vy = obs["observation"][:4].tolist()
        gx, gy = obs["desired_goal"].tolist()
        return np.array(self.act(x, y, vx, vy, gx, gy), dtype=np.float32)
