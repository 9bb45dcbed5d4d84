"""Videos of an agent acting (latent_skills.envs.video) and `latent-skills evaluate --video/--json`.

Rendering needs the `video` extra (imageio[ffmpeg], in the `test` extra) and, with no display, an EGL
or OSMesa library (Debian: libegl1 + libgl1-mesa-dri, or libosmesa6): where the env cannot render here
the rendering tests skip, saying what is missing."""

from __future__ import annotations

import json
import sys

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner

from latent_skills import LDCQ
from latent_skills.cli import main
from latent_skills.envs.video import (
    FrameRecorder,
    VideoUnavailable,
    default_headless_gl,
    record_video,
    video_dependencies_missing,
)


@pytest.fixture(scope="module")
def agent(tiny_ldcq_checkpoint):
    return LDCQ.load(tiny_ldcq_checkpoint)


@pytest.fixture(scope="module")
def renders(agent, tmp_path_factory):
    """Skip (with what is missing) where the env cannot render a video here."""
    try:
        record_video(agent, tmp_path_factory.mktemp("probe") / "probe.mp4", video_length=1)
    except VideoUnavailable as exc:
        pytest.skip(f"no video here: {exc}")


def read_video(path) -> tuple[np.ndarray, dict]:
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path))
    try:
        return np.stack([reader.get_data(i) for i in range(reader.count_frames())]), reader.get_meta_data()
    finally:
        reader.close()


def test_record_video_is_the_evaluated_episode_as_an_h264_mp4(agent, renders, tmp_path):
    result = record_video(agent, tmp_path / "sub" / "replay.mp4", episodes=2, seed=3, video_length=12)
    frames, meta = read_video(tmp_path / "sub" / "replay.mp4")
    assert result["frames"] == 12 and frames.shape == (12, 480, 480, 3)
    assert meta["codec"] == "h264" and meta["fps"] == result["fps"] == 50  # PointMaze's render_fps
    assert frames.std() > 5  # a picture, not a blank frame
    # the episodes run to their end past the frame cap, and are the ones evaluate() runs with the seed
    expected = agent.evaluate(n_episodes=2, n_envs=1, seed=3)
    assert result["returns"] == expected["returns"] and result["n_episodes"] == 2


def test_frame_recorder_keeps_the_first_episodes(renders):
    env = gym.make("PointMaze_UMaze-v3", render_mode="rgb_array", max_episode_steps=3)
    recorder = FrameRecorder(env, episodes=1)
    recorder.reset(seed=0)
    for _ in range(3):
        recorder.step(env.action_space.sample())
    recorder.reset()
    recorder.step(env.action_space.sample())
    recorder.close()
    assert len(recorder.frames) == 4  # reset + 3 steps; the second episode is not recorded
    with pytest.raises(ValueError, match="rgb_array"):
        FrameRecorder(gym.make("Pendulum-v1"))


def test_without_the_extra_the_error_names_the_install(agent, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if imageio-ffmpeg were not installed
    assert "latent-skills[video]" in video_dependencies_missing()
    with pytest.raises(VideoUnavailable, match=r"pip install \"latent-skills\[video\]\""):
        record_video(agent, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_headless_machines_default_to_egl(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    assert default_headless_gl() is None  # a display: MuJoCo's own choice (GLFW)
    monkeypatch.delenv("DISPLAY")
    expected = "egl" if sys.platform.startswith("linux") else None
    assert default_headless_gl() == expected
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert default_headless_gl() == "osmesa"  # the user's choice stands


def test_cli_evaluate_writes_json_and_video(agent, renders, tmp_path):
    checkpoint = agent.save(tmp_path / "run")
    out, video = tmp_path / "eval.json", tmp_path / "replay.mp4"
    args = ["evaluate", str(checkpoint), "--episodes", "2", "--envs", "2", "--seed", "1"]
    result = CliRunner().invoke(
        main, [*args, "--json", str(out), "--video", str(video), "--video-length", "5"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["n_episodes"] == 2 and written["seed"] == 1 and len(written["returns"]) == 2
    assert f"{written['mean_return']:.2f}" in result.output
    assert f"video            {video} (5 frames at 50 fps)" in result.output
    assert read_video(video)[0].shape[0] == 5


@pytest.mark.parametrize("given", ["existing", "trailing-slash"])
def test_cli_evaluate_video_into_a_folder_writes_replay_mp4_there(agent, renders, tmp_path, given):
    """Zoo users pass a folder: it gets replay.mp4 (the name Hub pushes use), with no traceback."""
    checkpoint = agent.save(tmp_path / "run")
    folder = tmp_path / "videos"
    if given == "existing":
        folder.mkdir()
    target = str(folder) if given == "existing" else f"{folder}/"
    args = ["evaluate", str(checkpoint), "--episodes", "1", "--video", target, "--video-length", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"video            {folder / 'replay.mp4'} (3 frames" in result.output
    assert read_video(folder / "replay.mp4")[0].shape[0] == 3
