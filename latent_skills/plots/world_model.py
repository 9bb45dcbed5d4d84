"""Paper Fig. 5: where an abstract world model says the prior's skills end, drawn on the maze."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._canvas import HEADING_CMAP, PANEL_INCHES, new_figure, save_png
from ._windows import goal_slice, heading_degrees, position_slice, require_stage

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from latent_skills.agents import LatentSkillAgent

WALL_COLOUR = "0.35"


def draw_maze(ax: Axes, maze: Any) -> None:
    """The walls of a Gymnasium-Robotics maze (``env.unwrapped.maze``: PointMaze, AntMaze), in env x-y."""
    from matplotlib.patches import Rectangle

    size = maze.maze_size_scaling
    for row, cells in enumerate(maze.maze_map):
        for col, cell in enumerate(cells):
            if cell == 1:
                x, y = maze.cell_rowcol_to_xy(np.array([row, col]))
                ax.add_patch(Rectangle((x - size / 2, y - size / 2), size, size, color=WALL_COLOUR, lw=0))
    ax.set_xlim(-maze.x_map_center, maze.x_map_center)
    ax.set_ylim(-maze.y_map_center, maze.y_map_center)


def _start_observation(env: Any, maze: Any, reset_cell: tuple[int, int] | None, seed: int) -> Any:
    options = None
    if reset_cell is not None:
        row, col = (int(v) for v in reset_cell)
        if maze is None:
            raise ValueError("reset_cell needs a maze env (PointMaze, AntMaze)")
        rows, cols = len(maze.maze_map), len(maze.maze_map[0])
        if not (0 <= row < rows and 0 <= col < cols) or maze.maze_map[row][col] == 1:
            raise ValueError(
                f"reset_cell {(row, col)} is a wall or outside the {rows}×{cols} maze; pick a free cell"
            )
        options = {"reset_cell": np.array([row, col])}
    observation, _ = env.reset(seed=seed, options=options)
    return observation


def plot_world_model(
    agent: LatentSkillAgent,
    path: str | os.PathLike,
    *,
    observation: Any = None,
    reset_cell: tuple[int, int] | None = None,
    n_samples: int = 200,
    seed: int = 0,
) -> Path:
    """Paper Fig. 5: sample ``n_samples`` latents from the agent's prior at one state and draw the end
    positions its abstract world model predicts for them (``agent.predict_end_states``, LDCP's),
    with the start, the goal and the maze's walls. A prior that keeps the data's modes sends the
    skills down every corridor that leaves the start.

    The state is ``observation``, or a reset of the agent's evaluation env (with ``seed``, in
    ``reset_cell`` = (row, col) of the maze map when given). The state must hold a 2-D
    ``achieved_goal`` (PointMaze, AntMaze). Writes a PNG of 5 × 4 inches at 100 dpi.
    """
    predict = getattr(agent, "predict_end_states", None)
    if not callable(predict):
        raise TypeError(
            f"{type(agent).__name__} has no abstract world model (predict_end_states): this figure "
            "needs an LDCP agent"
        )
    for stage in ("dynamics", "prior"):
        if stage in agent.stage_names():
            require_stage(agent, stage, "sampling skills and predicting their ends")
    flattener = agent.spec.flattener
    pos = position_slice(flattener)
    if pos is None:
        raise ValueError(
            "the agent's states hold no 2-D achieved_goal position to draw (PointMaze and AntMaze do)"
        )
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    if observation is not None and reset_cell is not None:
        raise ValueError("pass observation or reset_cell, not both")
    env = agent.spec.make_env() if agent.spec.eval_env_spec is not None else None
    try:
        maze = getattr(env.unwrapped, "maze", None) if env is not None else None
        if observation is None:
            if env is None:
                raise ValueError("this agent has no evaluation env recorded: pass observation=...")
            observation = _start_observation(env, maze, reset_cell, seed)
    finally:
        if env is not None:
            env.close()
    state = flattener.flatten(observation)
    if state.ndim != 1:
        raise ValueError(f"pass one observation, not a batch (flat shape {state.shape})")
    latents = agent.sample_latents(observation, n_samples, seed=seed)
    ends = np.asarray(predict(observation, latents))
    if ends.shape != (n_samples, flattener.dim):
        raise ValueError(
            f"predict_end_states returned shape {ends.shape}; expected ({n_samples}, {flattener.dim})"
        )
    start, end_xy = state[pos], ends[:, pos]

    fig = new_figure(1.25 * PANEL_INCHES, PANEL_INCHES)
    ax = fig.add_subplot()
    if maze is not None:
        draw_maze(ax, maze)
    # faint lines: which end belongs to which skill is the start, so every skill's line starts there
    ax.plot(
        np.stack([np.full(n_samples, start[0]), end_xy[:, 0]]),
        np.stack([np.full(n_samples, start[1]), end_xy[:, 1]]),
        color="0.6",
        lw=0.4,
        alpha=0.5,
    )
    points = ax.scatter(
        end_xy[:, 0],
        end_xy[:, 1],
        c=heading_degrees(end_xy - start),
        cmap=HEADING_CMAP,
        vmin=-180,
        vmax=180,
        s=10,
        linewidths=0,
        zorder=3,
    )
    ax.scatter(start[0], start[1], marker="o", s=70, color="black", zorder=4, label="start")
    goal = goal_slice(flattener)
    if goal is not None:
        goal_xy = state[goal]
        ax.scatter(
            goal_xy[0],
            goal_xy[1],
            marker="*",
            s=160,
            color="gold",
            edgecolors="black",
            zorder=4,
            label="goal",
        )
    ax.set_aspect("equal", adjustable="datalim" if maze is None else "box")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(points, ax=ax, label="heading of predicted end − start (degrees)", shrink=0.8)
    ax.set_title(
        f"World-model end states of {n_samples} prior samples (H = {agent.config.horizon})", fontsize=10
    )
    return save_png(fig, path)
