"""PointMaze datasets made the way D4RL's ``maze2d`` and Minari's ``D4RL/pointmaze`` ones were.

One continuous stream of ``steps`` environment steps in ``PointMaze_*-v3`` with
``continuing_task=True, reset_target=True``: a Q-iteration waypoint expert (:class:`MazeExpert`) drives
the ball towards the env's goal, Gaussian noise (σ = ``action_noise``) is added to every action, and
each time the ball reaches the goal the env draws a new random goal and goes on without a reset. The
stream is cut into episodes and stored in one of two ways (``task``):

- ``"goal-conditioned"`` (Minari's ``D4RL/pointmaze``): the goal the expert drives to is in every
  observation and an episode is cut with ``truncation=True`` at each goal reached
  (``info["success"]``). As in Minari's datasets, each episode's first observation still holds the goal
  just reached (the env draws the next goal after returning it); loading repairs that
  (:func:`latent_skills.data.episodes.repair_stale_first_goals`).
- ``"single-goal"`` (D4RL's ``maze2d``, the LDCQ paper's Table 1): the expert still drives to random
  goals, but every stored ``desired_goal`` is the evaluation goal (the centre of the evaluation env's
  goal cell, :func:`eval_goal_position`), rewards and ``infos["success"]`` are relabelled to it with the
  env's own ``compute_reward`` and episodes are cut by time, every ``max_episode_steps`` of the
  evaluation env, never at success. Nothing in the data drives to the evaluation goal on purpose: a
  learner has to stitch.

Episodes chain: each starts with the previous one's last observation; the last partial episode is
truncated too. Reference scores for normalisation come from the evaluation env (the same for both
kinds): the same maze with a single fixed goal cell, ``reset_target=False`` and the default episode
length; ``ref_max`` is the noiseless expert's mean return, ``ref_min`` uniform random actions'.
Collection streams episode by episode into Minari (memory does not grow with ``steps`` beyond the
pre-drawn action noise, 16 bytes a step), and the dataset is written aside and moved into place only
when complete (:mod:`latent_skills.data.makers.saving`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from gymnasium.envs.registration import EnvSpec
from minari.data_collector import EpisodeBuffer

from latent_skills._progress import progress as progress_display
from latent_skills.data.makers.episode_builder import EpisodeBuilder
from latent_skills.data.makers.maze_planner import MazeExpert
from latent_skills.data.makers.pixels import (
    DEFAULT_IMAGE_SIZE,
    PIXELS,
    STATES,
    check_observation,
    pixel_env_spec,
    pixel_episodes,
)
from latent_skills.data.makers.saving import prepare_target, write_dataset
from latent_skills.envs.pixel_maze import MazeFrames, pixel_observation_space
from latent_skills.envs.robotics import register_robotics_envs

__all__ = [
    "GOAL_CONDITIONED",
    "MAZES",
    "SINGLE_GOAL",
    "TASKS",
    "MazeExpert",
    "MazeSpec",
    "collect_pointmaze",
    "default_dataset_id",
    "eval_env_spec",
    "eval_goal_position",
    "reference_scores",
]

GOAL_CONDITIONED = "goal-conditioned"
SINGLE_GOAL = "single-goal"
TASKS: tuple[str, ...] = (GOAL_CONDITIONED, SINGLE_GOAL)


@dataclass(frozen=True)
class MazeSpec:
    """One PointMaze layout: its Gymnasium id and the goal cell of its evaluation env."""

    name: str
    env_id: str
    eval_goal_cell: tuple[int, int]  # (row, col) in the maze map

    def base_map(self) -> list[list[Any]]:
        """A fresh copy of the registered env's default maze map."""
        register_robotics_envs()
        return [list(row) for row in gym.spec(self.env_id).kwargs["maze_map"]]

    def eval_map(self) -> list[list[Any]]:
        """The default map with the evaluation goal cell marked ``"g"`` (the only goal)."""
        maze_map = self.base_map()
        row, col = self.eval_goal_cell
        maze_map[row][col] = "g"
        return maze_map


MAZES: dict[str, MazeSpec] = {
    "umaze": MazeSpec("umaze", "PointMaze_UMaze-v3", (1, 1)),
    "medium": MazeSpec("medium", "PointMaze_Medium-v3", (6, 6)),
    "large": MazeSpec("large", "PointMaze_Large-v3", (7, 9)),
}

# Large enough that gymnasium's TimeLimit never cuts the collection stream.
_STREAM_MIN_MAX_EPISODE_STEPS = 1_000_000
_PROGRESS_CHUNK = 1_000  # steps between tqdm updates: per-step updates cost more than a step


