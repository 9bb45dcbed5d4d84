"""Selectors: how one latent is chosen per state from what the prior proposes.

- :class:`First` — one prior sample (diffusion behaviour cloning).
- :class:`Medoid` — the medoid of ``act_candidates`` samples, a typical latent of the prior (LDGC).
- :class:`QArgmax` — argmax of min_j Q_j(s, z) over ``act_candidates`` samples (LDCQ, BCQH,
  LatentDiffuser).
- :class:`TreeSearch` — plan ``plan_depth`` skills deep with a world model p(s_{t+H} | s_t, z) over
  ``plan_candidates`` samples per state and execute the first latent of the cheapest plan (LDCP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from latent_skills.config import AgentConfig
from latent_skills.nn import SkillWorldModel, TwinCritic, q_candidates

from .priors import LatentPrior
from .spec import AgentSpec

Modules = dict[str, nn.Module]

#: ``fn(states, predicted) -> costs``: ``states (B, S)`` the raw flat states planning starts from,
#: ``predicted (B, m, S)`` raw predicted end states of ``m`` plans each; lower is better, ``(B, m)``.
CostFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class LatentSelector:
    """Picks one latent per state. ``requires`` names the modules it needs."""

    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, modules: Modules, config: AgentConfig, spec: AgentSpec) -> None:
        self.modules, self.config, self.spec = modules, config, spec

    def select(
        self, states: torch.Tensor, prior: LatentPrior, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        """One latent per state, ``(B, D)``."""
        raise NotImplementedError


def _pick(candidates: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    return candidates[torch.arange(len(candidates), device=candidates.device), best]


class First(LatentSelector):
    """One sample of the prior per state."""

    @torch.no_grad()
    def select(
        self, states: torch.Tensor, prior: LatentPrior, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        return prior.sample(states, 1, generator=generator, shared_noise=shared_noise)[:, 0]


class Medoid(LatentSelector):
    """The medoid of ``act_candidates`` prior samples per state (1: that sample). No Q-function ranks
    them; the medoid is a typical latent of the prior, where one sample with the fixed noise of
    ``deterministic=True`` may sit in the same tail at every choice."""

    @torch.no_grad()
    def select(
        self, states: torch.Tensor, prior: LatentPrior, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        candidates = prior.sample(
            states, self.config.act_candidates, generator=generator, shared_noise=shared_noise
        )
        standardised = prior.standardise(candidates)
        total_distance = torch.cdist(standardised, standardised).sum(-1)  # (B, n)
        return _pick(candidates, total_distance.argmin(1))


class QArgmax(LatentSelector):
    """argmax over ``act_candidates`` prior samples of min_j Q_j(s, z)."""

    requires = ("critic",)

    @torch.no_grad()
    def select(
        self, states: torch.Tensor, prior: LatentPrior, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        candidates = prior.sample(
            states, self.config.act_candidates, generator=generator, shared_noise=shared_noise
        )
        critic = cast(TwinCritic, self.modules["critic"])
        return _pick(candidates, q_candidates(critic, states, candidates).argmax(1))


@dataclass(frozen=True)
class Plan:
    """One planning step for a batch of states (see :meth:`TreeSearch.search`)."""

    latents: np.ndarray  # (B, n, D) first-level candidates, from the prior at each state
    end_states: np.ndarray  # (B, n, S) where the world model says each candidate ends
    scores: np.ndarray  # (B, n) each candidate's cost: the lowest over the leaves of its subtree
    best: np.ndarray  # (B,) index of the candidate executed


class TreeSearch(LatentSelector):
    """Samples ``plan_candidates`` latents at each state, predicts where each skill ends, samples
    again from every predicted end state, ``plan_depth`` skills deep; scores the leaves with a cost
    (default: distance from the predicted achieved goal to the desired goal) and executes the first
    latent of the best leaf. The cost is not saved in checkpoints."""

    requires = ("dynamics",)

    def __init__(
        self, modules: Modules, config: AgentConfig, spec: AgentSpec, cost_fn: CostFn | None = None
    ) -> None:
        super().__init__(modules, config, spec)
        self.cost_fn = cost_fn

    @torch.no_grad()
    def search(
        self, states: torch.Tensor, prior: LatentPrior, generator: torch.Generator, shared_noise: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """First-level candidates ``(B, n, D)``, their end states ``(B, n, S)`` and scores ``(B, n)``.
        Level k samples n latents at each of the ``B·n^k`` frontier states and predicts them all in
        one batched call: ``n + n² + … + n^d`` predictions per state."""
        c: Any = self.config
        n, depth, dynamics = c.plan_candidates, c.plan_depth, cast(SkillWorldModel, self.modules["dynamics"])
        frontier, first, first_ends = states, states.new_empty(0), states.new_empty(0)
        for level in range(depth):
            # (R, n, D): row r·n + i of the next frontier continues frontier row r with latent i
            z = prior.sample(frontier, n, generator=generator, shared_noise=shared_noise)
            ends = dynamics.predict(frontier[:, None], z)
            if level == 0:
                first, first_ends = z, ends
            frontier = ends.reshape(-1, states.shape[-1])
        leaves = frontier.reshape(len(states), n**depth, -1)
        # As the paper: score the final predicted states and execute the first latent of the best
        # leaf, so a first latent is worth the best plan it starts (min over its subtree). Summing
        # costs along the path would also reward getting close early, but penalise plans that pass
        # far-off states on the way around a wall.
        scores = self.cost(states, leaves).reshape(len(states), n, -1).amin(-1)
        return first, first_ends, scores

    @torch.no_grad()
    def select(
        self, states: torch.Tensor, prior: LatentPrior, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        first, _, scores = self.search(states, prior, generator, shared_noise)
        return _pick(first, scores.argmin(1))

    def cost(self, states: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        if self.cost_fn is None:
            return self._goal_distance(states, predicted)
        cost = torch.as_tensor(self.cost_fn(states, predicted), device=states.device)
        if cost.shape != predicted.shape[:2]:
            raise ValueError(
                f"the cost function returned shape {tuple(cost.shape)}, expected {tuple(predicted.shape[:2])}: "
                "one cost per (state, predicted end state)"
            )
        return cost.float()

    def _goal_distance(self, states: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """‖achieved_goal of the predicted state − desired_goal of the current state‖."""
        achieved, desired = self._goal_slices()
        return (predicted[..., achieved] - states[:, None, desired]).norm(dim=-1)

    def _goal_slices(self) -> tuple[slice, slice]:
        flattener = self.spec.state_layout
        if flattener.has("achieved_goal") and flattener.has("desired_goal"):
            achieved, desired = flattener.slice_of("achieved_goal"), flattener.slice_of("desired_goal")
            if achieved.stop - achieved.start == desired.stop - desired.start:
                return achieved, desired
        raise ValueError(
            "LDCP's default cost is the distance from the predicted achieved_goal to the desired_goal, "
            "and these observations have no matching achieved_goal/desired_goal; give a cost with "
            "agent.set_cost(fn), fn(states (B, S), predicted (B, m, S)) -> (B, m) costs"
        )
