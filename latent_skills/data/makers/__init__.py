"""Dataset makers: collect Minari datasets the way the standard offline-RL benchmarks were made."""

from latent_skills.data.makers.maze_planner import GridPlanner, MazeExpert, q_iteration_next_cells
from latent_skills.data.makers.pointmaze import (
    GOAL_CONDITIONED,
    MAZES,
    SINGLE_GOAL,
    TASKS,
    MazeSpec,
    collect_pointmaze,
    default_dataset_id,
    eval_env_spec,
    eval_goal_position,
    reference_scores,
)
from latent_skills.data.makers.saving import InvalidDatasetIdError, check_dataset_id

__all__ = [
    "GOAL_CONDITIONED",
    "MAZES",
    "SINGLE_GOAL",
    "TASKS",
    "GridPlanner",
    "InvalidDatasetIdError",
    "MazeExpert",
    "MazeSpec",
    "check_dataset_id",
    "collect_pointmaze",
    "default_dataset_id",
    "eval_env_spec",
    "eval_goal_position",
    "q_iteration_next_cells",
    "reference_scores",
]
