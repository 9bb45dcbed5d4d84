"""Dataset makers: collect Minari datasets the way the standard offline-RL benchmarks were made."""

from latent_skills.data.makers.maze_planner import GridPlanner, MazeExpert, q_iteration_next_cells
from latent_skills.data.makers.pointmaze import (
    MAZES,
    MazeSpec,
    collect_pointmaze,
    default_dataset_id,
    eval_env_spec,
    reference_scores,
)

__all__ = [
    "MAZES",
    "GridPlanner",
    "MazeExpert",
    "MazeSpec",
    "collect_pointmaze",
    "default_dataset_id",
    "eval_env_spec",
    "q_iteration_next_cells",
    "reference_scores",
]
