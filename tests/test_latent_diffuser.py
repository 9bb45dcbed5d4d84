"""LatentDiffuser: the energy-guidance hook of ``diffusion.sample``, the contrastive energy loss, and an
agent on a toy where Q prefers one of the prior's two modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_OBS, TINY, LossRecorder
from conftest import write_dataset
from minari.data_collector import EpisodeBuffer
from torch import nn

from latent_skills import LDCQ, ConfigError
from latent_skills.agents.latent_diffuser import LatentDiffuser
from latent_skills.diffusion import DiffusionSchedule, sample
from latent_skills.nn import LatentEnergyModel, contrastive_energy_loss


# --------------------------------------------------------------------------- the sampling hook
class GaussianDenoiser(nn.Module):
    """The exact E[z0 | z_t] for z0 ~ N(cond, s² I)."""

    def __init__(self, schedule: DiffusionSchedule, latent_dim: int = 2, s: float = 0.5) -> None:
        super().__init__()
        self.latent_dim, self.cond_dim, self.s = latent_dim, 1, s
        self.ac = schedule.alphas_cumprod

    def gain(self, t: torch.Tensor) -> torch.Tensor:
        """d E[z0 | z_t] / d z_t."""
        a = self.ac[t][:, None]
        return a.sqrt() * self.s**2 / (a * self.s**2 + 1 - a)

    def forward(self, z_t, t, cond, keep_cond):
        m = cond.expand_as(z_t)
        return m + self.gain(t) * (z_t - self.ac[t][:, None].sqrt() * m)


@pytest.mark.parametrize(("solver", "steps"), [("ddpm", None), ("ddim", 100), ("dpm-solver++", 20)])
def test_energy_guidance_samples_the_tilted_distribution(solver, steps):
    """N(m, s²) · exp(a·z) = N(m + s² a, s²). Its exact intermediate energy log E[exp(a·z0) | z_t] has
    gradient gain_t · a; fed to the hook, every solver lands on the tilted Gaussian."""
    schedule = DiffusionSchedule(1000)
    net = GaussianDenoiser(schedule)
    a = torch.tensor([2.0, -1.0])
    cond = torch.tensor([[1.0], [-0.5]])

    def exact_energy_gradient(z_t, t, cond_rows):
        assert cond_rows.shape == (len(z_t), 1)  # each condition repeated n times, like the latents
        return net.gain(t) * a

    gen = torch.Generator().manual_seed(0)
    out = sample(
        net,
        schedule,
        cond,
        4000,
        solver=solver,
        steps=steps,
        generator=gen,
        energy_guidance=exact_energy_gradient,
    )
    np.testing.assert_allclose(out.mean(1), cond + 0.25 * a, atol=0.04)
    np.testing.assert_allclose(out.std(1), torch.full((2, 2), 0.5), atol=0.05)


@pytest.mark.parametrize("solver", ["ddpm", "ddim", "dpm-solver++"])
def test_zero_energy_gradient_changes_nothing(solver):
    schedule = DiffusionSchedule(50)
    net = GaussianDenoiser(schedule)
    cond = torch.tensor([[0.3]])
    steps = None if solver == "ddpm" else 8

    def run(**hook):
        gen = torch.Generator().manual_seed(3)
        return sample(net, schedule, cond, 16, solver=solver, steps=steps, generator=gen, clip=2.0, **hook)

    zero = run(energy_guidance=lambda z_t, t, c: torch.zeros_like(z_t))
    assert torch.equal(zero, run())
    with pytest.raises(TypeError, match="energy_guidance must be a callable"):
        run(energy_guidance=1.0)


def test_contrastive_energy_loss_is_minimal_at_beta_q():
    """Cross-entropy from softmax(βQ) to softmax(f): minimal (the targets' entropy) where f = βQ + c."""
    q = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, -1.0]])
    beta = 2.0
    targets = torch.softmax(beta * q, 1)
    entropy = -(targets * targets.log()).sum(1).mean()
    at_optimum = contrastive_energy_loss(beta * q + torch.tensor([[5.0], [-3.0]]), q, beta)
    torch.testing.assert_close(at_optimum, entropy)
    assert contrastive_energy_loss(torch.zeros_like(q), q, beta) > entropy + 0.1
    assert contrastive_energy_loss(-beta * q, q, beta) > contrastive_energy_loss(torch.zeros_like(q), q, beta)
    with pytest.raises(ValueError, match="K >= 2"):
        contrastive_energy_loss(q[:, :1], q[:, :1], beta)


