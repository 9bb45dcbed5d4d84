"""The distilled few-step sampler in an agent: the optional "distill" stage, what samples through the
student, and what a checkpoint keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from agent_helpers import TINY, LossRecorder, weights
from conftest import copy_umaze

from latent_skills import LDCQ

DISTILL = {**TINY, "distill_steps": 80, "distill_lr": 3e-3, "candidate_source": "bank"}


@pytest.fixture(scope="module")
def distilled_once(umaze_source, tmp_path_factory):
    """An LDCQ with a distilled student on the UMaze dataset (conftest's ``umaze``), trained once, in a
    module-wide store that stays set while the tests run (a loaded copy finds its training data there)."""
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        recorder = LossRecorder()
        agent = LDCQ.from_dataset(copy_umaze(umaze_source, root), **DISTILL).learn(callback=recorder)
        yield agent, recorder


@pytest.fixture
def distilled(distilled_once):
    """The module's distilled agent; what a test sets with set_acting is undone after it."""
    agent, recorder = distilled_once
    distilled_for = agent.config.distilled_for
    yield agent, recorder
    agent.set_acting(distilled_for=distilled_for)


def states_of(agent: LDCQ, n: int = 32) -> torch.Tensor:
    """Flat states of the dataset (what the prior conditions on)."""
    return torch.as_tensor(np.asarray(agent.data.windows.episodes.observations[:n], np.float32))


def latents(agent: LDCQ, states: torch.Tensor, n: int, seed: int, **sampler) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return agent.policy.prior.with_sampler(**sampler).sample(states, n, generator=generator).numpy()


def test_the_student_learns_the_teachers_samples_and_then_samples_for_the_agent(distilled):
    agent, recorder = distilled
    assert agent.stages_completed == ["skills", "prior", "distill", "q"]
    loss = recorder.series("distill")
    assert len(loss) == 80 and loss[-10:].mean() < 0.5 * loss[:10].mean()
    assert agent.student.is_ready
    s = states_of(agent)
    default = latents(agent, s, 16, 0)
    student = latents(agent.set_acting(distilled_for="all"), s, 16, 0)
    teacher = latents(agent.set_acting(distilled_for="none"), s, 16, 0)
    solver = latents(agent, s, 16, 0, solver=agent.config.sampler)
    np.testing.assert_array_equal(default, student)
    np.testing.assert_array_equal(teacher, solver)  # off: the prior's own solver
    assert not np.array_equal(student, teacher)
    # from the same noise the student lands near the teacher's latent, far nearer than another draw
    paired = np.sqrt(np.mean((student - teacher) ** 2))
    unpaired = np.sqrt(np.mean((student - latents(agent, s, 16, 1)) ** 2))  # the teacher, other noise
    assert paired < 0.5 * unpaired
    # the bank was sampled by the student: its spread is the teacher's
    bank = agent.data.extras["bank"].values.astype(np.float32)
    assert bank.std() == pytest.approx(teacher.std(), rel=0.25)


def test_zero_steps_builds_no_student_and_leaves_the_other_stages_streams_alone(umaze, distilled):
    plain = LDCQ.from_dataset(umaze, **{**DISTILL, "distill_steps": 0}).learn()
    assert "student" not in plain.modules() and plain.stages_completed == ["skills", "prior", "q"]
    with pytest.raises(ValueError, match="distill_steps=0"):
        plain.learn(stages=["distill"])
    agent, _ = distilled
    ours, theirs = weights(agent), weights(plain)
    for name in ("vae.", "denoiser.", "latent_norm."):  # the stages before it draw the same batches
        keys = [k for k in theirs if k.startswith(name)]
        assert keys and all(torch.equal(ours[k], theirs[k]) for k in keys), name


def test_a_checkpoint_keeps_the_student_and_retraining_the_prior_retires_it(distilled, tmp_path):
    agent, _ = distilled
    agent.save(tmp_path / "a")
    loaded = LDCQ.load(tmp_path / "a")
    s = states_of(agent)
    assert loaded.student.is_ready
    np.testing.assert_array_equal(latents(loaded, s, 8, 2), latents(agent, s, 8, 2))
    loaded.learn(stages=["prior"])
    assert not loaded.student.is_ready and loaded.stages_completed == ["skills", "prior"]
    np.testing.assert_array_equal(
        latents(loaded, s, 8, 2), latents(loaded, s, 8, 2, solver=agent.config.sampler)
    )


def test_distilling_a_stochastic_solver_is_refused(umaze):
    with pytest.raises(ValueError, match="sampler='ddpm'"):
        LDCQ.from_dataset(umaze, **{**DISTILL, "sampler": "ddpm"})


def test_distilled_for_chooses_what_samples_through_the_student(distilled):
    agent, _ = distilled
    s = states_of(agent)
    agent.set_acting(distilled_for="targets")
    acting = latents(agent, s, 8, 3)
    targets = agent.policy.prior.for_targets.sample(s, 8, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(acting, latents(agent, s, 8, 3, solver=agent.config.sampler))  # the teacher
    student = latents(agent.set_acting(distilled_for="all"), s, 8, 3)
    np.testing.assert_array_equal(targets, student)
    agent.set_acting(distilled_for="acting")  # the other way round
    np.testing.assert_array_equal(latents(agent, s, 8, 3), student)
    teacher = agent.policy.prior.for_targets.sample(s, 8, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(teacher, acting)
