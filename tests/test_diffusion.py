"""Tests of the latent diffusion prior: schedule, loss, denoiser, guidance, the three solvers and the
distilled one-step student."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from latent_skills.diffusion import (
    SOLVERS,
    DiffusionSchedule,
    diffusion_loss,
    distillation_loss,
    distillation_targets,
    guided_prediction,
    sample,
    timestep_subsequence,
)
from latent_skills.nn.denoiser import LatentDenoiser, StudentDenoiser

T_SMALL = 50


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tensors are tiny: intra-op threads only add latency, and on a busy 2-core machine
    they stall (a 1000-step chain went from 0.3 s to 10 s). Run the module on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- analytic denoisers
class GaussianDenoiser(nn.Module):
    """The exact z0 predictor E[z0 | z_t] for data z0 ~ N(m, s² I) with m = cond (broadcast over
    the latent dims) for kept rows and m = 0 for unconditional rows."""

    def __init__(self, schedule: DiffusionSchedule, latent_dim: int = 2, s: float = 0.5) -> None:
        super().__init__()
        self.latent_dim, self.cond_dim, self.s = latent_dim, 1, s
        self.ac = schedule.alphas_cumprod
        self.calls: list[int] = []

    def forward(self, z_t, t, cond, keep_cond):
        self.calls.append(z_t.shape[0])
        m = torch.zeros_like(z_t) if cond is None else cond.expand_as(z_t).clone()
        if keep_cond is not None:
            m = torch.where(keep_cond[:, None], m, torch.zeros_like(m))
        a = self.ac[t][:, None]
        gain = a.sqrt() * self.s**2 / (a * self.s**2 + 1 - a)
        return m + gain * (z_t - a.sqrt() * m)


class ConstantDenoiser(nn.Module):
    """Predicts z0 = cond (broadcast) when conditioned and -0.5 when not, whatever z_t and t."""

    latent_dim, cond_dim = 3, 1

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, z_t, t, cond, keep_cond):
        self.calls.append(z_t.shape[0])
        c = cond.expand_as(z_t)
        return torch.where(keep_cond[:, None], c, torch.full_like(c, -0.5))


def _random_denoiser(seed: int = 0, **kwargs) -> LatentDenoiser:
    torch.manual_seed(seed)
    kwargs = {"widths": (32, 16, 8, 16, 32), "time_embed_dim": 16, "cond_embed_dim": 16, **kwargs}
    net = LatentDenoiser(4, 3, **kwargs)
    nn.init.normal_(net.out.weight, std=0.3)  # the output layer starts at zero; wake it up
    return net


# --------------------------------------------------------------------------- schedule
def test_schedule_constants():
    sch = DiffusionSchedule(200)
    assert sch.T == sch.num_timesteps == 200
    for name in DiffusionSchedule._TENSORS:
        value = getattr(sch, name)
        assert value.dtype == torch.float32 and value.shape == (200,), name
    ac = sch.alphas_cumprod_f64
    assert ac.dtype == torch.float64
    assert torch.all(ac[1:] < ac[:-1])
    # Scaled linear schedule: 1e-4·1000/T .. 0.02·1000/T, ending at (nearly) pure noise.
    assert sch.betas[0].item() == pytest.approx(5e-4)
    assert sch.betas[-1].item() == pytest.approx(0.1)
    assert ac[-1] < 1e-4
    assert DiffusionSchedule(T_SMALL).alphas_cumprod_f64[-1] < 1e-4
    assert sch.posterior_variance[0].item() == 0.0
    assert sch.alphas_cumprod_prev[0].item() == 1.0
    assert torch.allclose(sch.snr_values, (ac / (1 - ac)).float())
    t = torch.tensor([0, 10, 199])
    assert torch.equal(sch.snr(t), sch.snr_values[t])
    assert sch.to("cpu") is sch
    assert DiffusionSchedule(200) == sch and DiffusionSchedule(100) != sch


def test_q_sample_and_posterior():
    sch = DiffusionSchedule(T_SMALL)
    z0 = torch.full((20000, 1), 2.0)
    t = torch.full((20000,), 30)
    zt = sch.q_sample(z0, t, torch.randn(z0.shape, generator=_gen(0)))
    a = sch.alphas_cumprod_f64[30].item()
    assert zt.mean().item() == pytest.approx(2.0 * math.sqrt(a), abs=0.03)
    assert zt.std().item() == pytest.approx(math.sqrt(1 - a), abs=0.03)
    # The posterior mean at t = 0 is z0 itself (coefficients 1 and 0).
    z0 = torch.randn(5, 3, generator=_gen(1))
    zt = torch.randn(5, 3, generator=_gen(2))
    t0 = torch.zeros(5, dtype=torch.long)
    assert torch.allclose(sch.posterior_mean(z0, zt, t0), z0, atol=1e-6)


# --------------------------------------------------------------------------- denoiser
def test_denoiser_shapes_and_unconditional():
    net = LatentDenoiser(16, 4)  # paper defaults
    assert net.widths == (128, 32, 16, 8, 16, 32, 128)
    z = torch.randn(7, 16)
    t = torch.randint(0, 200, (7,))
    out = net(z, t, torch.randn(7, 4), torch.ones(7, dtype=torch.bool))
    assert out.shape == (7, 16)
    uncond = LatentDenoiser(5, 0, widths=(16, 8, 16), time_embed_dim=8)
    assert uncond.null_cond is None
    assert uncond(torch.randn(3, 5), torch.tensor([0, 1, 2])).shape == (3, 5)


def test_denoiser_mask_really_acts():
    """keep_cond=False rows ignore the state entirely and use the learned null embedding."""
    net = _random_denoiser()
    z, t = torch.randn(6, 4, generator=_gen(0)), torch.tensor([0, 3, 7, 10, 20, 49])
    c1, c2 = torch.randn(6, 3, generator=_gen(1)), torch.randn(6, 3, generator=_gen(2))
    keep, drop = torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool)
    with torch.no_grad():
        assert not torch.allclose(net(z, t, c1, keep), net(z, t, c2, keep))
        assert torch.equal(net(z, t, c1, drop), net(z, t, c2, drop))
        assert not torch.allclose(net(z, t, c1, keep), net(z, t, c1, drop))
        # Non-finite placeholders in dropped rows do not leak.
        assert torch.isfinite(net(z, t, torch.full_like(c1, float("nan")), drop)).all()
    # The null embedding is trained by the loss's condition dropout.
    loss = diffusion_loss(net, torch.randn(64, 4), torch.randn(64, 3), DiffusionSchedule(50))
    loss.backward()
    assert net.null_cond.grad is not None and net.null_cond.grad.abs().sum() > 0


def test_denoiser_inference_fast_path_is_exact():
    """The no-grad path embeds runs of repeated (t, cond) once; results must not change."""
    net = _random_denoiser()
    z = torch.randn(40, 4, generator=_gen(0))
    t = torch.full((40,), 17)
    cond = torch.randn(2, 3, generator=_gen(1)).repeat_interleave(20, dim=0)
    keep = torch.arange(40) % 7 != 0
    with_grad = net(z, t, cond, keep)
    with torch.no_grad():
        assert torch.allclose(net(z, t, cond, keep), with_grad, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- loss
def test_loss_is_min_snr_weighted_x0_mse():
    sch = DiffusionSchedule(T_SMALL)
    net = _random_denoiser()
    z0, cond = torch.randn(64, 4, generator=_gen(0)), torch.randn(64, 3, generator=_gen(1))
    loss = diffusion_loss(net, z0, cond, sch, snr_clip=5.0, cond_drop=0.3, generator=_gen(7))
    # Recompute by hand with the same draws, in the same order.
    g = _gen(7)
    t = torch.randint(0, T_SMALL, (64,), generator=g)
    noise = torch.randn(z0.shape, generator=g)
    keep = torch.rand((64,), generator=g) >= 0.3
    assert 0 < keep.sum() < 64
    pred = net(sch.q_sample(z0, t, noise), t, cond, keep)
    weight = torch.minimum(sch.snr(t), torch.tensor(5.0))
    expected = (weight * ((pred - z0) ** 2).mean(dim=1)).mean()
    assert torch.allclose(loss, expected, rtol=1e-5)
    assert weight.max() == 5.0 and weight.min() < 0.01  # the clip binds at low t
    again = diffusion_loss(net, z0, cond, sch, snr_clip=5.0, cond_drop=0.3, generator=_gen(7))
    assert torch.equal(loss, again)


# --------------------------------------------------------------------------- guidance
def test_guided_prediction_extremes_are_exact():
    net = _random_denoiser()
    z, t = torch.randn(8, 4, generator=_gen(0)), torch.randint(0, 50, (8,), generator=_gen(1))
    cond = torch.randn(8, 3, generator=_gen(2))
    with torch.no_grad():
        cond_pred = net(z, t, cond, torch.ones(8, dtype=torch.bool))
        uncond_pred = net(z, t, cond, torch.zeros(8, dtype=torch.bool))
        assert not torch.allclose(cond_pred, uncond_pred)
        assert torch.equal(guided_prediction(net, z, t, cond, 0.0), uncond_pred)
        assert torch.equal(guided_prediction(net, z, t, cond, 1.0), cond_pred)
        w3 = guided_prediction(net, z, t, cond, 3.0)
        assert torch.allclose(w3, uncond_pred + 3.0 * (cond_pred - uncond_pred), atol=1e-5)
        clipped = guided_prediction(net, z, t, cond, 3.0, clip=0.1)
        assert clipped.abs().max() <= 0.1


def test_guidance_through_sample_constant_denoiser():
    """With a denoiser predicting c (conditioned) or u = -0.5 (not), deterministic DDIM returns
    u + w (c - u) exactly; w = 1 costs one pass of B·n rows per step, other w one of 2·B·n."""
    sch = DiffusionSchedule(T_SMALL)
    cond = torch.tensor([[1.0], [2.0]])
    for w in (0.0, 1.0, 2.5):
        net = ConstantDenoiser()
        out = sample(net, sch, cond, 5, solver="ddim", steps=7, guidance=w, generator=_gen(0))
        assert out.shape == (2, 5, 3)
        expected = -0.5 + w * (cond + 0.5)
        assert torch.allclose(out, expected[:, :, None].expand(2, 5, 3), atol=1e-6)
        assert net.calls == [10 if w in (0.0, 1.0) else 20] * 7


def test_guidance_through_sample_real_denoiser():
    net = _random_denoiser()
    sch = DiffusionSchedule(T_SMALL)
    c1, c2 = torch.randn(1, 3, generator=_gen(1)), torch.randn(1, 3, generator=_gen(2))

    def run(cond, w):
        return sample(net, sch, cond, 16, solver="ddim", steps=10, guidance=w, generator=_gen(3))

    assert torch.equal(run(c1, 0.0), run(c2, 0.0))  # w = 0: the state is ignored
    assert not torch.allclose(run(c1, 1.0), run(c2, 1.0))
    assert not torch.allclose(run(c1, 1.0), run(c1, 0.0))
    assert torch.equal(run(c1, 1.0), run(c1, 1.0))  # deterministic given the generator


# --------------------------------------------------------------------------- solvers, analytic
@pytest.mark.parametrize(
    ("solver", "steps", "eta"),
    [
        ("ddpm", None, 0.0),
        ("ddim", 1000, 0.0),
        ("ddim", 250, 0.0),
        ("dpm-solver++", 10, 0.0),
        ("dpm-solver++", 20, 0.0),
    ],
)
def test_solvers_recover_gaussian(solver, steps, eta):
    """With the exact denoiser of N(m, s²) (fine schedule, T = 1000) every solver recovers m and
    s; DPM-Solver++(2M) does so in 10 steps."""
    sch = DiffusionSchedule(1000)
    net = GaussianDenoiser(sch, latent_dim=2, s=0.5)
    cond = torch.tensor([[1.5], [-1.0]])
    out = sample(net, sch, cond, 4000, solver=solver, steps=steps, eta=eta, generator=_gen(0))
    assert out.shape == (2, 4000, 2)
    assert torch.allclose(out.mean(dim=1), cond.expand(2, 2), atol=0.03)
    assert torch.allclose(out.std(dim=1), torch.full((2, 2), 0.5), atol=0.03)
    # All B·n chains in one forward per step.
    assert net.calls == [8000] * (steps or 1000)


def test_dpm_solver_logsnr_grid_beats_time_grid():
    """On a coarse schedule (T = 50) DPM-Solver++'s default log-SNR grid keeps the spread within
    a few percent at 10 steps, where the time-uniform grid overshoots it."""
    sch = DiffusionSchedule(T_SMALL)
    net = GaussianDenoiser(sch, latent_dim=1, s=0.5)
    cond = torch.zeros(1, 1)
    std = {
        spacing: sample(
            net, sch, cond, 20000, solver="dpm-solver++", spacing=spacing, generator=_gen(0)
        ).std()
        for spacing in ("logsnr", "time")
    }
    assert abs(std["logsnr"].item() - 0.5) < 0.02
    assert std["time"].item() > 0.53


def test_ddim_eta1_full_steps_matches_ddpm():
    sch = DiffusionSchedule(T_SMALL)
    net = GaussianDenoiser(sch, latent_dim=1, s=0.3)
    cond = torch.tensor([[0.7]])
    # DDIM's η = 1 is DDPM with the posterior variance β̃_t
    ddpm = sample(
        net, sch, cond, 20000, solver="ddpm", ddpm_variance="posterior", generator=_gen(0)
    ).flatten()
    ddim = sample(net, sch, cond, 20000, solver="ddim", steps=T_SMALL, eta=1.0, generator=_gen(1)).flatten()
    assert ddim.mean().item() == pytest.approx(ddpm.mean().item(), abs=0.01)
    assert ddim.std().item() == pytest.approx(ddpm.std().item(), abs=0.01)
    # The two updates are the same Markov chain: with the same noise they give the same path.
    same_noise = sample(
        net, sch, cond, 20000, solver="ddim", steps=T_SMALL, eta=1.0, generator=_gen(0)
    ).flatten()
    assert torch.allclose(same_noise, ddpm, atol=1e-4)
    # η = 0 is a different (deterministic) sampler of the same distribution.
    ode = sample(net, sch, cond, 20000, solver="ddim", steps=T_SMALL, generator=_gen(0))
    assert not torch.allclose(ode.flatten(), ddpm, atol=1e-2)


def test_ddpm_variance_beta_is_the_papers_and_recovers_the_data_spread():
    # with the exact denoiser of N(0.7, 0.3²), T = 200: σ_t² = β_t (Algorithm 1) gives the data's
    # spread, the posterior's β̃_t a narrower one (0.28)
    sch = DiffusionSchedule(200)
    net, cond = GaussianDenoiser(sch, latent_dim=1, s=0.3), torch.tensor([[0.7]])
    beta = sample(net, sch, cond, 40000, solver="ddpm", generator=_gen(0)).flatten()
    posterior = sample(net, sch, cond, 40000, solver="ddpm", ddpm_variance="posterior", generator=_gen(0))
    assert beta.std().item() == pytest.approx(0.3, abs=0.01)
    assert posterior.std().item() < 0.29
    with pytest.raises(ValueError, match="ddpm_variance must be one of"):
        sample(net, sch, cond, 2, solver="ddpm", ddpm_variance="wide")


def test_extra_steps_and_clip():
    sch = DiffusionSchedule(T_SMALL)
    net = GaussianDenoiser(sch, latent_dim=1, s=0.5)
    cond = torch.tensor([[0.0]])
    base = sample(net, sch, cond, 64, solver="ddpm", generator=_gen(0))
    net.calls.clear()
    extra = sample(net, sch, cond, 64, solver="ddpm", extra_steps=10, generator=_gen(0))
    assert len(net.calls) == T_SMALL + 10
    # Each extra step is z <- E[z0 | z_t=0 = z], a slight contraction towards the mean.
    assert extra.abs().sum() < base.abs().sum()
    clipped = sample(net, sch, cond, 64, solver="dpm-solver++", clip=0.2, generator=_gen(0))
    assert clipped.abs().max() <= 0.2


def test_timestep_subsequence():
    sch = DiffusionSchedule(200)
    assert timestep_subsequence(50, 50) == list(range(49, -1, -1))
    assert timestep_subsequence(200, 1) == [199]
    for spacing in ("time", "logsnr"):
        assert timestep_subsequence(sch, 200, spacing) == list(range(199, -1, -1))
        for steps in (2, 10, 20, 150):
            ts = timestep_subsequence(sch, steps, spacing)
            assert ts[0] == 199 and ts[-1] == 0 and len(ts) == steps
            assert all(a > b for a, b in zip(ts, ts[1:], strict=False))
    # log-SNR spacing spends more of its steps near t = 0 than the time-uniform one.
    assert timestep_subsequence(sch, 10, "logsnr")[-3] < timestep_subsequence(sch, 10)[-3]
    with pytest.raises(ValueError, match="unknown spacing"):
        timestep_subsequence(sch, 10, "karras")
    with pytest.raises(TypeError, match="needs the DiffusionSchedule"):
        timestep_subsequence(200, 10, "logsnr")


# --------------------------------------------------------------------------- trained prior
def _toy_batch(b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """cond 0: z at ±1 with equal probability; cond ±1: z at ±1. Std 0.05 around the modes."""
    cond = torch.randint(-1, 2, (b, 1), generator=g).float()
    sign = torch.where(torch.rand(b, 1, generator=g) < 0.5, -1.0, 1.0)
    z = torch.where(cond == 0, sign, cond) + 0.05 * torch.randn(b, 1, generator=g)
    return z, cond


@pytest.fixture(scope="module")
def trained_prior():
    torch.manual_seed(0)
    g = _gen(0)
    sch = DiffusionSchedule(T_SMALL)
    net = LatentDenoiser(1, 1, widths=(64, 32, 16, 32, 64), time_embed_dim=32, cond_embed_dim=32)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, foreach=True)
    losses = []
    for _ in range(1000):
        z, cond = _toy_batch(256, g)
        loss = diffusion_loss(net, z, cond, sch, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, sch, losses


def test_training_loss_falls(trained_prior):
    _, _, losses = trained_prior
    first, last = sum(losses[:50]) / 50, sum(losses[-50:]) / 50
    assert last < 0.5 * first


@pytest.mark.parametrize(("solver", "steps"), [("ddpm", None), ("ddim", 10), ("dpm-solver++", 10)])
def test_trained_prior_is_bimodal(trained_prior, solver, steps):
    """cond 0: both modes in roughly equal proportion, little mass in between (not Gaussian)."""
    net, sch, _ = trained_prior
    z = sample(net, sch, torch.zeros(1, 1), 1000, solver=solver, steps=steps, generator=_gen(1))
    z = z.flatten()
    assert 0.4 < (z > 0).float().mean().item() < 0.6
    assert (z.abs() < 0.5).float().mean().item() < 0.05
    assert ((z.abs() - 1).abs() < 0.25).float().mean().item() > 0.9


@pytest.mark.parametrize(("solver", "steps"), [("ddpm", None), ("dpm-solver++", 10)])
def test_trained_prior_separates_conditions(trained_prior, solver, steps):
    net, sch, _ = trained_prior
    cond = torch.tensor([[1.0], [-1.0]])
    z = sample(net, sch, cond, 500, solver=solver, steps=steps, generator=_gen(2))[..., 0]
    assert (z[0] > 0.5).float().mean().item() > 0.97
    assert (z[1] < -0.5).float().mean().item() > 0.97
    assert z[0].mean().item() == pytest.approx(1.0, abs=0.15)
    assert z[1].mean().item() == pytest.approx(-1.0, abs=0.15)


def test_trained_guidance_moves_between_marginal_and_conditional(trained_prior):
    """w = 0 samples the learned unconditional marginal (both modes); w = 1 only cond's mode."""
    net, sch, _ = trained_prior
    cond = torch.ones(1, 1)
    for solver in SOLVERS:
        uncond = sample(net, sch, cond, 1000, solver=solver, guidance=0.0, generator=_gen(3))
        condl = sample(net, sch, cond, 1000, solver=solver, guidance=1.0, generator=_gen(3))
        assert 0.3 < (uncond < 0).float().mean().item() < 0.7, solver
        assert (condl < 0).float().mean().item() < 0.03, solver


