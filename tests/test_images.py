"""Image observations end to end (issue 23, the LDCQ paper's App. C): the image β-VAE trains first on
frames read from disk a batch at a time, every frame is encoded once, and all five agents learn,
act, save, load and go through the Hub on the encoded states; images they cannot take are refused.

One tiny pixel PointMaze dataset (16-px frames beside the goal vectors) is made per module."""

from __future__ import annotations

import tracemalloc

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import TINY, LossRecorder
from conftest import observation_buffers, write_dataset
from stable_baselines3.common.evaluation import evaluate_policy
from test_hub import TOKEN, hub  # noqa: F401  (the loopback Hub fixture)

from latent_skills import BCQH, LDCP, LDCQ, LDGC, LatentDiffuser, LatentSkillAgent, SkillEnv
from latent_skills.data import ObservationFlattener
from latent_skills.data.makers import collect_pointmaze
from latent_skills.nn.image_encoder import FEATURES, ImageVAE

SIZE, STEPS = 16, 1500
IMAGES = {"image_steps": 60, "image_batch_size": 32, "image_lr": 2e-3}
SETTINGS = {**TINY, **IMAGES, "skills_steps": 20, "prior_steps": 20, "q_steps": 20}


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        dataset = collect_pointmaze(
            "umaze",
            steps=STEPS,
            seed=0,
            ref_episodes=1,
            progress=False,
            task="single-goal",
            observation="pixels",
            image_size=SIZE,
            keys=["achieved_goal", "desired_goal"],
        )
        yield dataset


@pytest.fixture(scope="module")
def trained(pixels):
    """A tiny LDCQ trained from the frames, with every step's logged values."""
    recorder = LossRecorder()
    agent = LDCQ.from_dataset(pixels, **SETTINGS).learn(callback=recorder)
    return agent, recorder


