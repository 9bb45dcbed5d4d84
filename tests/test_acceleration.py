"""learn(compile=True) and learn(precision="bf16"): opt-in speed-ups that train the same model."""

from __future__ import annotations

import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_OBS, TINY, chain_buffers, weights
from conftest import write_dataset

from latent_skills import LDCQ, LatentSkillAgent

SETTINGS = {**TINY, "horizon": 2, "skills_steps": 12, "prior_steps": 12, "q_steps": 12}


@pytest.fixture
def chain(minari_root):
    return write_dataset(
        "test/chain/acceleration-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
    )


def largest_difference(a: LatentSkillAgent, b: LatentSkillAgent) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()  # compiling in place keeps the checkpoint's names
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def test_compiled_training_matches_eager(chain):
    eager = LDCQ.from_dataset(chain, seed=1, **SETTINGS).learn(stages=["skills", "prior"])
    # aot_eager: dynamo's graphs and AOT autograd without inductor's C++ build (seconds, not a minute)
    compiled = LDCQ.from_dataset(chain, seed=1, **SETTINGS).learn(
        stages=["skills", "prior"], compile={"backend": "aot_eager"}
    )
    assert len(compiled.compiled_modules) >= 3  # the VAE's parts and the denoiser
    assert not eager.compiled_modules
    # the same computation, fused: equal up to float rounding
    assert largest_difference(eager, compiled) < 1e-4


def test_bf16_autocast_trains_a_different_but_close_model(chain):
    eager = LDCQ.from_dataset(chain, seed=1, **SETTINGS).learn(stages=["skills"])
    bf16 = LDCQ.from_dataset(chain, seed=1, **SETTINGS).learn(stages=["skills"], precision="bf16")
    assert all(v.dtype == torch.float32 for v in weights(bf16).values())  # weights stay float32
    difference = largest_difference(eager, bf16)
    assert 0 < difference < 0.05  # bf16 rounding moved the weights, a little


def test_unknown_settings_are_refused_before_training(chain):
    agent = LDCQ.from_dataset(chain, **SETTINGS)
    with pytest.raises(ValueError, match="precision must be one of"):
        agent.learn(precision="fp8")
    with pytest.raises(TypeError, match="compile must be True/False or a dict"):
        agent.learn(compile="yes")  # type: ignore[arg-type]
    assert agent.num_timesteps == 0
