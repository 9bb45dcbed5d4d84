"""Environments: evaluation over gymnasium vector envs and score normalisation."""

from .evaluation import evaluate_policy_vec, normalized_score

__all__ = ["evaluate_policy_vec", "normalized_score"]
