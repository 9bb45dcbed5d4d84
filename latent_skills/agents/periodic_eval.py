"""Evaluation during training: ``learn(eval_freq=N)`` evaluates the agent every N gradient steps of its
last stage (the one after which it acts as intended: ``q`` for LDCQ), logs the results and keeps the
best checkpoint so far."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from .base import LatentSkillAgent

EVAL_SEED = 1000  # apart from the final evaluation's (seed 0): the best is not chosen on its episodes
BEST = "best"  # save_path/best: the best checkpoint so far, with eval.json
RESULT = "eval.json"
# the result's keys under the names SB3's EvalCallback logs (eval/mean_reward, eval/success_rate), so
# both write one series
LOGGED = {
    "mean_return": "eval/mean_reward",
    "std_return": "eval/std_reward",
    "normalized_score": "eval/normalized_score",
    "success_rate": "eval/success_rate",
}


class PeriodicEvaluation:
    """Every ``freq`` steps of the agent's last stage: ``agent.evaluate(n_episodes=episodes,
    n_envs=envs, seed=EVAL_SEED)`` (deterministic; the same episodes each time, so evaluations compare
    like with like), logged as ``eval/mean_reward``, ``eval/std_reward``, ``eval/normalized_score`` and
    ``eval/success_rate`` (SB3's ``EvalCallback`` names) (where the env reports them), under the agent's default evaluation protocol
    (``eval.json`` names it: see :mod:`latent_skills.envs.protocols`). With ``save_path``, a mean return above every
    earlier one saves the agent (``agent.save``) to ``save_path/best`` with its result in ``eval.json``;
    a resumed run starts from the best that ``eval.json`` records.

    Evaluation leaves training as it was: the modules are put in eval mode and back, and the global
    torch and numpy random states are restored, so a run's weights do not depend on ``freq``.
    """

    def __init__(
        self,
        agent: LatentSkillAgent,
        freq: int,
        episodes: int,
        envs: int = 1,
        save_path: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        if freq < 1 or episodes < 1 or envs < 1:
            raise ValueError(
                f"eval_freq={freq}, eval_episodes={episodes}, eval_envs={envs}: each must be ≥ 1"
            )
        if agent.spec.eval_env_spec is None:
            raise ValueError(
                "eval_freq needs the agent's evaluation env, and none is recorded: build the agent with "
                "from_dataset(..., env=ENV_ID)"
            )
        self.stage = agent.stage_names()[-1]
        self.freq, self.episodes, self.envs = freq, episodes, envs
        self.best_path = None if save_path is None else Path(save_path) / BEST
        self.best = -math.inf
        if resume and self.best_path is not None and (self.best_path / RESULT).is_file():
            self.best = float(json.loads((self.best_path / RESULT).read_text())["mean_return"])

    def due(self, stage: str, step: int) -> bool:
        """Whether :meth:`after_step` evaluates after ``step`` (≥ 1) steps of ``stage``."""
        return stage == self.stage and step % self.freq == 0

    def after_step(self, agent: LatentSkillAgent, stage: str, step: int, trained: list[nn.Module]) -> None:
        """Called after each gradient step (``step`` ≥ 1 counts the stage's steps done)."""
        if not self.due(stage, step):
            return
        with _evaluating(agent, trained):
            result = agent.evaluate(n_episodes=self.episodes, n_envs=self.envs, seed=EVAL_SEED)
        for key, name in LOGGED.items():
            if result.get(key) is not None:
                agent.logger.record(name, float(result[key]))
        agent.logger.record("time/total_timesteps", agent.num_timesteps)
        agent.logger.dump(agent.num_timesteps)
        if self.best_path is not None and result["mean_return"] > self.best:
            self.best = float(result["mean_return"])
            agent.save(self.best_path)
            summary = {k: v for k, v in result.items() if k != "returns"}
            summary.update(stage=stage, step=step, num_timesteps=agent.num_timesteps)
            (self.best_path / RESULT).write_text(json.dumps(summary, indent=2, default=float) + "\n")


@contextmanager
def _evaluating(agent: LatentSkillAgent, trained: list[nn.Module]) -> Iterator[None]:
    devices = [agent.device] if agent.device.type == "cuda" else []
    numpy_state: Any = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        for module in agent.modules().values():
            module.train(False)
        try:
            yield
        finally:
            for module in trained:
                module.train(True)
            np.random.set_state(numpy_state)
