"""Environments: evaluation over gymnasium vector envs, score normalisation, skills as actions."""

from .evaluation import evaluate_policy_vec, normalized_score
from .skill_env import SkillEnv, latent_bounds

__all__ = ["SkillEnv", "evaluate_policy_vec", "latent_bounds", "normalized_score"]