def _maze_spec(maze: str) -> MazeSpec:
    try:
        return MAZES[maze]
    except KeyError:
        raise ValueError(f"unknown maze {maze!r}; valid names: {', '.join(sorted(MAZES))}") from None


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid kinds: {', '.join(TASKS)}")
    return task


def default_dataset_id(maze: str, task: str = GOAL_CONDITIONED, observation: str = STATES) -> str:
    """Minari id under which :func:`collect_pointmaze` saves ``maze`` by default:
    ``latent-skills/pointmaze/{maze}-v0`` (goal-conditioned) or ``…/{maze}-single-goal-v0``, with
    ``-pixels`` before the version for pixel observations."""
    _maze_spec(maze)
    check_observation(observation, DEFAULT_IMAGE_SIZE, ())
    suffix = "" if _check_task(task) == GOAL_CONDITIONED else f"-{task}"
    kind = "" if observation == STATES else f"-{observation}"
    return f"latent-skills/pointmaze/{maze}{suffix}{kind}-v0"


def eval_env_spec(maze: str) -> EnvSpec:
    """Spec of ``maze``'s evaluation env: one fixed goal cell, no goal resampling, default length.

    The kwargs are plain JSON (the map holds ints and ``"g"``), so the spec survives
    ``EnvSpec.to_json`` and Minari's ``recover_environment(eval_env=True)``.
    """
    spec = _maze_spec(maze)
    register_robotics_envs()
    base = gym.spec(spec.env_id)
    kwargs = dict(base.kwargs)
    kwargs.update(maze_map=spec.eval_map(), continuing_task=True, reset_target=False)
    return dataclasses.replace(base, kwargs=kwargs)


def eval_goal_position(maze: str) -> np.ndarray:
    """``(x, y)`` of the centre of ``maze``'s evaluation goal cell, as its evaluation env computes it
    (the env then adds up to ±0.25 uniform noise per coordinate at each reset); float64, shape ``(2,)``.
    """
    _maze_spec(maze)
    env = gym.make(eval_env_spec(maze))
    try:
        (goal,) = _unwrapped(env).maze.unique_goal_locations  # the one "g" cell of eval_map
        return np.array(goal, dtype=np.float64)
    finally:
        env.close()


def _data_env(maze: str, steps: int) -> gym.Env:
    register_robotics_envs()
    return gym.make(
        _maze_spec(maze).env_id,
        continuing_task=True,
        reset_target=True,
        max_episode_steps=max(_STREAM_MIN_MAX_EPISODE_STEPS, steps + 1),
    )


def reference_scores(
    maze: str, episodes: int = 50, seed: int = 0, *, progress: bool = False
) -> tuple[float, float]:
    """``(ref_min, ref_max)`` on ``maze``'s evaluation env (see :func:`eval_env_spec`).

    ``ref_max`` is the mean return of the noiseless :class:`MazeExpert`, ``ref_min`` that of uniform
    random actions, each over ``episodes`` episodes. Both policies see the same start states (the env
    is reset with ``seed`` before each policy's first episode).
    """
    _maze_spec(maze)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    rng = np.random.default_rng(seed)
    env = gym.make(eval_env_spec(maze))
    expert = MazeExpert(_unwrapped(env).maze, rng)
    bar = progress_display(
        total=2 * episodes, desc=f"reference scores ({maze})", unit="ep", disable=not progress
    )
    means = []
    try:
        for policy in ("random", "expert"):
            returns = []
            for ep in range(episodes):
                obs, _ = env.reset(seed=seed if ep == 0 else None)
                expert.reset()
                ret, done = 0.0, False
                while not done:
                    if policy == "expert":
                        action = expert(obs)
                    else:
                        action = rng.uniform(-1.0, 1.0, size=2).astype(np.float32)
                    obs, reward, terminated, truncated, _ = env.step(action)
                    ret += float(reward)
                    done = terminated or truncated
                returns.append(ret)
                bar.update(1)
            means.append(float(np.mean(returns)))
    finally:
        bar.close()
        env.close()
    return means[0], means[1]


def _requirements() -> list[str]:
    reqs = []
    for name in ("gymnasium-robotics", "mujoco"):
        with contextlib.suppress(PackageNotFoundError):  # both are dependencies anyway
            reqs.append(f"{name}>={version(name)}")
    return reqs