def test_sampling_is_deterministic(trained_prior):
    net, sch, _ = trained_prior
    cond = torch.zeros(2, 1)
    for solver in SOLVERS:
        a = sample(net, sch, cond, 8, solver=solver, guidance=1.5, generator=_gen(5))
        b = sample(net, sch, cond, 8, solver=solver, guidance=1.5, generator=_gen(5))
        assert torch.equal(a, b), solver


# --------------------------------------------------------------------------- argument errors
def test_sample_argument_errors():
    sch = DiffusionSchedule(T_SMALL)
    net = _random_denoiser()
    cond = torch.zeros(1, 3)
    with pytest.raises(ValueError, match=r"unknown solver 'euler'.*ddpm, ddim, dpm-solver\+\+"):
        sample(net, sch, cond, 4, solver="euler")
    with pytest.raises(ValueError, match="ddpm.*all T=50"):
        sample(net, sch, cond, 4, solver="ddpm", steps=10)
    sample(net, sch, cond, 1, solver="ddpm", steps=T_SMALL)  # steps = T is allowed
    for solver in ("ddim", "dpm-solver++"):
        for bad in (0, T_SMALL + 1):
            with pytest.raises(ValueError, match=r"steps must be in \[1, T=50\]"):
                sample(net, sch, cond, 4, solver=solver, steps=bad)
    with pytest.raises(TypeError, match="steps must be an int"):
        sample(net, sch, cond, 4, solver="ddim", steps=2.5)
    with pytest.raises(ValueError, match="eta applies only to solver='ddim'"):
        sample(net, sch, cond, 4, solver="ddpm", eta=1.0)
    with pytest.raises(ValueError, match="eta"):
        sample(net, sch, cond, 4, solver="ddim", eta=-0.1)
    with pytest.raises(ValueError, match="extra_steps"):
        sample(net, sch, cond, 4, extra_steps=-1)
    with pytest.raises(ValueError, match="n .*positive"):
        sample(net, sch, cond, 0)
    with pytest.raises(ValueError, match="guidance"):
        sample(net, sch, cond, 4, guidance=float("nan"))
    with pytest.raises(ValueError, match="clip"):
        sample(net, sch, cond, 4, clip=0.0)
    with pytest.raises(ValueError, match="unknown spacing 'cosine'.*time, logsnr"):
        sample(net, sch, cond, 4, solver="ddim", spacing="cosine")
    with pytest.raises(ValueError, match="spacing applies only"):
        sample(net, sch, cond, 4, solver="ddpm", spacing="time")
    with pytest.raises(ValueError, match="cond_dim=3"):
        sample(net, sch, torch.zeros(1, 2), 4)
    with pytest.raises(ValueError, match=r"shape \(B, C\)"):
        sample(net, sch, torch.zeros(3), 4)
    with pytest.raises(ValueError, match="conditional"):
        sample(net, sch, None, 4)
    with pytest.raises(TypeError, match="DiffusionSchedule"):
        sample(net, "linear", cond, 4)
    uncond = LatentDenoiser(2, 0, widths=(8,), time_embed_dim=4)
    assert sample(uncond, sch, None, 3, solver="ddim", steps=3).shape == (1, 3, 2)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="num_timesteps"):
        DiffusionSchedule(1)
    with pytest.raises(ValueError, match="beta_start"):
        DiffusionSchedule(10, beta_start=0.1, beta_end=0.01)
    sch = DiffusionSchedule(10)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        sch.q_sample(torch.zeros(2, 1), torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="integer"):
        sch.snr(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="odd-length"):
        LatentDenoiser(4, 2, widths=(8, 8))
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        LatentDenoiser(4, 2, activation="swishy")
    net = _random_denoiser()
    with pytest.raises(ValueError, match="pass cond"):
        net(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"cond must have shape \(2, 3\)"):
        net(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="cond_drop"):
        diffusion_loss(net, torch.zeros(2, 4), torch.zeros(2, 3), sch, cond_drop=1.5)
    with pytest.raises(ValueError, match="cond must have shape"):
        diffusion_loss(net, torch.zeros(2, 4), torch.zeros(3, 3), sch)


