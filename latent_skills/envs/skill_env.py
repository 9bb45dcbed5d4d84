"""Learned skills as an action space: one ``step(z)`` runs the decoded skill z for up to H env steps.

Any RL algorithm for continuous actions (SB3's SAC, TD3, PPO, ...) can then act in the latent space of
a pretrained agent: it picks a skill every H steps instead of an action every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

if TYPE_CHECKING:  # the agents import this package: no runtime import back
    from latent_skills.agents.base import LatentSkillAgent

#: Default half-width of the action box, in standard deviations of the training latents.
DEFAULT_BOUND_STDS = 3.0


def latent_bounds(
    agent: LatentSkillAgent, n_std: float = DEFAULT_BOUND_STDS
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` = mean ± ``n_std`` · spread of the latents z ~ q(z|τ) of the training windows.

    mean and spread are the statistics the prior stage standardises latents with (``agent.latent_norm``:
    spread² = variance of the posterior means + mean posterior variance), so ±3 spreads hold nearly all
    of the prior's samples. An agent whose prior is not trained yet (only the skills stage ran) gets the
    same statistics from its encoder over the dataset (``agent.posterior()``).
    """
    if not n_std > 0:
        raise ValueError(f"n_std must be > 0, got {n_std}")
    if "prior" in agent.stages_completed:
        center = agent.latent_norm.mean.cpu().numpy()
        spread = agent.latent_norm.std.cpu().numpy()
    elif "skills" in agent.stages_completed:
        mean, std = agent.posterior()
        center, spread = mean.mean(0), np.sqrt(mean.var(0) + np.square(std).mean(0))
    else:
        raise ValueError(
            f"This {type(agent).__name__} has no trained skills: run agent.learn(stages=['skills']) first "
            "(SkillEnv decodes latents with the skill VAE)."
        )
    center, spread = center.astype(np.float32), spread.astype(np.float32)
    return center - n_std * spread, center + n_std * spread


class SkillEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """``env`` with the agent's latent skills as actions.

    The action space is ``Box(low, high, (latent_dim,))`` (see :func:`latent_bounds`, or pass
    ``bounds``); the observation space is ``env``'s. ``step(z)`` clips ``z`` to the box, then runs the
    skill decoder π(a | s, z) closed-loop for up to ``skill_steps`` (default H) low-level steps,
    stopping early at termination or truncation, and returns the last observation, the summed reward
    (γ-discounted with ``discount``) and ``env``'s last ``info`` with ``steps`` (low-level steps run),
    ``low_level_rewards`` (a tuple, one per step) and ``skill`` (the clipped latent) added.

    ``deterministic=True`` decodes the mean action; otherwise actions are sampled from the decoder
    with a generator that ``reset(seed=...)`` reseeds, so a seeded episode repeats exactly.

    ``normalize_actions=True`` makes the action space ``Box(-1, 1, (latent_dim,))``, which SB3
    recommends: an action a is clipped to [-1, 1] and mapped linearly onto the latent box,
    z = low + (a + 1) / 2 · (high − low). The latent box is :attr:`latent_space` either way.

    Over a goal env (one with ``compute_reward``, as gymnasium-robotics' mazes), a skill step is a
    goal env too: ``info["low_level_achieved_goals"]`` holds each low-level step's achieved goal, and
    :meth:`compute_reward` sums (γ-discounts) the inner env's ``compute_reward`` over them, so it
    returns the step's reward for the observed goal and relabels it for another (SB3's
    ``HerReplayBuffer``, SB3's ``check_env``).

    ``env.spec.make()`` recreates the wrapper around the same agent object (the spec records it, so
    the spec is not JSON-serialisable).
    """

    def __init__(
        self,
        env: gym.Env,
        agent: LatentSkillAgent,
        deterministic: bool = True,
        *,
        discount: float | None = None,
        skill_steps: int | None = None,
        bounds: tuple[Any, Any] | float = DEFAULT_BOUND_STDS,
        normalize_actions: bool = False,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            agent=agent,
            deterministic=deterministic,
            discount=discount,
            skill_steps=skill_steps,
            bounds=bounds,
            normalize_actions=normalize_actions,
        )
        super().__init__(env)
        horizon = agent.config.horizon
        skill_steps = horizon if skill_steps is None else int(skill_steps)
        if not 1 <= skill_steps <= horizon:
            raise ValueError(
                f"skill_steps must be in [1, H = {horizon}]: the decoder learned skills of H steps, got {skill_steps}"
            )
        if discount is not None and not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1] or None (a plain sum), got {discount}")
        if not isinstance(env.action_space, gym.spaces.Box):
            raise TypeError(
                f"SkillEnv needs a Box action space to decode skills into, got {env.action_space}"
            )
        if int(np.prod(env.action_space.shape)) != agent.spec.action_dim:
            raise ValueError(
                f"env's actions have shape {env.action_space.shape} but the agent decodes "
                f"{agent.spec.action_dim}-dim actions: pass the env the agent was trained for"
            )
        self.agent, self.deterministic = agent, deterministic
        self.discount, self.skill_steps = discount, skill_steps
        low, high = latent_bounds(agent, float(bounds)) if np.isscalar(bounds) else bounds  # type: ignore[arg-type,misc]
        dim = agent.config.latent_dim
        low = np.broadcast_to(np.asarray(low, np.float32), (dim,)).copy()
        high = np.broadcast_to(np.asarray(high, np.float32), (dim,)).copy()
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (low < high).all()):
            raise ValueError("bounds must be finite with low < high in every latent dimension")
        #: the latent skills' box, which actions are clipped to (or mapped onto, when normalised)
        self.latent_space = gym.spaces.Box(low, high, (dim,), np.float32)
        self.normalize_actions = bool(normalize_actions)
        self.action_space = (
            gym.spaces.Box(-1.0, 1.0, (dim,), np.float32) if self.normalize_actions else self.latent_space
        )
        self._generator = torch.Generator(agent.device).manual_seed(agent.config.seed)
        self._observation: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self._generator.manual_seed(seed)
            self.action_space.seed(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        self._observation = observation
        return observation, info

    @torch.no_grad()
    def _decode(self, observation: Any, z: torch.Tensor) -> np.ndarray:
        state = self.agent.policy.encode(np.atleast_2d(self.agent.spec.flattener.flatten(observation)))
        gen = None if self.deterministic else self._generator
        action = self.agent.vae.act(state, z, deterministic=self.deterministic, generator=gen)
        space = self.env.action_space
        return action[0].cpu().numpy().astype(space.dtype).reshape(space.shape)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._observation is None:
            raise RuntimeError(
                "Call reset() before step(): SkillEnv decodes skills from the current observation"
            )
        z = self.to_latent(action)
        z_tensor = self.agent._tensor(z[None])
        rewards: list[float] = []
        achieved: list[Any] = []
        info: dict[str, Any] = {}
        observation, terminated, truncated = self._observation, False, False
        for _ in range(self.skill_steps):
            observation, reward, terminated, truncated, info = self.env.step(
                self._decode(observation, z_tensor)
            )
            rewards.append(float(reward))
            if isinstance(observation, dict) and "achieved_goal" in observation:
                achieved.append(np.array(observation["achieved_goal"], copy=True))
            if terminated or truncated:
                break
        self._observation = observation
        total = float(sum(r * self._gamma**i for i, r in enumerate(rewards)))
        info = {**info, "steps": len(rewards), "low_level_rewards": tuple(rewards), "skill": z}
        if achieved:
            info["low_level_achieved_goals"] = tuple(achieved)
        return observation, total, bool(terminated), bool(truncated), info

    @property
    def _gamma(self) -> float:
        return 1.0 if self.discount is None else self.discount

    def to_latent(self, action: Any) -> np.ndarray:
        """The latent z an action stands for: clipped to the latent box, or, with
        ``normalize_actions``, clipped to [-1, 1] and mapped linearly onto it."""
        box = self.latent_space
        a = np.asarray(action, np.float32).reshape(box.shape)
        if self.normalize_actions:
            a = box.low + (np.clip(a, -1.0, 1.0) + 1.0) * np.float32(0.5) * (box.high - box.low)
        return np.clip(a, box.low, box.high).astype(np.float32)

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> Any:
        """A skill step's reward for ``desired_goal``: Σ γ^i r_i, with r_i the inner env's
        ``compute_reward`` at the i-th low-level step's achieved goal (from ``info``; the last one is
        ``achieved_goal``). Vectorised as goal envs are: a batch of goals takes an array of infos and
        returns one reward per row."""
        inner = self.env.get_wrapper_attr("compute_reward")
        desired = np.asarray(desired_goal)
        single = isinstance(info, dict)
        infos = [info] if single else list(np.asarray(info, dtype=object).reshape(-1))
        achieved = np.asarray(achieved_goal)
        if single:
            achieved, desired = achieved[None], desired[None]
        rewards = np.zeros(len(infos), np.float64)
        goals = [
            [*each.get("low_level_achieved_goals", ())[:-1], achieved[row]] for row, each in enumerate(infos)
        ]
        for step in range(max(len(g) for g in goals)):  # rows of this low-level step, one inner call
            rows = [row for row, g in enumerate(goals) if step < len(g)]
            step_rewards = inner(
                np.stack([goals[row][step] for row in rows]),
                desired[rows],
                np.asarray([infos[row] for row in rows], dtype=object),
            )
            rewards[rows] += np.asarray(step_rewards, np.float64).reshape(-1) * self._gamma**step
        return float(rewards[0]) if single else rewards