def collect_pointmaze(
    maze: str = "umaze",
    steps: int = 100_000,
    seed: int = 0,
    dataset_id: str | None = None,
    action_noise: float = 0.5,
    ref_episodes: int = 50,
    overwrite: bool = False,
    progress: bool = True,
    task: str = GOAL_CONDITIONED,
    observation: str = STATES,
    image_size: int = DEFAULT_IMAGE_SIZE,
    keys: Sequence[str] = (),
) -> minari.MinariDataset:
    """Collect a D4RL-style PointMaze dataset and save it as a local Minari dataset.

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        steps: total env steps in the stream (= ``total_steps`` of the dataset).
        seed: seeds the env's single reset and the generator behind all other randomness; the same
            seed gives the same dataset.
        dataset_id: Minari id (``namespace/name-vN`` or ``name-vN``); when None
            ``latent-skills/pointmaze/{maze}-v0``, or ``…/{maze}-single-goal-v0`` for ``task="single-goal"``
            (see :func:`default_dataset_id`).
        action_noise: std of the Gaussian noise added to every expert action before clipping.
        ref_episodes: episodes per policy for the reference scores.
        overwrite: replace an existing local dataset with this id (only once the new one is complete).
        progress: show progress (bars on a terminal) for collection and for the reference episodes.
        task: ``"goal-conditioned"`` (the goal the expert drives to is observed, episodes cut at each
            success) or ``"single-goal"`` (D4RL maze2d: goal, rewards and success relabelled to the
            evaluation goal, episodes cut every evaluation-episode length); see the module docstring.
            Stored in the dataset's metadata as ``task`` and in its description.
        observation: ``"states"`` (PointMaze's Dict of vectors) or ``"pixels"``: each observation is a
            top-down RGB frame of the maze (:mod:`latent_skills.data.makers.pixels`), the same stream
            otherwise. Stored in the metadata as ``observation``.
        image_size: the frames' side in pixels (``"pixels"`` only).
        keys: PointMaze state fields stored beside the frame (then the observation is a Dict with the
            frame under ``"pixels"``); none by default.

    Returns:
        The new dataset (also loadable with ``minari.load_dataset(dataset_id)``).

    Raises:
        ValueError: unknown maze, task or observation kind, ``steps < 1``, ``ref_episodes < 1`` or negative noise; a
            malformed dataset id (:class:`~latent_skills.data.makers.saving.InvalidDatasetIdError`).
            All checked before any env step.
        FileExistsError: the dataset id exists locally and ``overwrite`` is False.
    """
    spec = _maze_spec(maze)
    _check_task(task)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if ref_episodes < 1:
        raise ValueError(f"ref_episodes must be >= 1, got {ref_episodes}")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    keys = check_observation(observation, image_size, keys)
    dataset_id = dataset_id or default_dataset_id(maze, task, observation)
    # Checked before collecting so nobody waits for a run that cannot be saved.
    prepare_target(dataset_id, overwrite)

    ref_min, ref_max = reference_scores(maze, ref_episodes, seed, progress=progress)
    if task == SINGLE_GOAL:
        goal = eval_goal_position(maze)
        cut = f"every {eval_env_spec(maze).max_episode_steps} steps (the eval env's episode length)"
        kind = (
            f"Single-goal (D4RL maze2d procedure): the expert drives to random goals (a new one at each goal "
            f"reached), but every stored desired_goal is the evaluation goal {goal.tolist()} (centre of "
            f"cell {spec.eval_goal_cell}), rewards are the env's sparse compute_reward against it and "
            f"infos['success'] likewise; episodes are truncated {cut}, never at success"
        )
    else:
        kind = (
            "Goal-conditioned (Minari D4RL/pointmaze procedure): desired_goal is the goal the expert "
            "drives to; an episode is truncated at every goal reached (info['success'])"
        )
    description = (
        f"{spec.env_id} (continuing_task=True, reset_target=True): one stream of {steps} steps from a "
        f"single reset (seed {seed}) driven by a Q-iteration waypoint expert with N(0, {action_noise:g}^2) "
        f"action noise; the env continues without reset towards a new random goal at each goal reached. "
        f"{kind}; the last partial episode is truncated too. Reference scores: {ref_episodes} episodes "
        f"on the eval env (goal cell {spec.eval_goal_cell}, reset_target=False), random (min) vs noiseless "
        "expert (max)."
    )

    if observation == PIXELS:
        shape = f"{image_size}x{image_size} RGB"
        beside = f" beside the state fields {list(keys)}" if keys else ""
        description += (
            f" Observations are {shape} top-down frames of the maze (agent and desired goal){beside}, "
            "drawn by latent_skills.envs.pixel_maze.MazeFrames, stored losslessly."
        )

    def write(dataset_id: str) -> None:
        data_env = _data_env(maze, steps)
        env_spec, evaluation_spec = data_env.spec, eval_env_spec(maze)
        assert env_spec is not None
        episodes = _stream_episodes(spec, steps, seed, action_noise, task, progress)
        spaces: dict[str, gym.Space] = {}
        if observation == PIXELS:
            maze_env = _unwrapped(data_env).maze
            frames = MazeFrames(maze_env.maze_map, image_size, maze_env.maze_size_scaling)
            episodes = pixel_episodes(episodes, frames, keys)
            env_spec = pixel_env_spec(env_spec, image_size, keys)
            evaluation_spec = pixel_env_spec(evaluation_spec, image_size, keys)
            spaces = {
                "observation_space": pixel_observation_space(image_size, keys, data_env.observation_space),
                "action_space": data_env.action_space,
            }
        try:
            with warnings.catch_warnings():
                # Minari nags about author/email/permalink, which a generated local dataset lacks.
                warnings.filterwarnings("ignore", message=r"`(author|author_email|code_permalink)`")
                dataset = minari.create_dataset_from_buffers(
                    dataset_id=dataset_id,
                    buffer=[],
                    env=env_spec,
                    eval_env=evaluation_spec,
                    jpeg_encoding=False,  # frames lossless: evaluation draws them exactly
                    **spaces,
                    algorithm_name=(
                        "QIteration waypoint PD expert + Gaussian action noise "
                        f"(sigma={action_noise:g}), D4RL maze2d procedure, {task}"
                    ),
                    author="latent-skills",
                    ref_min_score=ref_min,
                    ref_max_score=ref_max,
                    num_episodes_average_score=ref_episodes,
                    description=description,
                    requirements=_requirements(),
                )
            dataset.storage.update_metadata({"task": task, "observation": observation})
            # Episodes are written as the stream produces them: memory stays one episode's worth.
            dataset.storage.update_episodes(episodes)
        finally:
            data_env.close()

    return write_dataset(dataset_id, write, overwrite=overwrite)