def test_energy_model_reads_scaled_latents_and_guides_by_its_gradient():
    torch.manual_seed(0)
    rates = torch.linspace(1.0, 0.1, 10)
    model = LatentEnergyModel(3, 2, widths=(8, 8), signal_rates=rates)
    plain = LatentEnergyModel(3, 2, widths=(8, 8))
    plain.load_state_dict(model.state_dict())  # the rates are not saved: they come from the schedule
    assert "signal_rates" not in model.state_dict()
    z, t, cond = torch.randn(5, 3), torch.tensor([0, 3, 9, 9, 5]), torch.randn(5, 2)
    torch.testing.assert_close(model(z, t, cond), plain(rates[t][:, None] * z, t, cond))
    with torch.no_grad():
        grad = model.guidance(2.0)(z, t, cond)
    assert all(p.grad is None for p in model.parameters())  # only the latents are differentiated
    z_leaf = z.clone().requires_grad_(True)
    model(z_leaf, t, cond).sum().backward()
    torch.testing.assert_close(grad, 2.0 * z_leaf.grad)
    with pytest.raises(ValueError, match=r"cond must have shape \(5, 2\)"):
        model(z, t, None)


# --------------------------------------------------------------------------- the agent on a toy
def two_way_buffers(n_episodes: int = 20, length: int = 10) -> list[EpisodeBuffer]:
    """Half the episodes walk right (action +0.5, reward 1 per step), half walk left (action −0.5,
    reward 0), from the same start region: the prior at a state has two modes, Q prefers one."""
    rng = np.random.default_rng(0)
    buffers = []
    for e in range(n_episodes):
        direction = 1.0 if e % 2 == 0 else -1.0
        positions = rng.uniform(-1, 1) + 0.5 * direction * np.arange(length + 1)
        ends = np.zeros(length, bool)
        ends[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=positions[:, None],
                actions=np.full((length, 1), 0.5 * direction, np.float32),
                rewards=np.full(length, 1.0 if direction > 0 else 0.0),
                terminations=np.zeros(length, bool),
                truncations=ends,
            )
        )
    return buffers


