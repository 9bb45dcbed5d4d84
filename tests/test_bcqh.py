"""BCQH: LDCQ's Q-learning with candidates from the skill VAE's Gaussian prior, no diffusion stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_LENGTH, CHAIN_OBS, TINY, chain_buffers
from conftest import write_dataset

from latent_skills import LDCQ
from latent_skills.agents.bcqh import BCQH

GAMMA = 0.9
SETTINGS = {
    **TINY,
    "horizon": 2,
    "gamma": GAMMA,
    "skills_steps": 200,  # the Gaussian prior must fit the posteriors: its candidates are the Q targets
    "q_steps": 800,
    "q_polyak": 0.9,
    "q_batch_size": 64,
}
STATES = np.arange(CHAIN_LENGTH, dtype=np.float32)[:, None]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        yield write_dataset(
            "test/chain/right-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
        )


@pytest.fixture(scope="module")
def trained(chain):
    return BCQH.from_dataset(chain, **SETTINGS).learn()


def test_q_learning_with_gaussian_candidates_reaches_the_true_values(trained):
    assert trained.stage_names() == ("images", "skills", "q")  # images: skipped on flat observations
    assert trained.skipped_stages() == ["images"]
    assert trained.stages_completed == ["skills", "q"]
    assert "denoiser" not in trained.modules() and "latent_norm" not in trained.modules()
    latents = torch.as_tensor(trained.sample_latents(STATES, 4, seed=0))
    with torch.no_grad():
        q = trained.critic.min_q(torch.as_tensor(STATES)[:, None].expand(-1, 4, -1), latents).numpy()
    truth = GAMMA ** (CHAIN_LENGTH - 1 - np.arange(CHAIN_LENGTH))
    # max error 0.054-0.076 over seeds 0-2 (800 Q steps): the values, and their order along the chain
    np.testing.assert_allclose(q.mean(1), truth, atol=0.1)
    assert (np.diff(q.mean(1)) > 0).all()


def test_bcqhs_candidates_come_from_the_gaussian(trained, monkeypatch):
    """Every candidate source — the Q target's bank, acting, sample_latents — draws p(z | s0)."""
    # samples follow the prior's mean and std at each state
    z = trained.sample_latents(STATES[:3], 4000, seed=1)
    with torch.no_grad():
        mean, std = trained.vae.prior_params(torch.as_tensor(STATES[:3]))
    np.testing.assert_allclose(z.mean(1), mean.numpy(), atol=4 * std.max().item() / np.sqrt(4000) + 1e-4)
    np.testing.assert_allclose(z.std(1), std.numpy(), rtol=0.1)

    # move the Gaussian far from anything a diffusion prior could give (BCQH has none to call)
    assert "denoiser" not in trained.modules()
    head = trained.vae.prior
    saved = {name: trained.modules()[name].state_dict() for name in ("vae", "critic", "critic_target")}
    saved = {name: {k: v.clone() for k, v in state.items()} for name, state in saved.items()}
    try:
        with torch.no_grad():
            head.mean_head.weight.zero_()
            head.mean_head.bias.fill_(50.0)
            head.std_head.weight.zero_()
            head.std_head.bias.fill_(-20.0)  # softplus → std ≈ 1e-4
        np.testing.assert_allclose(trained.sample_latents(STATES, 3, seed=0), 50.0, atol=1e-2)
        _, (chosen, _) = trained.predict(STATES, deterministic=True)
        np.testing.assert_allclose(chosen, 50.0, atol=1e-2)
        _, (chosen, _) = trained.predict(STATES)
        np.testing.assert_allclose(chosen, 50.0, atol=1e-2)
        bank = trained.build_bank(progress_bar=False)
        np.testing.assert_allclose(bank.values.astype(np.float32), 50.0, atol=0.05)
        trained.learn(stages=["q"], total_timesteps=2)  # the Q stage's targets: its bank, as above
        np.testing.assert_allclose(trained.data.extras["bank"].values.astype(np.float32), 50.0, atol=0.05)
    finally:
        for name, state in saved.items():
            trained.modules()[name].load_state_dict(state)
    with pytest.raises(ValueError, match="Gaussian prior"):
        trained.sample_latents(STATES, 2, solver="ddim")


def test_online_candidates_and_deterministic_acting(chain):
    agent = BCQH.from_dataset(chain, **{**TINY, "horizon": 2, "candidate_source": "online", "q_steps": 20})
    agent.learn()
    assert agent.data.extras["bank"] is None
    twin = np.repeat(STATES[4:5], 2, axis=0)
    actions, (z, _) = agent.predict(twin, deterministic=True)
    # two identical rows of one batch: equal up to the BLAS kernel's rounding of each row
    np.testing.assert_allclose(actions[0], actions[1], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(z, agent.predict(twin, deterministic=True)[1][0])  # run to run: exact


def test_save_keeps_no_denoiser(trained, tmp_path):
    # the save/load round trip every agent keeps: tests/test_contract.py
    folder = trained.save(tmp_path / "bcqh")
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        prefixes = {key.split(".", 1)[0] for key in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    assert prefixes == {"vae", "critic", "critic_target"}


def test_a_checkpoint_that_carries_the_prior_fields_still_loads(trained, tmp_path):
    """BCQH's config used to carry LDCQ's prior, sampler and distillation fields, unread: a checkpoint
    saved then loads to the same agent (they are dropped)."""
    import json

    from latent_skills.checkpoint import seal_config
    from latent_skills.config import LDCQConfig

    folder = trained.save(tmp_path / "old")
    meta = json.loads((folder / "config.json").read_text())
    assert "sampler" not in meta["config"] and "denoiser_widths" not in meta["config"]
    unread = {k: v for k, v in LDCQConfig().to_dict().items() if k in BCQH.config_class.retired_fields}
    assert len(unread) == len(BCQH.config_class.retired_fields)
    meta["config"] = {**meta["config"], **unread}
    (folder / "config.json").write_text(json.dumps(seal_config(meta), indent=2))
    loaded = BCQH.load(folder)
    assert loaded.config == trained.config
    np.testing.assert_array_equal(
        loaded.predict(STATES, deterministic=True)[0], trained.predict(STATES, deterministic=True)[0]
    )


def test_reuses_ldcqs_skills_but_has_no_prior_to_share(chain):
    ldcq = LDCQ.from_dataset(chain, **{**TINY, "horizon": 2, "prior_steps": 5, "q_steps": 5}).learn()
    agent = BCQH.from_dataset(chain, **{**TINY, "horizon": 2, "seed": 1}).reuse_stages(ldcq)
    for key, value in ldcq.vae.state_dict().items():
        assert torch.equal(value, agent.vae.state_dict()[key]), key
    with pytest.raises(ValueError, match="stage 'prior' is not shared"):
        agent.reuse_stages(ldcq, ["prior"])
    agent.learn(stages=["q"])
    assert agent.stages_completed == ["skills", "q"]
