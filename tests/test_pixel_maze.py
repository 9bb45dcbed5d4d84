"""Pixel PointMaze: the numpy renderer against MuJoCo's frames, the pixel env, and pixel datasets.

The MuJoCo comparison needs an offscreen GL (EGL or OSMesa, as the video tests); where MuJoCo cannot
render here it skips, saying why. Everything else runs without GL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest

from latent_skills.data.loading import make_eval_env
from latent_skills.data.makers import collect_pointmaze, default_dataset_id
from latent_skills.envs.pixel_maze import PIXEL_ENV_ID, MazeFrames
from latent_skills.envs.robotics import register_robotics_envs

UMAZE = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]


# MuJoCo's side runs in a child process: its GL backend is chosen when mujoco is first imported (the
# test process imported it long before), and a failed GL start can abort the process.
MUJOCO_SIDE = """
import sys, numpy as np, gymnasium as gym, mujoco
from latent_skills.envs.pixel_maze import MazeFrames, mujoco_top_down_view
from latent_skills.envs.robotics import register_robotics_envs
env_id, size, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
register_robotics_envs()
env = gym.make(env_id)
state, _ = env.reset(seed=0)
maze = env.unwrapped.maze
extent = MazeFrames(maze.maze_map, size, maze.maze_size_scaling).extent
renderer = mujoco.Renderer(env.unwrapped.model, size, size)
camera = mujoco_top_down_view(env.unwrapped.model, extent)
rng = np.random.default_rng(0)
pictures, agents, goals = [], [], []
for _ in range(n):
    for _ in range(int(rng.integers(5, 30))):
        state, *_ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
    renderer.update_scene(env.unwrapped.data, camera=camera)
    pictures.append(renderer.render().copy())
    agents.append(state["achieved_goal"])
    goals.append(state["desired_goal"])
