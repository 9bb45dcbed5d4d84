"""Habits from Stable-Baselines3 / rl-zoo: SB3's own callbacks in ``learn`` (its real classes, not
look-alikes), evaluation during training (``learn(eval_freq=N)``) and the loggers (CSV, TensorBoard,
W&B offline). A tiny LDCQ on a tiny PointMaze dataset; for callbacks a step is one gradient step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from agent_helpers import TINY
from conftest import wandb_records
from stable_baselines3.common.callbacks import (
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    ProgressBarCallback,
    StopTrainingOnNoModelImprovement,
)
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from latent_skills import LDCQ
from latent_skills.checkpoint import CheckpointError
from latent_skills.loggers import configure_logger

STEPS = {"skills_steps": 6, "prior_steps": 6, "q_steps": 12}
PLAN = sum(STEPS.values())


def tiny_ldcq(dataset, **extra) -> LDCQ:
    return LDCQ.from_dataset(dataset, device="cpu", **{**TINY, **STEPS, "exec_horizon": 3, **extra})


def test_get_env_is_the_evaluation_env_as_a_vec_env(pointmaze_dataset, box_dataset):
    agent = tiny_ldcq(pointmaze_dataset)
    env = agent.get_env()
    assert isinstance(env, VecEnv) and env.num_envs == 1 and agent.get_env() is env  # built once
    assert env.observation_space == pointmaze_dataset.observation_space
    assert agent.get_vec_normalize_env() is None
    assert tiny_ldcq(box_dataset).get_env() is None  # no env recorded


def test_sb3_callbacks_work_in_learn(pointmaze_dataset, tmp_path):
    agent = tiny_ldcq(pointmaze_dataset)
    evaluation = EvalCallback(
        agent.get_env(),
        n_eval_episodes=1,
        eval_freq=8,
        log_path=str(tmp_path / "eval"),
        best_model_save_path=str(tmp_path / "eval"),
        verbose=0,
    )
    checkpoints = CheckpointCallback(save_freq=10, save_path=str(tmp_path / "checkpoints"))
    bar = ProgressBarCallback()
    agent.learn(callback=CallbackList([evaluation, checkpoints, bar]))

    assert agent.num_timesteps == PLAN and agent.stages_completed == ["skills", "prior", "q"]
    # EvalCallback: every 8 gradient steps (over all stages), evaluations.npz and the best model
    log = np.load(tmp_path / "eval" / "evaluations.npz")
    assert list(log["timesteps"]) == [8, 16, 24] and log["results"].shape == (3, 1)
    assert LDCQ.load(tmp_path / "eval" / "best_model").num_timesteps in (8, 16, 24)
    # the path an SB3 user types: best_model.zip (SB3's load adds the suffix the same way)
    assert LDCQ.load(tmp_path / "eval" / "best_model.zip").num_timesteps in (8, 16, 24)
    # CheckpointCallback: loadable checkpoint folders under SB3's names
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["rl_model_10_steps.zip", "rl_model_20_steps.zip"]
    loaded = LDCQ.load(tmp_path / "checkpoints" / "rl_model_20_steps.zip")
    assert loaded.num_timesteps == 20 and loaded.stages_completed == ["skills", "prior"]
    assert LDCQ.load(tmp_path / "checkpoints" / "rl_model_10_steps").num_timesteps == 10
    with pytest.raises(CheckpointError, match="rl_model_30_steps.zip is not"):  # neither exists
        LDCQ.load(tmp_path / "checkpoints" / "rl_model_30_steps.zip")
    # ProgressBarCallback: one tick per gradient step
    assert bar.pbar.n == PLAN and bar.pbar.total == PLAN


def test_stop_training_on_no_model_improvement_leaves_the_stage_unfinished(pointmaze_dataset, tmp_path):
    agent = tiny_ldcq(pointmaze_dataset, q_steps=40)
    agent.learn(stages=["skills", "prior"])
    stop = StopTrainingOnNoModelImprovement(max_no_improvement_evals=0)
    evaluation = EvalCallback(
        agent.get_env(), n_eval_episodes=1, eval_freq=2, callback_after_eval=stop, verbose=0
    )
    # the random tiny agent never reaches the sparse goal: the second evaluation brings no improvement
    agent.learn(stages=["q"], callback=evaluation, save_path=tmp_path / "run")
    assert evaluation.n_calls == 4 and agent.num_timesteps == 12 + 4
    assert agent.stages_completed == ["skills", "prior"]
    saved = LDCQ.load(tmp_path / "run")
    assert saved.can_resume and saved.stages_completed == ["skills", "prior"]


def test_eval_freq_evaluates_the_last_stage_and_keeps_the_best(pointmaze_dataset, tmp_path):
    agent = tiny_ldcq(pointmaze_dataset)
    agent.set_logger(configure(str(tmp_path / "run" / "logs"), ["csv"]))
    agent.learn(save_path=tmp_path / "run", eval_freq=5, eval_episodes=2, eval_envs=2)
    agent.logger.close()

    rows = (tmp_path / "run" / "logs" / "progress.csv").read_text().splitlines()
    header = rows[0].split(",")
    evals = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:]]
    evals = [row for row in evals if row["eval/mean_reward"]]
    # q is the last stage: steps 5 and 10 of its 12, after the 12 steps of skills and prior
    assert [int(float(row["time/total_timesteps"])) for row in evals] == [17, 22]
    assert all(row["eval/success_rate"] != "" for row in evals)
    best = json.loads((tmp_path / "run" / "best" / "eval.json").read_text())
    assert best["stage"] == "q" and best["step"] in (5, 10) and best["n_episodes"] == 2
    assert best["protocol"] in ("d4rl", "dataset")  # the score names how it was measured
    assert LDCQ.load(tmp_path / "run" / "best").num_timesteps == best["num_timesteps"]
    assert LDCQ.load(tmp_path / "run").stages_completed == ["skills", "prior", "q"]  # the last, beside

    # evaluating does not change what is learned
    plain = tiny_ldcq(pointmaze_dataset).learn()
    for name, module in agent.modules().items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, plain.modules()[name].state_dict()[key]), f"{name}.{key}"


def test_eval_freq_needs_an_env(box_dataset):
    with pytest.raises(ValueError, match="evaluation env"):
        tiny_ldcq(box_dataset).learn(eval_freq=5)


def test_tensorboard_and_wandb_loggers_record_the_config_and_metrics(
    pointmaze_dataset, tmp_path, offline_wandb
):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    agent = tiny_ldcq(pointmaze_dataset, skills_steps=4, prior_steps=4, q_steps=4)
    logs = tmp_path / "logs"
    agent.set_logger(configure_logger(logs, ["csv", "tensorboard", "wandb"], agent=agent))
    agent.learn(log_interval=2, eval_freq=4, eval_episodes=1)
    agent.logger.close()

    assert json.loads((logs / "config.json").read_text())["q_steps"] == 4
    assert list(logs.glob("events.out.tfevents.*"))
    keys = [b"skills/loss", b"q/loss", b"eval/mean_reward", b"q_candidates"]
    recorded = wandb_records(logs, keys)
    for key in keys:
        assert key in recorded, key


def test_a_resumed_run_keeps_the_best_it_had(pointmaze_dataset, tmp_path):
    agent = tiny_ldcq(pointmaze_dataset)

    def stop_in_q(locals_, globals_) -> bool:
        return not (locals_["name"] == "q" and locals_["step"] == 6)

    agent.learn(save_path=tmp_path / "run", callback=stop_in_q, eval_freq=5, eval_episodes=1)
    first = json.loads((tmp_path / "run" / "best" / "eval.json").read_text())
    assert first["step"] == 5
    resumed = LDCQ.load(tmp_path / "run")
    resumed.learn(resume=True, save_path=tmp_path / "run", eval_freq=5, eval_episodes=1)
    assert resumed.stages_completed == ["skills", "prior", "q"]
    best = json.loads((tmp_path / "run" / "best" / "eval.json").read_text())
    # the tiny agent never reaches the sparse goal: step 10 ties step 5, which stays the best
    assert best == first or best["mean_return"] > first["mean_return"]
