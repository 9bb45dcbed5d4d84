"""Videos of an agent acting: ``record_video(agent, "replay.mp4")`` renders episodes of its evaluation
env (built safely from the recorded id with ``render_mode="rgb_array"``) into an H.264 MP4.

Frames are collected by :class:`FrameRecorder`, a small wrapper in the spirit of gymnasium's
``RecordVideo``, and written with imageio's ffmpeg plugin (``pip install "latent-skills[video]"``, which
brings ``imageio[ffmpeg]``, a static ffmpeg included). gymnasium's own ``RecordVideo`` needs moviepy,
whose 2.x releases cap pillow below 12: installing it would downgrade pillow for everyone.

The episodes are those of ``agent.evaluate(env=..., n_episodes=episodes, seed=seed)``: the same seed
gives the same video, and the first episode is the first episode ``evaluate(n_envs=1, seed=seed)`` runs.

Headless machines: MuJoCo renders through EGL or OSMesa when there is no display. With no display and
``MUJOCO_GL`` unset, :func:`record_video` sets ``MUJOCO_GL=egl`` (Mesa's software EGL works with no
GPU); Debian/Ubuntu need ``libegl1`` and ``libgl1-mesa-dri`` for it (or ``libosmesa6`` and
``MUJOCO_GL=osmesa``). Where rendering fails, :class:`VideoUnavailable` says so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from latent_skills.agents import LatentSkillAgent

INSTALL_HINT = 'pip install "latent-skills[video]" (imageio with its ffmpeg plugin)'
HEADLESS_HINT = (
    "With no display MuJoCo renders through EGL or OSMesa: set MUJOCO_GL=egl and install libegl1 and "
    "libgl1-mesa-dri (Debian/Ubuntu; a GPU driver's EGL also works), or MUJOCO_GL=osmesa with libosmesa6."
)
DEFAULT_FPS = 30


class VideoUnavailable(RuntimeError):
    """No video can be made here: the ``video`` extra is missing or the env cannot render. The message
    says what to install."""


def video_dependencies_missing() -> str | None:
    """Why the ``video`` extra is not usable (a message naming the install), or None when it is."""
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError as exc:
        return f"videos need imageio and imageio-ffmpeg ({exc.name} is not installed): {INSTALL_HINT}"
    return None


def default_headless_gl() -> str | None:
    """Set ``MUJOCO_GL=egl`` where nothing chose a backend and there is no display (MuJoCo's own
    default tries GLFW first, which fails there); return the backend in force."""
    if "MUJOCO_GL" not in os.environ and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    return os.environ.get("MUJOCO_GL")


class FrameRecorder(gym.Wrapper):
    """Keeps the ``rgb_array`` frame after every reset and step of its first ``episodes`` episodes, up
    to ``max_frames`` frames in all (None: no cap); the episodes run on unrecorded past the cap."""

    def __init__(self, env: gym.Env, episodes: int = 1, max_frames: int | None = None) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"FrameRecorder needs render_mode='rgb_array', got {env.render_mode!r}")
        self.frames: list[np.ndarray] = []
        self.episodes, self.max_frames = episodes, max_frames
        self.finished = 0

    def _capture(self) -> None:
        if self.finished >= self.episodes:
            return
        if self.max_frames is not None and len(self.frames) >= self.max_frames:
            return
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise VideoUnavailable(f"the env's render() gave {type(frame).__name__}, not an RGB image")
        self.frames.append(np.asarray(frame, np.uint8))

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        self._capture()
        return out

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._capture()
        if terminated or truncated:
            self.finished += 1
        return obs, reward, terminated, truncated, info


def write_video(frames: list[np.ndarray], path: str | os.PathLike, fps: int = DEFAULT_FPS) -> Path:
    """Encode RGB frames as an H.264 MP4 (yuv420p, which browsers and the Hub play) at ``path``."""
    problem = video_dependencies_missing()
    if problem:
        raise VideoUnavailable(problem)
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # yuv420p needs even sizes: a macro block of 2 pads odd ones instead of rescaling to 16s
    writer = imageio.get_writer(
        str(path),
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=2,
        ffmpeg_log_level="error",
    )
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()
    return path


def record_video(
    agent: LatentSkillAgent,
    path: str | os.PathLike,
    episodes: int = 1,
    *,
    seed: int = 0,
    deterministic: bool = True,
    video_length: int | None = None,
    fps: int | None = None,
) -> dict[str, Any]:
    """Record ``episodes`` episodes of ``agent`` on its evaluation env as an MP4 at ``path``.

    ``video_length`` caps the frames (None: whole episodes); ``fps`` defaults to the env's
    ``render_fps``. Returns ``agent.evaluate``'s result for the recorded episodes, with ``video``
    (the path), ``frames`` and ``fps`` added. Raises :class:`VideoUnavailable` where the ``video``
    extra is missing or the env cannot render here (the message says what to install).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be ≥ 1, got {episodes}")
    problem = video_dependencies_missing()
    if problem:
        raise VideoUnavailable(problem)
    backend = default_headless_gl()
    env = agent.spec.make_env(render_mode="rgb_array")
    try:
        recorder = FrameRecorder(env, episodes, video_length)
        result = agent.evaluate(
            env=recorder, n_episodes=episodes, n_envs=1, seed=seed, deterministic=deterministic
        )
    except VideoUnavailable:
        raise
    except Exception as exc:
        if _is_render_error(exc):
            raise VideoUnavailable(
                f"{agent.spec.env_id} cannot render here (MUJOCO_GL={backend}): "
                f"{type(exc).__name__}: {exc}. {HEADLESS_HINT}"
            ) from exc
        raise
    finally:
        env.close()
    rate = int(fps or env.metadata.get("render_fps") or DEFAULT_FPS)
    write_video(recorder.frames, path, rate)
    return {**result, "video": str(path), "frames": len(recorder.frames), "fps": rate}


def _is_render_error(error: BaseException) -> bool:
    """Whether ``error`` came from creating a GL context or rendering (MuJoCo, PyOpenGL, GLFW)."""
    exc: BaseException | None = error
    while exc is not None:
        module = type(exc).__module__ or ""
        text = f"{type(exc).__name__} {exc}"
        if module.split(".")[0] in ("mujoco", "OpenGL", "glfw") or any(
            word in text for word in ("OpenGL", "EGL", "GLFW", "OSMesa", "MUJOCO_GL", "render")
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
