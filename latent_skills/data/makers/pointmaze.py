"""PointMaze datasets made the way D4RL's ``maze2d`` and Minari's ``D4RL/pointmaze`` ones were.

One continuous stream of ``steps`` environment steps in ``PointMaze_*-v3`` with
``continuing_task=True, reset_target=True``: a Q-iteration waypoint expert (:class:`MazeExpert`) drives
the ball, Gaussian noise (σ = ``action_noise``) is added to every action, and each time the ball
reaches the goal (``info["success"]``) the episode is cut with ``truncation=True`` while the env goes
on without a reset towards its newly sampled goal. As in Minari's datasets, each episode's first
observation still holds the goal just reached (the env draws the next goal after returning it);
loading repairs that (:func:`latent_skills.data.episodes.repair_stale_first_goals`). Reference
scores for normalisation come from the evaluation env: the same maze with a single fixed goal cell,
``reset_target=False`` and the default episode length; ``ref_max`` is the noiseless expert's mean
return, ``ref_min`` uniform random actions'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from gymnasium.envs.registration import EnvSpec
from minari.data_collector import EpisodeBuffer
from minari.storage import get_dataset_path
from tqdm.auto import tqdm

from latent_skills.data.makers.maze_planner import MazeExpert

__all__ = [
    "MAZES",
    "MazeExpert",
    "MazeSpec",
    "collect_pointmaze",
    "default_dataset_id",
    "eval_env_spec",
    "reference_scores",
]


@dataclass(frozen=True)
class MazeSpec:
    """One PointMaze layout: its Gymnasium id and the goal cell of its evaluation env."""

    name: str
    env_id: str
    eval_goal_cell: tuple[int, int]  # (row, col) in the maze map

    def base_map(self) -> list[list[Any]]:
        """A fresh copy of the registered env's default maze map."""
        _register()
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


def _register() -> None:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


def _maze_spec(maze: str) -> MazeSpec:
    try:
        return MAZES[maze]
    except KeyError:
        raise ValueError(f"unknown maze {maze!r}; valid names: {', '.join(sorted(MAZES))}") from None


def default_dataset_id(maze: str) -> str:
    """Minari id under which :func:`collect_pointmaze` saves ``maze`` by default."""
    _maze_spec(maze)
    return f"latent-skills/pointmaze/{maze}-v0"


def eval_env_spec(maze: str) -> EnvSpec:
    """Spec of ``maze``'s evaluation env: one fixed goal cell, no goal resampling, default length.

    The kwargs are plain JSON (the map holds ints and ``"g"``), so the spec survives
    ``EnvSpec.to_json`` and Minari's ``recover_environment(eval_env=True)``.
    """
    spec = _maze_spec(maze)
    _register()
    base = gym.spec(spec.env_id)
    kwargs = dict(base.kwargs)
    kwargs.update(maze_map=spec.eval_map(), continuing_task=True, reset_target=False)
    return dataclasses.replace(base, kwargs=kwargs)


def _data_env(maze: str, steps: int) -> gym.Env:
    _register()
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
    expert = MazeExpert(env.unwrapped.maze, rng)
    bar = tqdm(total=2 * episodes, desc=f"reference scores ({maze})", unit="ep", disable=not progress)
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
) -> minari.MinariDataset:
    """Collect a D4RL-style PointMaze dataset and save it as a local Minari dataset.

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        steps: total env steps in the stream (= ``total_steps`` of the dataset).
        seed: seeds the env's single reset and the generator behind all other randomness; the same
            seed gives the same dataset.
        dataset_id: Minari id; ``latent-skills/pointmaze/{maze}-v0`` when None.
        action_noise: std of the Gaussian noise added to every expert action before clipping.
        ref_episodes: episodes per policy for the reference scores.
        overwrite: delete an existing local dataset with this id first.
        progress: show tqdm bars for collection and for the reference episodes.

    Returns:
        The new dataset (also loadable with ``minari.load_dataset(dataset_id)``).

    Raises:
        ValueError: unknown maze, ``steps < 1``, ``ref_episodes < 1`` or negative noise.
        FileExistsError: the dataset id exists locally and ``overwrite`` is False.
    """
    spec = _maze_spec(maze)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if ref_episodes < 1:
        raise ValueError(f"ref_episodes must be >= 1, got {ref_episodes}")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    dataset_id = dataset_id or default_dataset_id(maze)
    path = get_dataset_path(dataset_id)
    # Checked before collecting so nobody waits for a run that cannot be saved.
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Minari dataset {dataset_id!r} already exists at {path}; pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )

    observations, actions, rewards, success = _collect_stream(spec, steps, seed, action_noise, progress)
    ref_min, ref_max = reference_scores(maze, ref_episodes, seed, progress=progress)
    buffers = _split_episodes(observations, actions, rewards, success)

    if path.exists():  # overwrite: removed only now, so a failed collection keeps the old one
        shutil.rmtree(path)
    data_env = _data_env(maze, steps)
    try:
        with warnings.catch_warnings():
            # Minari nags about author/email/permalink, which a generated local dataset lacks.
            warnings.filterwarnings("ignore", message=r"`(author|author_email|code_permalink)`")
            return minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=buffers,
                env=data_env.spec,
                eval_env=eval_env_spec(maze),
                algorithm_name=(
                    "QIteration waypoint PD expert + Gaussian action noise "
                    f"(sigma={action_noise:g}), D4RL maze2d procedure"
                ),
                author="latent-skills",
                ref_min_score=ref_min,
                ref_max_score=ref_max,
                num_episodes_average_score=ref_episodes,
                description=(
                    f"{spec.env_id} (continuing_task=True, reset_target=True): one stream of "
                    f"{steps} steps from a single reset (seed {seed}) driven by a Q-iteration "
                    f"waypoint expert with N(0, {action_noise:g}^2) action noise; an episode is "
                    "truncated at every goal reached (info['success']) and the env continues "
                    "without reset towards a new goal; the last partial episode is truncated too. "
                    f"Reference scores: {ref_episodes} episodes on the eval env (goal cell "
                    f"{spec.eval_goal_cell}, reset_target=False), random (min) vs noiseless "
                    "expert (max)."
                ),
                requirements=_requirements(),
            )
    finally:
        data_env.close()


