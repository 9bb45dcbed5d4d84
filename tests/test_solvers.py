"""The solvers' registry (the only list of valid solver names) and sampling settings bound to a prior."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from agent_helpers import TINY

from latent_skills import BCQH, LDCQ, LDCQConfig
from latent_skills.config import FIELD_CHOICES, ConfigError
from latent_skills.diffusion import (
    SOLVERS,
    DiffusionSchedule,
    Sampler,
    Solver,
    make_solver,
    register_solver,
    sample,
)
from latent_skills.diffusion.solvers import DDIM, DDPM, DPMSolverPP
from latent_skills.nn import LatentDenoiser


def _denoiser() -> LatentDenoiser:
    torch.manual_seed(0)
    return LatentDenoiser(2, 3, widths=(8, 4, 8), time_embed_dim=4)


def test_the_registry_holds_one_class_per_solver_and_the_config_reads_it():
    assert dict(SOLVERS) == {"ddpm": DDPM, "ddim": DDIM, "dpm-solver++": DPMSolverPP}
    assert all(issubclass(cls, Solver) and SOLVERS[name].name == name for name, cls in SOLVERS.items())
    assert FIELD_CHOICES["sampler"] == tuple(SOLVERS)
    with pytest.raises(ValueError, match="already registered"):
        register_solver(DDIM)


def test_a_registered_solver_is_a_valid_sampler_everywhere(monkeypatch):
    class OneStep(Solver):
        """The first z0 prediction, from pure noise (a deterministic one-step solver)."""

        name = "one-step"

        def run(self, predict, schedule, z, noise):
            return predict(z, schedule.num_timesteps - 1)

    with pytest.raises(ConfigError, match="sampler must be one of"):
        LDCQConfig.from_dict({"sampler": "one-step"})
    monkeypatch.setitem(SOLVERS, "one-step", OneStep)
    assert LDCQConfig.from_dict({"sampler": "one-step"}).sampler == "one-step"
    net, schedule, cond = _denoiser(), DiffusionSchedule(10), torch.zeros(2, 3)
    z = sample(net, schedule, cond, 4, solver="one-step", generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 4, 2) and torch.isfinite(z).all()


def test_a_bound_sampler_samples_as_the_named_solver():
    net, schedule, cond = _denoiser(), DiffusionSchedule(20), torch.randn(3, 3)
    for name, steps in (("ddpm", None), ("ddim", 5), ("dpm-solver++", 4)):
        by_name = sample(
            net,
            schedule,
            cond,
            6,
            solver=name,
            steps=steps,
            guidance=1.5,
            generator=torch.Generator().manual_seed(1),
        )
        bound = Sampler(make_solver(name, steps), guidance=1.5)
        again = bound(net, schedule, cond, 6, generator=torch.Generator().manual_seed(1))
        assert torch.equal(by_name, again), name
    with pytest.raises(ValueError, match="pass steps, eta and spacing to the Solver"):
        sample(net, schedule, cond, 2, solver=DDIM(5), steps=3)
    assert make_solver("ddim", 5, eta=0.5).eta == 0.5 and math.isclose(make_solver("ddpm").num_steps(20), 20)


def test_the_prior_binds_its_settings_and_with_sampler_replaces_them(pointmaze_dataset):
    agent = LDCQ.from_dataset(pointmaze_dataset, preset="quick", **TINY)
    prior = agent.policy.prior
    assert (
        isinstance(prior.sampler.solver, DPMSolverPP) and prior.sampler.solver.steps == TINY["sampler_steps"]
    )
    assert prior.with_sampler() is prior and prior.with_sampler(solver=None) is prior
    other = prior.with_sampler(solver="ddpm", guidance=0.5)
    assert isinstance(other.sampler.solver, DDPM) and other.sampler.guidance == 0.5
    assert prior.sampler.guidance == 1.0  # the agent's prior is unchanged
    states = torch.as_tensor(np.zeros((2, agent.spec.state_dim), np.float32))
    z = other.sample(states, 3, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 3, TINY["latent_dim"])
    with pytest.raises(TypeError, match="unknown sampler settings"):
        prior.with_sampler(stepz=3)
    with pytest.raises(ValueError, match="no energy model"):
        prior.with_sampler(energy_guidance=1.0)
    assert agent.policy.prior.sampler_record() == {
        "sampler": "dpm-solver++",
        "sampler_steps": TINY["sampler_steps"],
    }
    agent.set_acting(sampler="ddim", sampler_steps=3)  # a new prior, bound to the new settings
    assert (
        isinstance(agent.policy.prior.sampler.solver, DDIM) and agent.policy.prior.sampler.solver.steps == 3
    )


def test_the_vae_prior_has_no_sampler_settings(pointmaze_dataset):
    agent = BCQH.from_dataset(pointmaze_dataset, preset="quick", **TINY)  # TINY's prior fields: dropped
    assert "sampler" not in agent.config.field_names() and agent.policy.prior.sampler_record() == {}
    assert agent.policy.prior.with_sampler(steps=None) is agent.policy.prior
    with pytest.raises(ValueError, match="Gaussian prior"):
        agent.policy.prior.with_sampler(steps=3)