def test_a_partial_null_condition_replaces_the_null_token():
    torch.manual_seed(0)
    sch = DiffusionSchedule(T_SMALL)
    net = LatentDenoiser(2, 3, widths=(8, 4, 8))
    z, t = torch.randn(5, 2), torch.randint(0, T_SMALL, (5,))
    cond, null = torch.randn(5, 3), torch.randn(5, 3)
    keep = torch.ones(5, dtype=torch.bool)
    with torch.no_grad():
        c, u = net(z, t, cond, keep), net(z, t, null, keep)
        out = guided_prediction(net, z, t, cond, 2.5, null_cond=null)
    torch.testing.assert_close(out, u + 2.5 * (c - u))
    # training: a dropped row sees the partial condition, kept, not the null token
    seen = []
    net.register_forward_pre_hook(lambda module, args: seen.append((args[2].clone(), args[3].clone())))
    diffusion_loss(net, torch.randn(5, 2), cond, sch, cond_drop=1.0, generator=_gen(0), null_cond=null)
    torch.testing.assert_close(seen[-1][0], null)
    assert seen[-1][1].all()


# --------------------------------------------------------------------------- distilled sampler
def _three_mode_batch(b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A junction: cond 0 leads to z at −1, 0 or +1; cond ±1 to its own mode. Std 0.05."""
    cond = torch.randint(-1, 2, (b, 1), generator=g).float()
    mode = torch.randint(-1, 2, (b, 1), generator=g).float()
    return torch.where(cond == 0, mode, cond) + 0.05 * torch.randn(b, 1, generator=g), cond


def _mode_shares(z: torch.Tensor) -> tuple[float, list[float]]:
    near = (z.flatten()[:, None] - torch.tensor([-1.0, 0.0, 1.0])).abs() < 0.25
    return near.any(1).float().mean().item(), near.float().mean(0).tolist()


def test_a_one_step_student_keeps_the_teachers_modes():
    """Distilled into one denoiser pass, the prior still lands in the data's support at a three-way
    junction, in the teacher's proportions, and keeps the conditions apart."""
    torch.manual_seed(0)
    g = _gen(0)
    sch = DiffusionSchedule(T_SMALL)
    widths = (64, 32, 16, 32, 64)
    teacher = LatentDenoiser(1, 1, widths=widths, time_embed_dim=32, cond_embed_dim=32)
    opt = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    for _ in range(800):
        z, cond = _three_mode_batch(256, g)
        loss = diffusion_loss(teacher, z, cond, sch, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    student = StudentDenoiser(1, 1, widths)
    student.net = copy.deepcopy(teacher)
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    first = None
    for _ in range(150):
        cond = torch.randint(-1, 2, (64, 1), generator=g).float()
        noise = torch.randn(64, 1, generator=g)
        target = distillation_targets(teacher, sch, cond, noise, solver="dpm-solver++", steps=10)
        loss = distillation_loss(student, sch, cond, noise, target, student_steps=1)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    taught_in, taught = _mode_shares(
        sample(teacher, sch, torch.zeros(1, 1), 2000, solver="dpm-solver++", generator=_gen(1))
    )
    one_in, one = _mode_shares(
        sample(student, sch, torch.zeros(1, 1), 2000, solver="ddim", steps=1, generator=_gen(1))
    )
    assert taught_in > 0.95 and one_in > 0.95
    assert min(one) > 0.1  # every branch of the junction is still proposed
    assert max(abs(a - b) for a, b in zip(one, taught, strict=True)) < 0.05
    _, right = _mode_shares(
        sample(student, sch, torch.ones(1, 1), 500, solver="ddim", steps=1, generator=_gen(2))
    )
    assert right[2] > 0.97