def frames_of(env: gym.Env, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` observations of ``env`` along random actions, stacked as a batch."""
    obs, _ = env.reset(seed=seed)
    seen = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(env.action_space.sample())
        seen.append(obs)
    return {key: np.stack([o[key] for o in seen]) for key in seen[0]}


def test_the_encoder_trains_first_and_the_stages_learn_from_32_numbers_per_frame(trained, pixels):
    agent, recorder = trained
    assert agent.spec.encoder_kinds == ("flat", "flat", "image")  # sorted keys: goals, then pixels
    assert agent.stages_completed == ["images", "skills", "prior", "q"]
    mse = recorder.series("images", "mse")
    assert len(mse) == IMAGES["image_steps"] and mse[-10:].mean() < 0.5 * mse[:10].mean()
    states = agent.data.windows.episodes.observations
    assert states.shape == (STEPS + pixels.total_episodes, 2 + 2 + FEATURES) and states.dtype == np.float32
    assert agent.vae.state_dim == 2 + 2 + FEATURES
    # vector parts stay as they are, where the states' layout says
    layout = agent.spec.state_layout
    episode = next(iter(pixels.iterate_episodes()))
    goals = states[: len(episode.rewards) + 1, layout.slice_of("desired_goal")]
    np.testing.assert_allclose(goals[1:], episode.observations["desired_goal"][1:], rtol=1e-6)
    # the image part's states are the trained encoder's posterior means of the frames
    encoder = agent.observation_encoder.parts[2]
    frames = torch.as_tensor(episode.observations["pixels"][:5])
    np.testing.assert_allclose(
        states[:5, layout.slice_of("pixels")], encoder(frames).detach().numpy(), atol=1e-5
    )
    assert np.isfinite(states).all() and states[:, layout.slice_of("pixels")].std(0).min() > 0


def test_predict_takes_images_single_and_batched_and_the_sb3_tools_run_on_the_pixel_env(trained):
    agent, _ = trained
    env = agent.spec.make_env()
    batch = frames_of(env, 3)
    actions, _ = agent.predict(batch, deterministic=True)
    assert actions.shape == (3, 2) and np.isfinite(actions).all()
    one = {key: value[0] for key, value in batch.items()}
    single, _ = agent.predict(one, deterministic=True)
    np.testing.assert_allclose(single, actions[0], atol=1e-5)
    mean, _ = evaluate_policy(agent, env, n_eval_episodes=1)
    assert np.isfinite(mean)
    result = agent.evaluate(n_episodes=1)
    assert result["success_rate"] is not None and len(result["returns"]) == 1
    skills = SkillEnv(agent.spec.make_env(), agent)
    obs, _ = skills.reset(seed=0)
    obs, reward, *_, info = skills.step(np.zeros(agent.config.latent_dim, np.float32))
    assert obs["pixels"].shape == (SIZE, SIZE, 3) and 1 <= info["steps"] <= agent.config.horizon


def test_save_load_and_the_hub_keep_the_encoder_and_the_actions(trained, tmp_path, hub):  # noqa: F811
    agent, _ = trained
    obs = frames_of(agent.spec.make_env(), 4, seed=1)
    expected = agent.predict(obs, deterministic=True)[0]
    folder = agent.save(tmp_path / "pixels")
    loaded = LatentSkillAgent.load(folder)
    assert isinstance(loaded, LDCQ) and loaded.spec.encoder_kinds == agent.spec.encoder_kinds
    assert loaded.modules()["observation_encoder"] is loaded.observation_encoder  # saved with the rest
    for name, tensor in agent.observation_encoder.state_dict().items():
        assert torch.equal(tensor, loaded.observation_encoder.state_dict()[name]), name
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    agent.push_to_hub("me/ldcq-pixels", token=TOKEN, eval_episodes=0, video=False)
    pulled = LDCQ.from_pretrained("me/ldcq-pixels")
    np.testing.assert_array_equal(pulled.predict(obs, deterministic=True)[0], expected)


def test_the_autoencoder_figure_shows_frames_their_reconstructions_and_encoded_episodes(trained, tmp_path):
    pytest.importorskip("matplotlib")
    from latent_skills.plots import plot_image_autoencoder
    from latent_skills.plots.frames import encoded_episodes

    agent, _ = trained
    loaded = LatentSkillAgent.load(agent.save(tmp_path / "agent"))  # a loaded agent reads its frames again
    out = plot_image_autoencoder(loaded, tmp_path / "fig6.png", frames=5, episodes=3, seed=1)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = encoded_episodes(loaded, 3, seed=1)
    episodes = loaded.data.windows.episodes
    assert len(paths) == 3 and sum(len(p) for p in paths) > 3
    assert all(p.shape[1] == episodes.state_dim for p in paths)
    # each path is one episode's encoded states, in order: its first row is an episode's first observation
    assert all(
        any(np.array_equal(p[0], episodes.observations[o]) for o in episodes.obs_offsets) for p in paths
    )
    untrained = LDCQ.from_dataset(agent.spec.dataset_id, **SETTINGS)
    with pytest.raises(ValueError, match="not trained its 'images' stage"):
        plot_image_autoencoder(untrained, tmp_path / "untrained.png")


def test_an_image_of_another_size_is_refused_at_predict_naming_the_fix(trained):
    agent, _ = trained
    wrong = {
        "pixels": np.zeros((2 * SIZE, 2 * SIZE, 3), np.uint8),
        "achieved_goal": np.zeros(2),
        "desired_goal": np.zeros(2),
    }
    with pytest.raises(ValueError, match=r"'pixels' has shape \(32, 32, 3\).*ResizeObservation"):
        agent.predict(wrong)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (gym.spaces.Box(0, 255, (12, 12, 3), np.uint8), r"'image': a uint8 image.*multiples of 8.*Resize"),
        (gym.spaces.Box(0, 255, (3, 16, 16), np.uint8), r"'pixels'.*an image.*channels last"),
        (gym.spaces.Discrete(4), r"'pixels'.*Discrete.*FlattenObservation"),
    ],
)
def test_observations_no_encoder_takes_are_refused_at_from_dataset(minari_root, part, message):
    space = gym.spaces.Dict({"pixels": part, "position": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})
    buffers = observation_buffers(space, n_episodes=1, steps=5)
    actions = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    dataset = write_dataset("test/refused/pixels-v0", buffers, observation_space=space, action_space=actions)
    with pytest.raises(ValueError, match=message):
        LDCQ.from_dataset(dataset, **SETTINGS)


VARIANTS = {  # LDCQ: the module's trained agent
    LDGC: {},
    LDCP: {"dynamics_steps": 20, "dynamics_widths": (32, 32), "plan_candidates": 4, "plan_depth": 1},
    BCQH: {},
    LatentDiffuser: {"energy_steps": 10, "energy_samples": 2, "energy_widths": (32, 32)},
}


@pytest.mark.parametrize("agent_class", list(VARIANTS))
def test_every_other_agent_learns_and_acts_from_images(pixels, agent_class):
    fields = set(agent_class.config_class.field_names())
    settings = {k: v for k, v in {**SETTINGS, **VARIANTS[agent_class]}.items() if k in fields}
    agent = agent_class.from_dataset(pixels, **settings).learn()
    assert agent.stages_completed[0] == "images" and "images" not in agent.skipped_stages()
    obs = frames_of(agent.spec.make_env(), 2)
    actions, state = agent.predict(obs, deterministic=True)
    assert actions.shape == (2, 2) and np.isfinite(actions).all()
    assert agent.sample_latents(obs, 3).shape == (2, 3, agent.config.latent_dim)


def test_the_images_stage_reads_frames_a_batch_at_a_time_never_all_as_float32(pixels, monkeypatch):
    """Honest about numpy's memory (tracemalloc sees every numpy buffer) and about what reaches torch:
    every float32 copy of frames is made by the flattening rule, which is spied on here."""
    flattened_rows: list[int] = []
    flatten = ObservationFlattener.flatten

    def spy(self, obs):
        flat = flatten(self, obs)
        if self.dim > 100:  # the frame's 768 values are in it
            flattened_rows.append(len(np.atleast_2d(flat)))
        return flat

    monkeypatch.setattr(ObservationFlattener, "flatten", spy)
    agent = LDCQ.from_dataset(pixels, **SETTINGS)
    assert not agent.data.built  # nothing is encoded before the encoder is trained
    tracemalloc.start()
    try:
        agent.learn(stages=["images"])  # its last step encodes every frame once
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    all_frames = (STEPS + pixels.total_episodes) * SIZE * SIZE * 3
    assert agent.data.built and agent.data.frames[0].largest_read <= IMAGES["image_batch_size"]
    assert flattened_rows and max(flattened_rows) <= 256 < STEPS  # EpisodeEncoding's batch
    assert peak < all_frames * 4 / 2  # far below one float32 copy of the frames


def test_resuming_inside_the_images_stage_gives_the_uninterrupted_weights(pixels, tmp_path):
    stages = ["images", "skills"]  # the skills learn from the states the encoder's finish made
    straight = LDCQ.from_dataset(pixels, **SETTINGS).learn(stages=stages)

    def stop_in_images(locals_, globals_):
        return not (locals_["name"] == "images" and locals_["step"] == 29)

    stopped = LDCQ.from_dataset(pixels, **SETTINGS)
    stopped.learn(callback=stop_in_images, save_path=tmp_path / "run", stages=stages)
    assert stopped.stages_completed == []
    resumed = LDCQ.load(tmp_path / "run")
    resumed.learn(resume=True)
    assert resumed.stages_completed == straight.stages_completed == stages
    for prefix, module in straight.modules().items():
        for name, tensor in module.state_dict().items():
            assert torch.equal(tensor, resumed.modules()[prefix].state_dict()[name]), f"{prefix}.{name}"


def test_an_image_part_is_encoded_by_the_image_vae_and_a_flat_one_is_not():
    space = gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
    assert ImageVAE.accepts(space) and not ImageVAE.accepts(gym.spaces.Box(0, 255, (12, 12, 3), np.uint8))
    assert not ImageVAE.accepts(gym.spaces.Box(0.0, 1.0, (SIZE, SIZE, 3), np.float32))
    vae = ImageVAE((SIZE, SIZE, 3))
    frames = torch.randint(0, 256, (4, SIZE, SIZE, 3), dtype=torch.uint8)
    assert vae(frames).shape == (4, FEATURES) and vae.reconstruct(frames).shape == (4, SIZE, SIZE, 3)
    grey = ImageVAE((SIZE, SIZE))
    assert grey(torch.zeros(2, SIZE, SIZE)).shape == (2, FEATURES)
