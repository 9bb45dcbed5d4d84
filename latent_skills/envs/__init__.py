"""Environments: evaluation protocols, evaluation over gymnasium vector envs, score normalisation,
skills as actions.

The names load on first use (``SkillEnv`` imports torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from .evaluation import evaluate_policy_vec, normalized_score
    from .protocols import PROTOCOLS, EvaluationProtocol, choose_protocol
    from .safe_make import EnvRecord, UntrustedEnvSpecError, make_registered_env
    from .skill_env import SkillEnv, latent_bounds

_EXPORTS = {
    "evaluate_policy_vec": ".evaluation",
    "normalized_score": ".evaluation",
    "PROTOCOLS": ".protocols",
    "EvaluationProtocol": ".protocols",
    "choose_protocol": ".protocols",
    "EnvRecord": ".safe_make",
    "UntrustedEnvSpecError": ".safe_make",
    "make_registered_env": ".safe_make",
    "SkillEnv": ".skill_env",
    "latent_bounds": ".skill_env",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "PROTOCOLS",
    "EnvRecord",
    "EvaluationProtocol",
    "SkillEnv",
    "UntrustedEnvSpecError",
    "choose_protocol",
    "evaluate_policy_vec",
    "latent_bounds",
    "make_registered_env",
    "normalized_score",
]
