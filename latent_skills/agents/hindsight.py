"""Hindsight goals for goal-conditioned datasets (gymnasium-robotics' ``GoalEnv`` observations).

``check_goal_observations`` says whether a dataset's flattened state has an achieved and a desired goal.
``HindsightRelabeler`` rewrites skill windows for Q-learning: the desired-goal part of s_t and of the
bootstrap state becomes the achieved goal k steps later in the same episode, and the window's return
is recomputed with the env's own ``compute_reward``. On data whose episodes end when the goal is
reached (Minari's PointMaze and AntMaze procedure) no window ever starts *at* its goal, so the critic
never learns what staying there is worth; relabelled windows pass through and linger at their
goals, so it does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latent_skills.data.windows import SkillWindows

from .spec import AgentSpec

GOAL_PARTS = ("achieved_goal", "desired_goal")
# (achieved (..., G), desired (..., G)) -> reward (...)
GoalReward = Callable[[np.ndarray, np.ndarray], np.ndarray]


def check_goal_observations(spec: AgentSpec, who: str = "LDGC", fix: str = "Use LDCQ") -> None:
    """Raise unless the observation has an ``achieved_goal`` and a ``desired_goal`` of the same size."""
    flattener = spec.flattener
    if all(flattener.has(part) for part in GOAL_PARTS):
        achieved, desired = (flattener.slice_of(part) for part in GOAL_PARTS)
        if achieved.stop - achieved.start == desired.stop - desired.start:
            return
    parts = ["/".join(s.path) or "a Box" for s in flattener.segments]
    raise ValueError(
        f"{who} needs goal-conditioned observations: a Dict with 'achieved_goal' and 'desired_goal' of "
        f"the same size (as gymnasium-robotics' PointMaze, AntMaze and Kitchen have); this dataset's "
        f"observation holds {parts}. {fix} for a dataset without goals."
    )


def env_goal_reward(spec: AgentSpec) -> GoalReward:
    """The evaluation env's ``compute_reward(achieved, desired, info)``, batched over leading axes."""
    env = spec.make_env()
    compute = getattr(env.unwrapped, "compute_reward", None)
    env.close()
    if compute is None:
        raise ValueError(
            f"Hindsight relabelling needs the env's compute_reward(achieved_goal, desired_goal, info); "
            f"{spec.env_id} has none. Set q_hindsight=0."
        )

    def reward(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        achieved, desired = np.broadcast_arrays(achieved, desired)
        lead = achieved.shape[:-1]
        flat = compute(achieved.reshape(-1, achieved.shape[-1]), desired.reshape(-1, desired.shape[-1]), {})
        return np.asarray(flat, np.float64).reshape(lead)

    return reward


class HindsightRelabeler:
    """Relabels windows of ``windows`` with goals achieved k ~ Geometric(mean ``mean_steps``) − 1 steps
    after their first state (k = 0 is the first state itself; the episode's final observation where
    the episode ends sooner)."""

    def __init__(self, spec: AgentSpec, windows: SkillWindows, reward: GoalReward, mean_steps: float) -> None:
        check_goal_observations(spec, who="Hindsight relabelling", fix="Set q_hindsight=0")
        self.windows, self.reward, self.mean_steps = windows, reward, mean_steps
        self.achieved = spec.flattener.slice_of("achieved_goal")
        self.desired = spec.flattener.slice_of("desired_goal")
        self.discount_powers = windows.gamma ** np.arange(windows.horizon)

    def window_returns(self, index: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Σ_k γ^k r(achieved_{t+k+1}, goal) over each window's real steps, ``(n,)``."""
        w = self.windows
        obs = w.episodes.observations
        # the reward of step t+k is computed from the observation after it, row t+k+1
        after = np.minimum(np.arange(1, w.horizon + 1), w.lengths[index, None])
        reached = obs[w.states.starts[index, None] + after][..., self.achieved]  # (n, H, G)
        rewards = self.reward(reached, goals[:, None, :]) * w.mask[index]
        return rewards @ self.discount_powers

    def check_rewards(self, n: int = 2048, seed: int = 0) -> None:
        """The dataset's own returns must come out of ``reward`` with its own goals, or relabelled
        returns would mean something else than the data's."""
        w = self.windows
        index = np.random.default_rng(seed).choice(len(w), min(n, len(w)), replace=False)
        goals = w.episodes.observations[w.states.rows(index)[:, 0]][:, self.desired]
        ours = self.window_returns(index, goals)
        worst = float(np.max(np.abs(ours - w.rewards[index])))
        if worst > 1e-4:
            raise ValueError(
                f"The env's compute_reward does not reproduce the dataset's rewards (off by up to {worst:.3g} "
                "on a window's return), so relabelled rewards would not be this task's. Set q_hindsight=0."
            )

    def relabel(
        self, index: np.ndarray, first: np.ndarray, next_states: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(first, next_states, returns)`` of windows ``index`` with hindsight goals (copies)."""
        w = self.windows
        k = rng.geometric(1.0 / self.mean_steps, len(index)) - 1
        goals = w.episodes.observations[w.future_rows(index, k), self.achieved]
        first, next_states = first.copy(), next_states.copy()
        first[:, self.desired] = goals
        next_states[:, self.desired] = goals
        return first, next_states, self.window_returns(index, goals)
