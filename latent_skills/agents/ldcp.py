"""LDCP: Latent Diffusion-Constrained Planning (Venkatraman et al. 2023, appendix B, Algorithm 2).

A temporally abstract world model p(s_{t+H} | s_t, z) is trained in its own stage
(:class:`~latent_skills.agents.stages.DynamicsStage`). Acting searches a tree of prior samples
``plan_depth`` skills deep with it and executes the first latent of the cheapest plan
(:class:`~latent_skills.agents.selectors.TreeSearch`). Sampling from the prior keeps the world
model on the data's support.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch

from latent_skills.config import LDCPConfig
from latent_skills.nn import SkillWorldModel

from .base import LatentSkillAgent
from .policy import SkillPolicy
from .priors import DiffusionPrior
from .registry import register_agent
from .selectors import CostFn, Plan, TreeSearch
from .stages import DynamicsStage, PriorStage, SkillsStage


@register_agent
class LDCP(LatentSkillAgent):
    """Skills + diffusion prior + a world model over skills; acts by tree search over prior samples.

    The cost is set with :meth:`set_cost`; it is *not* saved in checkpoints, so set it again after
    ``load``. Without one, goal-reaching observations (with ``achieved_goal`` and ``desired_goal``)
    are scored by the distance between the predicted achieved goal and the current desired goal.
    """

    config_class = LDCPConfig
    config: LDCPConfig
    stages = (SkillsStage, PriorStage, DynamicsStage)
    prior = DiffusionPrior
    selector = TreeSearch

    def _make_policy(self, generator: torch.Generator) -> SkillPolicy:
        cost = getattr(getattr(self, "policy", None), "selector", None)
        policy = super()._make_policy(generator)
        if isinstance(cost, TreeSearch):
            policy.selector.cost_fn = cost.cost_fn  # type: ignore[attr-defined]  # set_acting keeps the cost
        return policy

    @property
    def cost_fn(self) -> CostFn | None:
        return self.policy.selector.cost_fn  # type: ignore[attr-defined]

    def set_cost(self, fn: CostFn | None) -> LDCP:
        """Plan with ``fn(states (B, S), predicted (B, m, S)) -> (B, m)`` costs (torch tensors, raw
        flat states; lower is better), or with the default goal distance when ``fn`` is None.
        The cost is not saved in checkpoints."""
        if fn is not None and not callable(fn):
            raise TypeError(
                f"set_cost needs a callable fn(states, predicted) -> costs, got {type(fn).__name__}"
            )
        self.policy.selector.cost_fn = fn  # type: ignore[attr-defined]
        return self

    @torch.no_grad()
    def predict_end_states(self, observation: Any, latents: np.ndarray) -> np.ndarray:
        """Where the world model says each skill ends: the mean of p(s_{t+H} | s_t, z), raw flat states.

        ``observation``: one (array or dict) or a batch of ``B``; ``latents``: ``(n, D)`` (the same
        latents for every state) or ``(B, n, D)``. Returns ``(n, S)`` for one observation with
        ``(n, D)`` latents, else ``(B, n, S)``.
        """
        states, single = self.policy.states(observation)
        z = np.asarray(latents, np.float32)
        D = self.config.latent_dim
        if z.ndim not in (2, 3) or z.shape[-1] != D:
            raise ValueError(f"latents must have shape (n, {D}) or (B, n, {D}), got {z.shape}")
        if z.ndim == 3 and len(z) != len(states):
            raise ValueError(f"latents are for {len(z)} states but the observation has {len(states)}")
        z_t = self._tensor(z if z.ndim == 3 else z[None])
        dynamics = cast(SkillWorldModel, self.modules()["dynamics"])
        ends = dynamics.predict(states[:, None], z_t).cpu().numpy()
        return ends[0] if single and z.ndim == 2 else ends

    def plan(self, observation: Any, *, deterministic: bool = False, seed: int | None = None) -> Plan:
        """One planning step, with everything LDCP weighed (for inspection and plots).

        ``deterministic=True`` draws exactly the candidates ``predict(..., deterministic=True)``
        does; ``seed`` seeds the draw otherwise (default: the agent's acting RNG). Arrays have a
        leading batch axis even for one observation.
        """
        policy = self.policy
        states, _ = policy.states(observation)
        generator = policy.seeded(self.config.seed if deterministic else seed)
        search: TreeSearch = policy.selector  # type: ignore[assignment]
        first, ends, scores = search.search(states, policy.prior, generator, deterministic)
        return Plan(
            latents=first.cpu().numpy(),
            end_states=ends.cpu().numpy(),
            scores=scores.cpu().numpy(),
            best=scores.argmin(1).cpu().numpy(),
        )


__all__ = ["LDCP", "CostFn", "Plan"]
