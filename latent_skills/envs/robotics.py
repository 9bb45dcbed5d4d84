"""Registering Gymnasium-Robotics' envs (PointMaze, AntMaze, FrankaKitchen, Adroit) and the library's
pixel PointMaze: the one place that imports ``gymnasium_robotics``."""

from __future__ import annotations

import contextlib
import io
import sys

import gymnasium as gym

from latent_skills.envs.pixel_maze import register_pixel_maze


def register_robotics_envs() -> None:
    """Gymnasium-Robotics envs and the library's pixel PointMaze must be registered before use.

    Gymnasium-Robotics prints a notice about its Adroit *Dense* envs' rewards to stderr when it is
    first imported, which opened every command (none of D4RL's datasets uses those envs); it is
    silenced here. An error while importing still raises as it is."""
    if "gymnasium_robotics" not in sys.modules:
        with contextlib.redirect_stderr(io.StringIO()):
            import gymnasium_robotics  # noqa: F401
    gym.register_envs(sys.modules["gymnasium_robotics"])
    register_pixel_maze()


__all__ = ["register_robotics_envs"]