def _stream_episodes(
    spec: MazeSpec, steps: int, seed: int, action_noise: float, task: str, progress: bool
) -> Iterator[EpisodeBuffer]:
    """Run the noisy expert for ``steps`` steps and yield the episodes of ``task`` as they end."""
    env = _data_env(spec.name, steps)
    rng = np.random.default_rng(seed)
    expert = MazeExpert(_unwrapped(env).maze, rng)
    # All action noise drawn up front (one call instead of one per step); the expert draws its
    # waypoint jitter from the same generator afterwards, so a seed fixes everything.
    noise = rng.normal(0.0, action_noise, size=(steps, 2)) if action_noise > 0 else None
    if task == SINGLE_GOAL:
        episode_steps: int | None = eval_env_spec(spec.name).max_episode_steps
        relabel = (eval_goal_position(spec.name), _unwrapped(env).compute_reward)
    else:
        episode_steps, relabel = None, None
    episode = EpisodeBuilder(episode_steps or 1024)
    episode_id = 0

    obs, info = env.reset(seed=seed)
    episode.put_observation(0, obs, info["success"])
    x, y, vx, vy = obs["observation"].tolist()
    gx, gy = obs["desired_goal"].tolist()
    step = env.step
    bar = progress_display(
        total=steps, desc=f"collect {spec.name} ({task})", unit="step", disable=not progress
    )
    try:
        for t in range(steps):
            ax, ay = expert.act(x, y, vx, vy, gx, gy)
            if noise is not None:
                ax = min(1.0, max(-1.0, ax + noise[t, 0]))
                ay = min(1.0, max(-1.0, ay + noise[t, 1]))
            action = np.array((ax, ay), dtype=np.float32)
            obs, reward, terminated, truncated, info = step(action)
            if terminated or truncated:  # cannot happen with continuing_task and a huge limit
                raise RuntimeError(f"stream ended unexpectedly at step {t}")
            success = info["success"]
            episode.add(action, obs, float(reward), success)
            x, y, vx, vy = obs["observation"].tolist()
            gx, gy = obs["desired_goal"].tolist()
            if (t + 1) % _PROGRESS_CHUNK == 0:
                bar.update(_PROGRESS_CHUNK)
            # goal-conditioned: cut at each goal reached; single-goal: by time only
            ends = success if episode_steps is None else episode.n == episode_steps
            if ends:
                yield episode.pop(episode_id, relabel)
                episode_id += 1
        if episode.n:
            yield episode.pop(episode_id, relabel)
        bar.update(steps - bar.n)
    finally:
        bar.close()
        env.close()


def _unwrapped(env: gym.Env) -> Any:
    """The PointMaze env inside the wrappers (its maze and compute_reward are not on gym.Env)."""
    return env.unwrapped
