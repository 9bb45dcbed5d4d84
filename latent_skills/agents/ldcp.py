"""LDCP: Latent Diffusion-Constrained Planning (paper 000, appendix B, Algorithm 2).

A temporally abstract world model p(s_{t+H} | s_t, z) is trained in its own stage on the windows'
(s_t, z ~ q(z|τ), s_{t+H}), the latents detached (the VAE is not trained by it). Acting samples
``plan_candidates`` latents from the diffusion prior, predicts where each skill ends, samples again
from every predicted end state, and so on ``plan_depth`` skills deep; the leaves are scored with a
cost (default: the distance from the predicted position to the goal) and the first latent of the
best leaf is executed. Sampling from the prior keeps the world model on the data's support.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from latent_skills.config import LDCPConfig
from latent_skills.nn import SkillWorldModel

from .base import LatentSkillAgent, Stage

#: ``fn(states, predicted) -> costs``: ``states (B, S)`` the raw flat states planning starts from,
#: ``predicted (B, m, S)`` raw predicted end states of ``m`` plans each; lower is better, ``(B, m)``.
CostFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Windows used to standardise the world model's targets (a sample, so huge datasets cost no memory).
DELTA_STATS_WINDOWS = 200_000


@dataclass(frozen=True)
class Plan:
    """One planning step for a batch of states (see :meth:`LDCP.plan`)."""

    latents: np.ndarray  # (B, n, D) first-level candidates, from the prior at each state
    end_states: np.ndarray  # (B, n, S) where the world model says each candidate ends
    scores: np.ndarray  # (B, n) each candidate's cost: the lowest over the leaves of its subtree
    best: np.ndarray  # (B,) index of the candidate LDCP executes


class LDCP(LatentSkillAgent):
    """Skills + diffusion prior + a world model over skills; acts by tree search over prior samples.

    The cost is ``agent.cost_fn`` (set it with :meth:`set_cost`); it is *not* saved in checkpoints,
    so set it again after ``load``. Without one, goal-reaching observations (with ``achieved_goal``
    and ``desired_goal``) are scored by the distance between the predicted achieved goal and the
    current desired goal.
    """

    config_class = LDCPConfig
    config: LDCPConfig
    STAGE_MODULES = {**LatentSkillAgent.STAGE_MODULES, "dynamics": ("dynamics",)}
    STAGE_FIELDS = {**LatentSkillAgent.STAGE_FIELDS, "dynamics": ("horizon", "latent_dim", "dynamics_widths")}
    cost_fn: CostFn | None = None

    def _build_modules(self) -> None:
        super()._build_modules()
        self.dynamics = SkillWorldModel(
            self.spec.state_dim, self.config.latent_dim, widths=self.config.dynamics_widths
        )

    def modules(self) -> dict[str, torch.nn.Module]:
        return {**super().modules(), "dynamics": self.dynamics}

    def _make_stage(self, name: str) -> Stage:
        return self._dynamics_stage() if name == "dynamics" else super()._make_stage(name)

    # ------------------------------------------------------------------ stage 3: the world model
    def _dynamics_stage(self) -> Stage:
        c, w = self.config, self.data.windows
        rng, gen = self._stage_generators("dynamics")
        mean, std = self.posterior(progress_bar=self._progress)
        # Windows whose end state is what a skill reaches: H steps later, or a termination. A
        # truncated episode's short tail windows stop early and would teach shorter skills.
        usable = np.flatnonzero((w.lengths == c.horizon) | w.dones)
        if len(usable) == 0:
            raise ValueError(
                f"No window of the dataset runs horizon={c.horizon} steps or ends in a termination, so "
                "the world model has no skill outcome to learn; choose a smaller horizon"
            )
        first, end = w.first_states, w.next_states
        sample = usable
        if len(usable) > DELTA_STATS_WINDOWS:
            sample = np.sort(rng.choice(usable, DELTA_STATS_WINDOWS, replace=False))
        self.dynamics.set_delta_stats(self._tensor(first[sample]), self._tensor(end[sample]))

        def loss(_: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = usable[rng.integers(0, len(usable), c.dynamics_batch_size)]
            eps = torch.randn((len(idx), c.latent_dim), generator=gen, device=self.device)
            z = self._tensor(mean[idx]) + self._tensor(std[idx]) * eps  # a fresh z ~ q(z|τ), no gradient
            out = self.dynamics.loss(self._tensor(first[idx]), z, self._tensor(end[idx]))
            return out["loss"], {"loss": out["loss"].item(), "mse": out["mse"].item()}

        optimizer = torch.optim.Adam(self.dynamics.parameters(), lr=c.dynamics_lr)
        return Stage("dynamics", [self.dynamics], optimizer, loss, rng=rng, generator=gen)

    # ------------------------------------------------------------------ the world model, public
    @torch.no_grad()
    def predict_end_states(self, observation: Any, latents: np.ndarray) -> np.ndarray:
        """Where the world model says each skill ends: the mean of p(s_{t+H} | s_t, z), raw flat states.

        ``observation``: one (array or dict) or a batch of ``B``; ``latents``: ``(n, D)`` (the same
        latents for every state) or ``(B, n, D)``. Returns ``(n, S)`` for one observation with
        ``(n, D)`` latents, else ``(B, n, S)``.
        """
        states, single = self._flat_states(observation)
        z = np.asarray(latents, np.float32)
        D = self.config.latent_dim
        if z.ndim not in (2, 3) or z.shape[-1] != D:
            raise ValueError(f"latents must have shape (n, {D}) or (B, n, {D}), got {z.shape}")
        if z.ndim == 3 and len(z) != len(states):
            raise ValueError(f"latents are for {len(z)} states but the observation has {len(states)}")
        z_t = self._tensor(z if z.ndim == 3 else z[None])
        ends = self.dynamics.predict(self._tensor(states)[:, None], z_t).cpu().numpy()
        return ends[0] if single and z.ndim == 2 else ends

    # ------------------------------------------------------------------ the cost
    def set_cost(self, fn: CostFn | None) -> LDCP:
        """Plan with ``fn(states (B, S), predicted (B, m, S)) -> (B, m)`` costs (torch tensors, raw
        flat states; lower is better), or with the default goal distance when ``fn`` is None.
        The cost is not saved in checkpoints."""
        if fn is not None and not callable(fn):
            raise TypeError(
                f"set_cost needs a callable fn(states, predicted) -> costs, got {type(fn).__name__}"
            )
        self.cost_fn = fn
        return self

    def _cost(self, states: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
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
        flattener = self.spec.flattener
        if flattener.has("achieved_goal") and flattener.has("desired_goal"):
            achieved, desired = flattener.slice_of("achieved_goal"), flattener.slice_of("desired_goal")
            if achieved.stop - achieved.start == desired.stop - desired.start:
                return achieved, desired
        raise ValueError(
            "LDCP's default cost is the distance from the predicted achieved_goal to the desired_goal, "
            "and these observations have no matching achieved_goal/desired_goal; give a cost with "
            "agent.set_cost(fn), fn(states (B, S), predicted (B, m, S)) -> (B, m) costs"
        )

    # ------------------------------------------------------------------ planning
    @torch.no_grad()
    def _search(
        self, states: torch.Tensor, generator: torch.Generator, shared_noise: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tree search: first-level candidates ``(B, n, D)``, their end states ``(B, n, S)`` and
        scores ``(B, n)``. Level k samples n latents at each of the ``B·n^k`` frontier states and
        predicts them all in one batched call: ``n + n² + … + n^d`` predictions per state."""
        n, depth = self.config.plan_candidates, self.config.plan_depth
        frontier, first, first_ends = states, states.new_empty(0), states.new_empty(0)
        for level in range(depth):
            z = self._sample_prior(
                self._prior_condition(frontier), n, generator=generator, shared_noise=shared_noise
            )  # (R, n, D): row r·n + i of the next frontier continues frontier row r with latent i
            ends = self.dynamics.predict(frontier[:, None], z)
            if level == 0:
                first, first_ends = z, ends
            frontier = ends.reshape(-1, states.shape[-1])
        leaves = frontier.reshape(len(states), n**depth, -1)
        # As the paper: score the final predicted states and execute the first latent of the best
        # leaf, so a first latent is worth the best plan it starts (min over its subtree). Summing
        # costs along the path would also reward getting close early, but penalise plans that pass
        # far-off states on the way around a wall.
        scores = self._cost(states, leaves).reshape(len(states), n, -1).amin(-1)
        return first, first_ends, scores

    @torch.no_grad()
    def _choose_latents(
        self, states: torch.Tensor, generator: torch.Generator, shared_noise: bool
    ) -> torch.Tensor:
        """The first latent of the lowest-cost plan."""
        first, _, scores = self._search(states, generator, shared_noise)
        return first[torch.arange(len(states), device=states.device), scores.argmin(1)]

    def plan(self, observation: Any, *, deterministic: bool = False, seed: int | None = None) -> Plan:
        """One planning step, with everything LDCP weighed (for inspection and plots).

        ``deterministic=True`` draws exactly the candidates ``predict(..., deterministic=True)``
        does; ``seed`` seeds the draw otherwise (default: the agent's acting RNG). Arrays have a
        leading batch axis even for one observation.
        """
        states, _ = self._flat_states(observation)
        if deterministic:
            generator = torch.Generator(self.device).manual_seed(self.config.seed)
        elif seed is not None:
            generator = torch.Generator(self.device).manual_seed(seed)
        else:
            generator = self._act_generator
        first, ends, scores = self._search(self._tensor(states), generator, shared_noise=deterministic)
        return Plan(
            latents=first.cpu().numpy(),
            end_states=ends.cpu().numpy(),
            scores=scores.cpu().numpy(),
            best=scores.argmin(1).cpu().numpy(),
        )