SETTINGS = {
    **TINY,
    "horizon": 2,
    "gamma": 0.9,
    "skills_steps": 120,
    "prior_steps": 200,
    "q_steps": 250,
    "energy_steps": 300,
    "energy_samples": 8,
    "energy_batch_size": 32,
    "energy_widths": (32, 32),
    "energy_lr": 3e-3,
}
STATES = np.linspace(-1, 1, 16, dtype=np.float32)[:, None]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """An LDCQ trained on the toy, and a LatentDiffuser that reuses its skills, prior and Q and
    trains only its energy model (as the paper's variants share one VAE)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        dataset = write_dataset(
            "test/twoway/mixed-v0", two_way_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
        )
        ldcq = LDCQ.from_dataset(dataset, **{k: v for k, v in SETTINGS.items() if not k.startswith("energy")})
        ldcq.learn()
        agent = LatentDiffuser.from_dataset(dataset, **SETTINGS).reuse_stages(ldcq, ("skills", "prior", "q"))
        recorder = LossRecorder()
        agent.learn(stages=["energy"], callback=recorder)
        yield {"ldcq": ldcq, "agent": agent, "energy_loss": recorder.series("energy"), "dataset": dataset}


def min_q(agent: LatentDiffuser, latents: np.ndarray) -> np.ndarray:
    states = torch.as_tensor(STATES)[:, None].expand(-1, latents.shape[1], -1)
    with torch.no_grad():
        return agent.critic.min_q(states, torch.as_tensor(latents)).numpy()


def test_guided_samples_have_higher_q_than_unguided(toy):
    agent = toy["agent"]
    assert agent.stages_completed == ["skills", "prior", "q", "energy"]
    # below log K, what an energy that ignores the latents scores
    assert toy["energy_loss"][-50:].mean() < np.log(SETTINGS["energy_samples"]) - 0.05
    # the two modes' values: the posterior latents of right- and left-walking windows
    mean, _ = agent.posterior()
    windows = agent.data.windows
    right = windows.actions[np.arange(len(windows))][:, 0, 0] > 0
    with torch.no_grad():
        q = agent.critic.min_q(
            torch.as_tensor(np.asarray(windows.first_states, np.float32)), torch.as_tensor(mean)
        )
    q_right, q_left = q[right].mean().item(), q[~right].mean().item()
    assert q_right > q_left + 1.0
    middle = (q_right + q_left) / 2

    unguided = min_q(agent, agent.sample_latents(STATES, 64, seed=0, energy_guidance=0.0))
    guided = min_q(agent, agent.sample_latents(STATES, 64, seed=0))  # the config's scale, 1
    assert guided.mean() > unguided.mean() + 0.2 * (q_right - q_left)
    # the low-Q mode is left behind
    assert (unguided < middle).mean() > 0.15
    assert (guided < middle).mean() < (unguided < middle).mean() / 2


def test_zero_guidance_scale_gives_the_unguided_samples(toy):
    agent, ldcq = toy["agent"], toy["ldcq"]
    unguided = ldcq.sample_latents(STATES, 8, seed=4)  # the same prior, sampled by plain LDCQ
    np.testing.assert_array_equal(agent.sample_latents(STATES, 8, seed=4, energy_guidance=0.0), unguided)
    # through the hook itself: the trained energy model at scale 0 changes no bit
    cond = agent.policy.prior.condition(torch.as_tensor(STATES))

    def draw(**hook):
        gen = torch.Generator().manual_seed(4)
        return sample(
            agent.denoiser,
            agent.policy.prior.schedule,
            cond,
            8,
            solver="dpm-solver++",
            steps=4,
            generator=gen,
            **hook,
        )

    assert torch.equal(draw(energy_guidance=agent.energy.guidance(0.0)), draw())
    assert not torch.equal(draw(energy_guidance=agent.energy.guidance(1.0)), draw())


def test_acting_picks_guided_latents_deterministically(toy):
    agent = toy["agent"]
    actions, (z, _) = agent.predict(STATES, deterministic=True)
    again, (z_again, _) = agent.predict(STATES, deterministic=True)
    np.testing.assert_array_equal(actions, again)
    np.testing.assert_array_equal(z, z_again)
    assert actions.shape == (16, 1) and z.shape == (16, TINY["latent_dim"])
    # the chosen skills walk right, where the reward is
    assert (actions > 0).mean() > 0.9
    # a row's choice does not depend on the batch around it (up to float rounding)
    single, _ = agent.predict(STATES[3], deterministic=True)
    np.testing.assert_allclose(single, actions[3], atol=1e-5)


def test_guidance_scale_is_an_acting_field(toy):
    agent = toy["agent"]
    before = agent.config.energy_guidance
    try:
        agent.set_acting(energy_guidance=3.0, act_candidates=1)
        assert agent.config.energy_guidance == 3.0
        one = min_q(agent, agent.sample_latents(STATES, 16, seed=1))
        assert one.mean() > min_q(agent, agent.sample_latents(STATES, 16, seed=1, energy_guidance=0.0)).mean()
        with pytest.raises(ConfigError, match="energy_beta"):
            agent.set_acting(energy_beta=1.0)
    finally:
        agent.set_acting(energy_guidance=before, act_candidates=SETTINGS["act_candidates"])


def test_config_checks_and_presets():
    from latent_skills.config import LatentDiffuserConfig

    assert LatentDiffuser.stage_names() == ("images", "skills", "prior", "q", "energy")
    paper, quick = LatentDiffuserConfig.from_preset("paper"), LatentDiffuserConfig.from_preset("quick")
    assert (paper.energy_beta, paper.energy_samples, paper.act_candidates) == (3.0, 16, 1)
    assert quick.energy_steps < paper.energy_steps and quick.act_candidates == 500
    with pytest.raises(ConfigError, match="energy_samples must be ≥ 2"):
        LatentDiffuserConfig.from_dict({"energy_samples": 1})
    with pytest.raises(ConfigError, match="energy_guidance"):
        LatentDiffuserConfig.from_dict({"energy_guidance": -1.0})
    with pytest.raises(ConfigError, match="energy_beta"):
        LatentDiffuserConfig.from_dict({"energy_beta": float("nan")})


def test_energy_stage_needs_the_prior_and_critic(toy):
    fresh = LatentDiffuser.from_dataset(toy["dataset"], **SETTINGS).reuse_stages(toy["ldcq"], ("skills",))
    with pytest.raises(ValueError, match=r"stage 'energy' trains over \['prior', 'q'\]"):
        fresh.learn(stages=["energy"])


def test_spread_scaled_weights_do_not_depend_on_the_scale_of_q():
    energies, q = torch.randn(4, 8), torch.randn(4, 8)
    shifted = 25.0 * q + torch.randn(4, 1) * 10  # Q grown and shifted per state, as training does
    spread = contrastive_energy_loss(energies, q, 3.0, per_state_spread=True)
    torch.testing.assert_close(contrastive_energy_loss(energies, shifted, 3.0, per_state_spread=True), spread)
    # the raw weights turn one-hot as Q grows: the loss is then that of the best sample alone
    raw = contrastive_energy_loss(energies, shifted, 3.0)
    best = -torch.log_softmax(energies, 1).gather(1, shifted.argmax(1, keepdim=True)).mean()
    torch.testing.assert_close(raw, best, atol=1e-4, rtol=0)
