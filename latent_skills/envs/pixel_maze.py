"""PointMaze seen from above as an RGB image: a fast renderer of MuJoCo's scene, and the pixel env.

:class:`MazeFrames` draws what MuJoCo's offscreen renderer shows of a ``PointMaze_*-v3`` scene through an
orthographic camera looking straight down on the whole map (the view :func:`mujoco_top_down_view`
sets up): the checkered floor, the walls' tops, the agent's green sphere and the goal's translucent red
one. It is numpy only: no OpenGL, and a 100k-step dataset renders in seconds
(``benchmarks/results/collect_speed_pixels.json``); ``tests/test_pixel_maze.py`` holds its frames against MuJoCo's on sampled states.
What it leaves out of MuJoCo's picture: the walls' specular highlight (a few levels of brightness).

:class:`PixelPointMaze` is ``PointMaze`` whose observation is that frame (``Box(0, 255, (S, S, 3),
uint8)``), or a Dict of the frame under ``"pixels"`` beside the state fields asked for in ``keys``
(``"observation"``, ``"achieved_goal"``, ``"desired_goal"``). It is registered as :data:`PIXEL_ENV_ID`
by :func:`latent_skills.envs.robotics.register_robotics_envs`, so datasets and checkpoints can name it
as their evaluation env like any other registered env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = [
    "PIXEL_ENV_ID",
    "STATE_KEYS",
    "MazeFrames",
    "PixelPointMaze",
    "mujoco_top_down_view",
]

PIXEL_ENV_ID = "latent-skills/PointMazePixels-v0"
STATE_KEYS = ("observation", "achieved_goal", "desired_goal")

# Colours as MuJoCo draws PointMaze's scene under its headlight (ambient 0.4 + diffuse 0.8 x the
# cosine to the camera, clipped at 1): the floor texture's two checker colours exactly, the walls' tops
# (rgba 0.7 0.5 0.3 at 1.2, plus the mean of their specular highlight), and the spheres' base colours.
_FLOOR_LIGHT = np.array([51, 76, 102], np.float32)  # rgb1 of the "groundplane" checker texture
_FLOOR_DARK = np.array([25, 51, 76], np.float32)  # rgb2
_WALL = np.array([222, 161, 100], np.float32)
_AGENT = np.array([0.3, 0.6, 0.3], np.float32)  # "particle_site", opaque
_GOAL = np.array([1.0, 0.0, 0.0], np.float32)  # "target", alpha 0.7
_GOAL_ALPHA = 1.0 - 0.3**2  # a translucent sphere is blended twice: its back and its front
_FLOOR_SQUARE = 2.0  # the checker's squares: 2 units wide (texrepeat 20 over the 80-unit plane)
_SPHERE_RADIUS = 0.2  # both sites' radius, in units of maze_size_scaling
_SUPERSAMPLE = 4  # samples per pixel side: MuJoCo's offscreen multisampling smooths edges likewise
_PHASES = 8  # a sphere's centre is placed to 1/8 of a pixel


def _shade(base: np.ndarray, cos_to_camera: np.ndarray) -> np.ndarray:
    light = np.clip(0.4 + 0.8 * cos_to_camera, 0.0, None)[..., None]
    return np.clip(base * light, 0.0, 1.0) * 255.0


class MazeFrames:
    """Top-down RGB frames of one maze: ``render(agent_xy, goal_xy)`` → ``uint8[size, size, 3]``.

    Args:
        maze_map: the maze's map as PointMaze takes it (rows of 1 = wall, anything else = floor).
        size: frame side in pixels.
        scale: PointMaze's ``maze_size_scaling`` (the side of a cell).
    """

    def __init__(self, maze_map: Sequence[Sequence[Any]], size: int = 64, scale: float = 1.0) -> None:
        if not 8 <= size <= 512:
            raise ValueError(f"frame size must be within 8..512 pixels, got {size}")
        self.walls = np.array([[cell == 1 for cell in row] for row in maze_map], dtype=bool)
        self.size = size
        self.scale = float(scale)
        rows, cols = self.walls.shape
        # The view: a square of side `extent` centred on the map, as mujoco_top_down_view sets it.
        self.extent = max(rows, cols) * self.scale
        self.pixel = self.extent / size
        self.background = self._draw_background()
        self.radius_px = _SPHERE_RADIUS * self.scale / self.pixel
        self._patch = int(np.ceil(2 * self.radius_px)) + 3
        self._sub = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE  # sample positions inside a pixel
        self._agent = self._sphere_table(_AGENT, 1.0)
        self._goal = self._sphere_table(_GOAL, _GOAL_ALPHA)

    def _world(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) of image positions given in (fractional) pixels from the top-left corner."""
        return cols * self.pixel - self.extent / 2, self.extent / 2 - rows * self.pixel

    def _draw_background(self) -> np.ndarray:
        n = self.size * _SUPERSAMPLE
        grid = (np.arange(n) + 0.5) / _SUPERSAMPLE
        x, y = self._world(grid[:, None], grid[None, :])
        x, y = np.broadcast_to(x, (n, n)), np.broadcast_to(y, (n, n))
        light = (np.floor(x / _FLOOR_SQUARE) + np.floor(y / _FLOOR_SQUARE)) % 2 == 1
        image = np.where(light[..., None], _FLOOR_LIGHT, _FLOOR_DARK)
        rows, cols = self.walls.shape
        col = np.floor((x + cols * self.scale / 2) / self.scale).astype(int)
        row = np.floor((rows * self.scale / 2 - y) / self.scale).astype(int)
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        wall = np.zeros((n, n), bool)
        wall[inside] = self.walls[row[inside], col[inside]]
        image = np.where(wall[..., None], _WALL, image)
        image = image.reshape(self.size, _SUPERSAMPLE, self.size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
        return np.rint(image).astype(np.uint8)

    def _pixel_of(self, xy: np.ndarray) -> np.ndarray:
        """(row, col) of world points in fractional pixels."""
        return np.stack([(self.extent / 2 - xy[..., 1]), (xy[..., 0] + self.extent / 2)], -1) / self.pixel

    def _sphere_table(self, base: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """A lit sphere seen from above, drawn once per sub-pixel position of its centre (a grid of
        ``_PHASES`` per pixel side): blend weights ``(phases², p, p, 1)`` and colours ``(phases², p, p, 3)``
        over the patch whose top-left pixel is ``floor(centre) - p // 2``."""
        p = self._patch
        phase = (np.arange(_PHASES) + 0.5) / _PHASES
        centre = p // 2 + np.stack(np.meshgrid(phase, phase, indexing="ij"), -1).reshape(-1, 2)
        samples = np.arange(p)[:, None] + self._sub  # (p, s): sample positions in the patch
        dr = samples[None, :, :, None, None] - centre[:, 0, None, None, None, None]
        dc = samples[None, None, None, :, :] - centre[:, 1, None, None, None, None]
        r2 = (dr**2 + dc**2) / self.radius_px**2
        inside = r2 < 1.0
        colour = _shade(base, np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)))
        hits = inside.sum(axis=(2, 4))
        mean_colour = (colour * inside[..., None]).sum(axis=(2, 4)) / np.maximum(hits, 1)[..., None]
        weight = alpha * hits[..., None] / _SUPERSAMPLE**2
        return weight.astype(np.float32), mean_colour.astype(np.float32)

    def _blend(self, canvas: np.ndarray, xy: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> None:
        """Blend the sphere at each frame's ``xy`` into ``canvas`` (frames padded by one patch on every
        side, uint8, in place)."""
        weights, colours = table
        p = self._patch
        centre = self._pixel_of(xy)
        whole = np.floor(centre).astype(int)
        phase = np.minimum(((centre - whole) * _PHASES).astype(int), _PHASES - 1)
        variant = phase[:, 0] * _PHASES + phase[:, 1]
        # Centres far outside the view are parked in the padding, where nothing is kept.
        top_left = np.clip(whole - p // 2, -p, self.size) + p
        span = np.arange(p)
        frame = np.arange(len(xy))[:, None, None]
        rows = (top_left[:, 0, None] + span)[:, :, None]
        cols = (top_left[:, 1, None] + span)[:, None, :]
        w = weights[variant]
        patch = canvas[frame, rows, cols].astype(np.float32)
        canvas[frame, rows, cols] = np.rint((1 - w) * patch + w * colours[variant]).astype(np.uint8)

    def render_batch(self, agent_xy: np.ndarray, goal_xy: np.ndarray | None = None) -> np.ndarray:
        """Frames for ``n`` states: ``agent_xy`` (and ``goal_xy``, or no goal drawn) of shape ``(n, 2)``."""
        agent_xy = np.asarray(agent_xy, np.float64).reshape(-1, 2)
        p, size = self._patch, self.size
        canvas = np.zeros((len(agent_xy), size + 2 * p, size + 2 * p, 3), np.uint8)
        canvas[:, p : p + size, p : p + size] = self.background
        self._blend(canvas, agent_xy, self._agent)
        if goal_xy is not None:  # the goal sits higher (z = 0.2): drawn over the agent
            goal = np.broadcast_to(np.asarray(goal_xy, np.float64).reshape(-1, 2), agent_xy.shape)
            self._blend(canvas, goal, self._goal)
        return np.ascontiguousarray(canvas[:, p : p + size, p : p + size])

    def render(self, agent_xy: np.ndarray, goal_xy: np.ndarray | None = None) -> np.ndarray:
        """One frame: ``uint8[size, size, 3]``."""
        goal = None if goal_xy is None else np.asarray(goal_xy)[None]
        return self.render_batch(np.asarray(agent_xy)[None], goal)[0]


def mujoco_top_down_view(model: Any, extent: float) -> Any:
    """Set ``model`` to render orthographically and return a free camera looking straight down on a
    square of side ``extent`` centred at the origin: the view :class:`MazeFrames` draws."""
    import mujoco

    model.vis.global_.orthographic = 1
    model.vis.global_.fovy = extent  # in orthographic mode: the view's height in world units
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = (0.0, 0.0, 0.0)
    camera.elevation, camera.azimuth, camera.distance = -90.0, 90.0, 10.0
    return camera


def pixel_observation_space(size: int, keys: Sequence[str], state_space: gym.Space) -> gym.Space:
    """The pixel env's observation space: the frame alone, or a Dict of it and ``keys`` (fields of
    PointMaze's Dict ``state_space``)."""
    frame = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
    if not keys:
        return frame
    assert isinstance(state_space, gym.spaces.Dict)
    return gym.spaces.Dict({"pixels": frame, **{key: state_space[key] for key in keys}})


def check_keys(keys: Sequence[str]) -> tuple[str, ...]:
    unknown = [key for key in keys if key not in STATE_KEYS]
    if unknown:
        raise ValueError(f"unknown state fields {unknown}; PointMaze has {list(STATE_KEYS)}")
    return tuple(dict.fromkeys(keys))


class PixelPointMaze(gym.Wrapper):
    """``PointMaze`` observed as a top-down RGB frame (see the module docstring).

    Args:
        size: frame side in pixels.
        keys: state fields to observe beside the frame (then the observation is a Dict).
        show_goal: draw the goal (the desired goal) in the frame.
        **maze_kwargs: ``PointMazeEnv``'s own (``maze_map``, ``continuing_task``, ``reset_target``, ...).
    """

    def __init__(
        self, size: int = 64, keys: Sequence[str] = (), show_goal: bool = True, **maze_kwargs: Any
    ) -> None:
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

        super().__init__(PointMazeEnv(**maze_kwargs))
        maze = self.env.unwrapped.maze  # type: ignore[attr-defined]
        self.keys = check_keys(keys)
        self.show_goal = show_goal
        self.frames = MazeFrames(maze.maze_map, size, maze.maze_size_scaling)
        self.observation_space = pixel_observation_space(size, self.keys, self.env.observation_space)

    def _observe(self, state: dict[str, np.ndarray]) -> Any:
        goal = state["desired_goal"] if self.show_goal else None
        frame = self.frames.render(state["achieved_goal"], goal)
        if not self.keys:
            return frame
        return {"pixels": frame, **{key: state[key] for key in self.keys}}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        state, info = self.env.reset(**kwargs)
        return self._observe(state), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        state, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(state), float(reward), terminated, truncated, info


def register_pixel_maze() -> None:
    """Register :data:`PIXEL_ENV_ID` (idempotent)."""
    if PIXEL_ENV_ID not in gym.registry:
        gym.register(PIXEL_ENV_ID, entry_point=f"{__name__}:PixelPointMaze", max_episode_steps=300)