def _collect_stream(
    spec: MazeSpec, steps: int, seed: int, action_noise: float, progress: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Run the noisy expert for ``steps`` steps; arrays of the whole stream (obs have steps+1 rows)."""
    env = _data_env(spec.name, steps)
    rng = np.random.default_rng(seed)
    expert = MazeExpert(env.unwrapped.maze, rng)
    # All action noise drawn up front (one call instead of one per step); the expert draws its
    # waypoint jitter from the same generator afterwards, so a seed fixes everything.
    noise = rng.normal(0.0, action_noise, size=(steps, 2)) if action_noise > 0 else None

    obs_vec = np.empty((steps + 1, 4))
    achieved = np.empty((steps + 1, 2))
    desired = np.empty((steps + 1, 2))
    actions = np.empty((steps, 2), dtype=np.float32)
    rewards = np.empty(steps)
    success = np.zeros(steps + 1, dtype=bool)  # success[t]: info of observation t

    obs, info = env.reset(seed=seed)
    obs_vec[0], achieved[0], desired[0] = obs["observation"], obs["achieved_goal"], obs["desired_goal"]
    success[0] = info["success"]
    x, y, vx, vy = obs["observation"].tolist()
    gx, gy = obs["desired_goal"].tolist()
    step = env.step
    bar = tqdm(total=steps, desc=f"collect {spec.name}", unit="step", disable=not progress)
    try:
        for t in range(steps):
            ax, ay = expert.act(x, y, vx, vy, gx, gy)
            if noise is not None:
                ax = min(1.0, max(-1.0, ax + noise[t, 0]))
                ay = min(1.0, max(-1.0, ay + noise[t, 1]))
            actions[t] = (ax, ay)
            obs, reward, terminated, truncated, info = step(actions[t])
            if terminated or truncated:  # cannot happen with continuing_task and a huge limit
                raise RuntimeError(f"stream ended unexpectedly at step {t}")
            o = obs["observation"]
            obs_vec[t + 1] = o
            achieved[t + 1] = obs["achieved_goal"]
            desired[t + 1] = obs["desired_goal"]
            rewards[t] = reward
            success[t + 1] = info["success"]
            x, y, vx, vy = o.tolist()
            gx, gy = obs["desired_goal"].tolist()
            if (t + 1) % _PROGRESS_CHUNK == 0:
                bar.update(_PROGRESS_CHUNK)
        bar.update(steps - bar.n)
    finally:
        bar.close()
        env.close()
    observations = {"achieved_goal": achieved, "desired_goal": desired, "observation": obs_vec}
    return observations, actions, rewards, success


def _split_episodes(
    observations: dict[str, np.ndarray],
    actions: np.ndarray,
    rewards: np.ndarray,
    success: np.ndarray,
) -> list[EpisodeBuffer]:
    """Cut the stream after every success step; episodes share their boundary observation."""
    steps = len(actions)
    # Step t (0-based) succeeded when the observation after it, t+1, has success.
    ends = [int(t) + 1 for t in np.flatnonzero(success[1:])]
    if not ends or ends[-1] != steps:
        ends.append(steps)  # the final partial episode, truncated too
    buffers, start = [], 0
    for k, end in enumerate(ends):
        n = end - start
        truncations = np.zeros(n, dtype=bool)
        truncations[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=k,
                observations={key: arr[start : end + 1] for key, arr in observations.items()},
                actions=actions[start:end],
                rewards=rewards[start:end],
                terminations=np.zeros(n, dtype=bool),
                truncations=truncations,
                infos={"success": success[start : end + 1]},
            )
        )
        start = end
    return buffers
