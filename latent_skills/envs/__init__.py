"""Environments: evaluation protocols, evaluation over gymnasium vector envs, score normalisation,
skills as actions."""

from .evaluation import evaluate_policy_vec, normalized_score
from .protocols import PROTOCOLS, EvaluationProtocol, choose_protocol
from .safe_make import EnvRecord, UntrustedEnvSpecError, make_registered_env
from .skill_env import SkillEnv, latent_bounds

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