np.savez(out, pictures=pictures, agents=agents, goals=goals, maze=np.array(maze.maze_map))
"""


def mujoco_frames(env_id: str, size: int, n: int, tmp_path: Path) -> dict[str, np.ndarray]:
    """MuJoCo's top-down frames of ``n`` states along a random walk in ``env_id``, with the states;
    skips where MuJoCo cannot render offscreen here."""
    out = tmp_path / "mujoco.npz"
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    done = subprocess.run(
        [sys.executable, "-c", MUJOCO_SIDE, env_id, str(size), str(n), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"MuJoCo cannot render offscreen here: {done.stderr.strip().splitlines()[-1:]}")
    return dict(np.load(out))


@pytest.mark.parametrize(("env_id", "size"), [("PointMaze_UMaze-v3", 48), ("PointMaze_Large-v3", 64)])
def test_frames_match_mujoco_on_sampled_states(env_id, size, tmp_path):
    drawn = mujoco_frames(env_id, size, 6, tmp_path)
    frames = MazeFrames(drawn["maze"].tolist(), size)
    ours = frames.render_batch(drawn["agents"], drawn["goals"])
    assert ours.shape == drawn["pictures"].shape
    for mine, theirs in zip(ours, drawn["pictures"], strict=True):
        diff = np.abs(mine.astype(int) - theirs.astype(int))
        assert diff.mean() < 4.0  # walls' specular highlight left out: ~1-3 levels
        assert (diff.max(axis=-1) > 24).mean() < 0.01  # edges of the spheres at most


def test_the_agent_is_drawn_where_it_is():
    frames = MazeFrames(UMAZE, 64)
    for xy in ([-1.0, -1.0], [0.37, 0.98], [1.02, -0.2]):
        frame = frames.render(np.array(xy)).astype(int)
        green = (frame[..., 1] > frame[..., 0] + 40) & (frame[..., 1] > frame[..., 2] + 40)
        rows, cols = np.nonzero(green)
        centre_xy = (cols.mean() + 0.5) * frames.pixel - 2.5, 2.5 - (rows.mean() + 0.5) * frames.pixel
        assert np.allclose(centre_xy, xy, atol=0.5 * frames.pixel)
        assert green.sum() == pytest.approx(np.pi * frames.radius_px**2, rel=0.5)


def test_frames_are_drawn_in_batches_as_one_by_one_and_without_a_goal_when_asked():
    frames = MazeFrames(UMAZE, 32)
    rng = np.random.default_rng(1)
    agents, goals = rng.uniform(-2, 2, (5, 2)), rng.uniform(-2, 2, (5, 2))
    batch = frames.render_batch(agents, goals)
    assert batch.shape == (5, 32, 32, 3) and batch.dtype == np.uint8
    for i in range(5):
        assert np.array_equal(batch[i], frames.render(agents[i], goals[i]))
    no_goal = frames.render(agents[0])
    red = (no_goal[..., 0] > 150) & (no_goal[..., 1] < 60)
    assert not red.any() and (frames.render(agents[0], goals[0]) != no_goal).any()
    far = frames.render(np.array([50.0, -50.0]))  # outside the view: nothing drawn, nothing raised
    assert np.array_equal(far, frames.background)


def test_a_frame_size_out_of_range_is_refused():
    with pytest.raises(ValueError, match="8..512"):
        MazeFrames(UMAZE, 4)


def test_the_pixel_env_observes_the_frame_of_its_state():
    from gymnasium.utils.env_checker import check_env

    register_robotics_envs()
    state_env = gym.make("PointMaze_UMaze-v3")
    pixel_env = gym.make(PIXEL_ENV_ID, maze_map=UMAZE, size=32, keys=["observation"])
    check_env(pixel_env.unwrapped, skip_render_check=True)
    state, _ = state_env.reset(seed=3)
    observed, _ = pixel_env.reset(seed=3)
    assert set(observed) == {"pixels", "observation"}
    for _ in range(3):
        action = np.array([0.5, -0.3], np.float32)
        state, *_ = state_env.step(action)
        observed, *_ = pixel_env.step(action)
    assert np.allclose(observed["observation"], state["observation"])
    expected = MazeFrames(UMAZE, 32).render(state["achieved_goal"], state["desired_goal"])
    assert np.array_equal(observed["pixels"], expected)
    frame_only = gym.make(PIXEL_ENV_ID, maze_map=UMAZE, size=32)
    assert frame_only.observation_space == gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown state fields"):
        gym.make(PIXEL_ENV_ID, maze_map=UMAZE, keys=["velocity"])


@pytest.fixture(scope="module")
def pixel_dataset(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        dataset = collect_pointmaze(
            "umaze",
            steps=600,
            seed=0,
            ref_episodes=1,
            progress=False,
            task="single-goal",
            observation="pixels",
            image_size=32,
            keys=["achieved_goal", "desired_goal"],
        )
        yield dataset


def test_a_pixel_dataset_stores_each_states_frame_losslessly(pixel_dataset):
    assert pixel_dataset.spec.dataset_id == "latent-skills/pointmaze/umaze-single-goal-pixels-v0"
    assert pixel_dataset.storage.metadata["observation"] == "pixels"
    assert pixel_dataset.observation_space["pixels"] == gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
    frames = MazeFrames(UMAZE, 32)
    steps = 0
    for episode in pixel_dataset.iterate_episodes():
        obs = episode.observations
        assert obs["pixels"].dtype == np.uint8
        assert np.array_equal(obs["pixels"], frames.render_batch(obs["achieved_goal"], obs["desired_goal"]))
        steps += len(episode.actions)
    assert steps == 600


def test_a_pixel_datasets_evaluation_env_is_built_safely_and_observes_frames(pixel_dataset):
    env = make_eval_env(pixel_dataset)
    observed, _ = env.reset(seed=0)
    assert env.spec.id == PIXEL_ENV_ID and env.spec.max_episode_steps == 300
    assert observed["pixels"].shape == (32, 32, 3)
    # the evaluation goal is the dataset's (single-goal: every stored desired goal is it)
    stored_goal = next(iter(pixel_dataset.iterate_episodes())).observations["desired_goal"][0]
    assert np.linalg.norm(observed["desired_goal"] - stored_goal) <= 0.25 * np.sqrt(2) + 1e-9


def test_a_state_dataset_is_unchanged_by_the_pixel_option():
    assert default_dataset_id("umaze") == "latent-skills/pointmaze/umaze-v0"
    assert default_dataset_id("large", "single-goal", "pixels") == (
        "latent-skills/pointmaze/large-single-goal-pixels-v0"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"observation": "video"}, "unknown observation kind"),
        ({"keys": ["observation"]}, "observation='pixels' only"),
        ({"observation": "pixels", "image_size": 1000}, "8..512"),
        ({"observation": "pixels", "keys": ["speed"]}, "unknown state fields"),
    ],
)
def test_bad_observation_settings_are_refused_before_any_work(settings, message, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        collect_pointmaze("umaze", steps=10, progress=False, **settings)
    assert not any(tmp_path.rglob("*.hdf5"))


def test_the_cli_makes_a_pixel_dataset_and_refuses_fields_without_pixels(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from latent_skills.cli import main

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    runner = CliRunner()
    refused = runner.invoke(main, ["collect", "pointmaze", "--steps", "10", "--keys", "observation"])
    assert refused.exit_code == 2 and "--observation pixels" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    made = runner.invoke(
        main,
        ["collect", "pointmaze", "--steps", "40", "--ref-episodes", "1", "--observation", "pixels"]
        + ["--image-size", "16", "--keys", "observation"],
    )
    assert made.exit_code == 0, made.output
    dataset = minari.load_dataset("latent-skills/pointmaze/umaze-pixels-v0")
    assert dataset.observation_space["pixels"].shape == (16, 16, 3)
    assert dataset.total_steps == 40
