"""Torch modules: state normaliser, skill VAE (encoder, autoregressive decoder, prior), twin critic."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latent_skills.nn import (
    AutoregressiveDecoder,
    SkillEncoder,
    SkillVAE,
    StateNormalizer,
    TwinCritic,
    polyak_update,
    q_candidates,
)

S, A, D, H = 5, 3, 4, 7


@pytest.fixture(autouse=True)
def _one_thread_seeded():
    """Tiny models: one thread is faster and immune to other processes; every test seeded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def tiny_vae(**kwargs) -> SkillVAE:
    options = dict(latent_dim=D, hidden=16, gru_layers=2)
    options.update(kwargs)
    return SkillVAE(S, A, horizon=H, **options)


def windows(batch: int, lengths: list[int] | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    states = 3.0 + 2.0 * torch.randn(batch, H, S, generator=g)
    actions = torch.rand(batch, H, A, generator=g) * 2 - 1
    lengths = lengths or [H] * batch
    mask = torch.arange(H)[None] < torch.tensor(lengths)[:, None]
    return states, actions, mask


def fill_padding(x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor | float) -> torch.Tensor:
    x = x.clone()
    pad = ~mask
    if torch.is_tensor(value):
        x[pad] = value[pad]
    else:
        x[pad] = value
    return x


# ---------------------------------------------------------------- StateNormalizer


def test_normalizer_stats_are_float32_buffers_in_state_dict(tmp_path):
    mean = np.array([1.0, -2.0, 3.0])
    std = np.array([2.0, 0.0, 0.5])  # a constant dimension
    norm = StateNormalizer(mean=mean, std=std)
    assert norm.mean.dtype == torch.float32 and norm.std.dtype == torch.float32
    assert set(norm.state_dict()) == {"mean", "std"}
    assert len(list(norm.parameters())) == 0
    # a constant dimension is centred, not scaled (divisor 1); real stds are untouched
    torch.testing.assert_close(norm.std, torch.tensor([2.0, 1.0, 0.5]))
    x = torch.tensor([[[3.0, -2.0 + 2**-10, 2.0]]])  # (1, 1, 3): any leading shape
    expected = torch.tensor([[[1.0, 2**-10, -2.0]]])  # never amplified
    torch.testing.assert_close(norm(x), expected)
    torch.testing.assert_close(norm.inverse(norm(x)), x)

    # safetensors round trip into an identity normaliser built from just a dimension
    save_file(norm.state_dict(), tmp_path / "n.safetensors")
    fresh = StateNormalizer(3)
    torch.testing.assert_close(fresh(x), x)
    fresh.load_state_dict(load_file(tmp_path / "n.safetensors"))
    torch.testing.assert_close(fresh(x), expected)


def test_normalizer_does_not_amplify_a_constant_goal():
    # issue 13: single-goal maze data stores the same desired goal (3, 1) at every step
    gen = torch.Generator().manual_seed(0)
    varying = torch.randn(1000, 4, generator=gen, dtype=torch.float64) * torch.tensor([0.5, 2.0, 0.02, 7.0])
    states = torch.cat([varying + 1.0, torch.tensor([3.0, 1.0], dtype=torch.float64).expand(1000, 2)], 1)
    norm = StateNormalizer.from_data(states.numpy())
    torch.testing.assert_close(norm.std[4:], torch.ones(2))
    # the evaluation env moves its goal by up to ±0.25 at each reset
    test = states[:64].float().clone()
    test[:, 4:] += torch.empty(64, 2).uniform_(-0.25, 0.25, generator=gen)
    test[0, 4:], test[1, 4:] = torch.tensor([3.25, 0.75]), torch.tensor([2.75, 1.25])
    out = norm(test)
    assert out[:, 4:].abs().max() <= 0.25 + 1e-6, out[:, 4:].abs().max()
    torch.testing.assert_close(out[:, 4:], test[:, 4:] - torch.tensor([3.0, 1.0]))
    # the varying dimensions (one with std 0.02, just above the threshold) are standardised exactly
    full = norm(states.float())[:, :4]
    torch.testing.assert_close(full.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(full.std(0, unbiased=False), torch.ones(4), atol=1e-5, rtol=1e-5)
    expected = (test[:, :4].double() - varying.mean(0) - 1.0) / varying.std(0, unbiased=False)
    torch.testing.assert_close(out[:, :4], expected.float(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm.inverse(out), test)


def test_normalizer_applies_the_rule_to_an_older_checkpoints_floored_std(tmp_path):
    # checkpoints written before the rule stored std floored at 1e-3 (a constant dimension's divisor)
    old = {"mean": torch.tensor([0.0, 3.0]), "std": torch.tensor([2.0, 1e-3])}
    save_file(old, tmp_path / "old.safetensors")
    norm = StateNormalizer(2)
    norm.load_state_dict(load_file(tmp_path / "old.safetensors"))
    torch.testing.assert_close(norm.std, torch.tensor([2.0, 1.0]))
    x = torch.tensor([2.0, 3.25])
    torch.testing.assert_close(norm(x), torch.tensor([1.0, 0.25]))
    torch.testing.assert_close(norm.inverse(norm(x)), x)
    # also when the buffer is overwritten by hand, forward and inverse apply the rule
    norm.std.copy_(torch.tensor([2.0, 1e-3]))
    torch.testing.assert_close(norm(x), torch.tensor([1.0, 0.25]))
    torch.testing.assert_close(norm.inverse(torch.tensor([1.0, 0.25])), x)
    torch.testing.assert_close(norm.divisor, torch.tensor([2.0, 1.0]))
    # min_std is that threshold
    wide = StateNormalizer(mean=[0.0, 0.0], std=[0.5, 2.0], min_std=1.0)
    torch.testing.assert_close(wide.std, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="min_std"):
        StateNormalizer(2, min_std=0.0)


def test_normalizer_from_data_and_errors():
    data = torch.randn(50, 4, 6, dtype=torch.float64) * torch.arange(1, 7) + 10
    norm = StateNormalizer.from_data(data.numpy())
    out = norm(data.float())
    torch.testing.assert_close(out.reshape(-1, 6).mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.reshape(-1, 6).std(0, unbiased=False), torch.ones(6))
    norm.set_stats(np.zeros(6), np.full(6, 2.0))
    torch.testing.assert_close(norm(torch.ones(6)), torch.full((6,), 0.5))
    with pytest.raises(ValueError, match="non-finite"):
        StateNormalizer(mean=[0.0, np.nan], std=[1.0, 1.0])
    with pytest.raises(ValueError, match="last dimension"):
        norm(torch.zeros(2, 5))
    with pytest.raises(ValueError):
        StateNormalizer()


# ---------------------------------------------------------------- SkillVAE: shapes, checkpoint


def test_skill_vae_shapes_and_safetensors_round_trip(tmp_path):
    states, actions, mask = windows(4, [H, 3, 1, 5])
    vae = tiny_vae(state_mean=states.mean((0, 1)), state_std=states.std((0, 1)))
    mean, std = vae.encode(states, actions, mask)
    assert mean.shape == std.shape == (4, D) and (std > 0).all()
    z = torch.randn(4, D)
    assert vae.log_prob(states, z, actions).shape == (4, H)
    assert vae.act(states[:, 0], z).shape == (4, A)
    assert vae.sample_prior(states[:, 0], 9).shape == (4, 9, D)
    out = vae.loss(states, actions, mask, beta=0.05)
    assert set(out) == {"loss", "nll", "kl"} and all(v.shape == () for v in out.values())
    assert "normalizer.mean" in vae.state_dict() and "normalizer.std" in vae.state_dict()

    # every tensor (normaliser included) survives safetensors; no shared storage trips it up
    save_file(vae.state_dict(), tmp_path / "vae.safetensors")
    other = tiny_vae()
    other.load_state_dict(load_file(tmp_path / "vae.safetensors"))
    torch.testing.assert_close(other.encode(states, actions, mask), (mean, std))


def test_same_seed_same_weights_and_loss():
    states, actions, mask = windows(3, [H, 4, 2])
    losses = []
    for _ in range(2):
        torch.manual_seed(123)
        vae = tiny_vae()
        losses.append(vae.loss(states, actions, mask, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(losses[0]["loss"], losses[1]["loss"])


def test_mask_must_be_a_nonempty_prefix():
    vae = tiny_vae()
    states, actions, mask = windows(2)
    bad = mask.clone()
    bad[0, 2] = False  # a hole
    with pytest.raises(ValueError, match="prefix"):
        vae.encode(states, actions, bad)
    bad = mask.clone()
    bad[1] = False
    with pytest.raises(ValueError, match="at least one"):
        vae.loss(states, actions, bad)


# ---------------------------------------------------------------- encoder: padding, both directions


def test_encoding_ignores_padding():
    lengths = [H, 3, 1, 6]
    states, actions, mask = windows(4, lengths)
    vae = tiny_vae(state_mean=states.mean((0, 1)), state_std=states.std((0, 1)))
    g = torch.Generator().manual_seed(1)
    zeros = vae.encode(fill_padding(states, mask, 0.0), fill_padding(actions, mask, 0.0), mask)
    garbage = vae.encode(
        fill_padding(states, mask, 100 * torch.randn(states.shape, generator=g)),
        fill_padding(actions, mask, 100 * torch.randn(actions.shape, generator=g)),
        mask,
    )
    nans = vae.encode(fill_padding(states, mask, np.nan), fill_padding(actions, mask, np.inf), mask)
    for other in (garbage, nans):
        torch.testing.assert_close(other, zeros)
    # ... and each equals the unpadded window encoded on its own
    for i, length in enumerate(lengths):
        alone = vae.encode(states[i : i + 1, :length], actions[i : i + 1, :length])
        torch.testing.assert_close(alone[0][0], zeros[0][i], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(alone[1][0], zeros[1][i], atol=1e-6, rtol=1e-5)


def test_pooled_features_are_both_directions_final_states():
    """Reference computation: run each direction as its own unidirectional GRU on the real prefix."""
    torch.manual_seed(3)
    hidden = 8
    enc = SkillEncoder(S, A, D, hidden=hidden, num_layers=1)
    forward_gru = nn.GRU(hidden + A, hidden, batch_first=True)
    backward_gru = nn.GRU(hidden + A, hidden, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(forward_gru, f"{name}_l0").copy_(getattr(enc.gru, f"{name}_l0"))
            getattr(backward_gru, f"{name}_l0").copy_(getattr(enc.gru, f"{name}_l0_reverse"))
    lengths = [H, 4, 1]
    states, actions, mask = windows(3, lengths)
    feats = enc.features(states, actions, mask)
    assert feats.shape == (3, 2 * hidden)
    for i, length in enumerate(lengths):
        x = torch.cat([enc.state_mlp(states[i, :length]), actions[i, :length]], -1)[None]
        _, h_fwd = forward_gru(x)  # ends after the last real step
        _, h_bwd = backward_gru(x.flip(1))  # runs last real step -> step 0, ends after step 0
        torch.testing.assert_close(feats[i, :hidden], h_fwd[0, 0])
        torch.testing.assert_close(feats[i, hidden:], h_bwd[0, 0])


def test_backward_direction_carries_the_first_step():
    """Silence the forward direction's input: the encoding must still react to step 0 (through the
    backward direction, whose *final* state is the one after reading step 0). Pooling only the
    forward final state would make it constant; reading the backward output at the last (padded)
    position, as the reference code did, would make it blind to step 0."""
    torch.manual_seed(4)
    enc = SkillEncoder(S, A, D, hidden=8, num_layers=1)
    with torch.no_grad():
        enc.gru.weight_ih_l0.zero_()  # forward direction now ignores every input
    states, actions, mask = windows(2, [H, 4])
    base_feats = enc.features(states, actions, mask)
    changed = states.clone()
    changed[:, 0] += 1.0  # only the first step
    feats = enc.features(changed, actions, mask)
    torch.testing.assert_close(feats[:, :8], base_feats[:, :8])  # forward half: input-blind
    assert (feats[:, 8:] - base_feats[:, 8:]).abs().amin(1).gt(0).all()
    mean, _ = enc(changed, actions, mask)
    assert (mean - enc(states, actions, mask)[0]).abs().amax(1).gt(1e-4).all()

    # symmetric: silence the backward direction, the last *real* step still matters (forward half)
    enc = SkillEncoder(S, A, D, hidden=8, num_layers=1)
    with torch.no_grad():
        enc.gru.weight_ih_l0_reverse.zero_()
    changed = states.clone()
    changed[0, H - 1] += 1.0
    changed[1, 3] += 1.0  # window 1 has 4 real steps
    diff = (enc(changed, actions, mask)[0] - enc(states, actions, mask)[0]).abs().amax(1)
    assert diff.gt(1e-4).all()


# ---------------------------------------------------------------- loss


def test_loss_ignores_padding_and_is_normalised_per_real_step():
    lengths = [H, 3, 1]
    states, actions, mask = windows(3, lengths)
    vae = tiny_vae()

    def run(s, a, m=mask):
        vae.zero_grad()
        out = vae.loss(s, a, m, beta=0.05, generator=torch.Generator().manual_seed(5))
        out["loss"].backward()
        return out, [p.grad.clone() for p in vae.parameters()]

    zeros, grads_zeros = run(fill_padding(states, mask, 0.0), fill_padding(actions, mask, 0.0))
    nans, grads_nans = run(fill_padding(states, mask, np.nan), fill_padding(actions, mask, 1e6))
    for key in zeros:
        torch.testing.assert_close(nans[key], zeros[key])
    for g_zero, g_nan in zip(grads_zeros, grads_nans, strict=True):
        assert torch.isfinite(g_nan).all()
        torch.testing.assert_close(g_nan, g_zero)

    # loss = (Σ_real −log π + β Σ_windows KL) / n_real_steps; nll per real step, kl per window
    n_real = sum(lengths)
    torch.testing.assert_close(zeros["loss"], zeros["nll"] + 0.05 * zeros["kl"] * 3 / n_real)

    # the decoder term only sees real steps: compare with log π computed by hand with the same z
    with torch.no_grad():
        mean_q, std_q = vae.encode(states, actions, mask)
        noise = torch.randn(mean_q.shape, generator=torch.Generator().manual_seed(5))
        log_pi = vae.log_prob(states, mean_q + std_q * noise, actions)
    torch.testing.assert_close(zeros["nll"], -log_pi[mask].sum() / n_real)


# ---------------------------------------------------------------- decoder


def test_decoder_dimension_i_depends_on_earlier_actions_only():
    dec = AutoregressiveDecoder(S, D, action_dim=4, hidden=16)
    g = torch.Generator().manual_seed(0)
    s, z, a = torch.randn(6, S, generator=g), torch.randn(6, D, generator=g), torch.randn(6, 4)
    mean, std = dec(s, z, a)
    for j in range(4):
        bumped = a.clone()
        bumped[:, j] += 0.7
        mean_j, std_j = dec(s, z, bumped)
        # dims <= j: exactly unchanged (a_j is not an input of theirs)
        assert torch.equal(mean_j[:, : j + 1], mean[:, : j + 1])
        assert torch.equal(std_j[:, : j + 1], std[:, : j + 1])
        # dims > j: every one of them reacts to a_j
        if j < 3:
            assert (mean_j[:, j + 1 :] - mean[:, j + 1 :]).abs().amin(0).gt(0).all()
    # and every dimension depends on the state and the latent
    assert (dec(s + 0.5, z, a)[0] - mean).abs().amin(0).gt(0).all()
    assert (dec(s, z + 0.5, a)[0] - mean).abs().amin(0).gt(0).all()


def test_decoder_log_prob_matches_teacher_forced_gaussians():
    dec = AutoregressiveDecoder(S, D, A, hidden=16)
    states, actions, _ = windows(2)
    z = torch.randn(2, D)
    log_pi = dec.log_prob(states, z, actions)
    assert log_pi.shape == (2, H)
    mean, std = dec(states, z[:, None].expand(2, H, D), actions)
    expected = torch.distributions.Normal(mean, std).log_prob(actions).sum(-1)
    torch.testing.assert_close(log_pi, expected)


def test_act_samples_the_autoregressive_distribution():
    dec = AutoregressiveDecoder(S, D, A, hidden=16)
    s, z = torch.randn(8, S), torch.randn(8, D)
    # deterministic: each dim is its mean given the earlier means (a fixed point of teacher forcing)
    a_det = dec.act(s, z, deterministic=True)
    torch.testing.assert_close(dec(s, z, a_det)[0], a_det)
    # stochastic: a_i = mean_i(a_<i) + std_i(a_<i) · noise_i, noise drawn in dimension order
    a = dec.act(s, z, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    noise = torch.stack([torch.randn(8, generator=g) for _ in range(A)], -1)  # same draws
    mean, std = dec(s, z, a)
    torch.testing.assert_close((a - mean) / std, noise, atol=1e-5, rtol=1e-5)
    assert torch.equal(a, dec.act(s, z, generator=torch.Generator().manual_seed(3)))
    assert not torch.equal(a, dec.act(s, z, generator=torch.Generator().manual_seed(4)))


def test_act_clips_to_action_bounds():
    dec = AutoregressiveDecoder(S, D, A, hidden=16, action_low=-0.1, action_high=[0.1, 0.2, 0.3])
    with torch.no_grad():
        dec.std_out.bias.fill_(5.0)  # very wide: most raw samples fall outside the box
    a = dec.act(torch.randn(200, S), torch.randn(200, D), generator=torch.Generator().manual_seed(0))
    assert (a >= -0.1).all() and (a <= torch.tensor([0.1, 0.2, 0.3])).all()
    assert (a == -0.1).any() and (a[:, 2] == 0.3).any()
    assert {"action_low", "action_high"} <= set(dec.state_dict())


# ---------------------------------------------------------------- prior


def test_prior_samples_follow_its_gaussian():
    vae = tiny_vae()
    s0 = torch.randn(2, S)
    with torch.no_grad():
        mean, std = vae.prior_params(s0)
        z = vae.sample_prior(s0, 20000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(1), mean, atol=4 * std.max().item() / 100, rtol=0)
    torch.testing.assert_close(z.std(1), std, atol=0, rtol=0.05)
    again = vae.sample_prior(s0, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, vae.sample_prior(s0, 5, generator=torch.Generator().manual_seed(1)))


# ---------------------------------------------------------------- learning two skills


def two_skill_windows(n: int, seed: int, horizon: int = 6):
    """Same state distribution for both skills; only the latent can tell them apart."""
    g = torch.Generator().manual_seed(seed)
    skill = torch.randint(0, 2, (n,), generator=g)
    states = torch.randn(n, horizon, 3, generator=g)
    sign = (1 - 2 * skill).float()[:, None, None]
    actions = sign * (torch.tensor([0.6, -0.4]) + 0.3 * states[..., :2])
    actions = actions + 0.05 * torch.randn(n, horizon, 2, generator=g)
    return states, actions.clamp(-1, 1), skill


def test_vae_learns_two_distinct_skills():
    torch.manual_seed(0)
    states, actions, _ = two_skill_windows(512, seed=0)
    vae = SkillVAE(3, 2, horizon=6, latent_dim=4, hidden=32, gru_layers=1, action_low=-1, action_high=1)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(200):
        idx = torch.randint(0, 512, (64,), generator=g)
        out = vae.loss(states[idx], actions[idx], beta=0.05, generator=g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert np.mean(losses[-20:]) < losses[0] - 2.0

    with torch.no_grad():
        test_states, test_actions, skill = two_skill_windows(200, seed=5)
        z, _ = vae.encode(test_states, test_actions)
        z_other = torch.where((skill == 0)[:, None], z[skill == 1].mean(0), z[skill == 0].mean(0))
        flat = test_states.reshape(-1, 3)

        def reproduce(latents):
            per_step = latents.repeat_interleave(6, 0)
            decoded = vae.act(flat, per_step, deterministic=True).view(200, 6, 2)
            return (decoded - test_actions).square().mean().item()

        own, other = reproduce(z), reproduce(z_other)
    assert own < 0.02
    assert other > 20 * own


# ---------------------------------------------------------------- critics


def test_twin_critic_shapes_heads_and_min():
    critic = TwinCritic(S, D)
    s, z = torch.randn(10, S), torch.randn(10, D)
    q = critic(s, z)
    assert q.shape == (10, 2)
    assert (q[:, 0] != q[:, 1]).all()  # independently initialised heads
    torch.testing.assert_close(critic.min_q(s, z), torch.minimum(q[:, 0], q[:, 1]))
    # architecture: widths 256-256-256-32-1, LayerNorm before every GELU
    linears = [m for m in critic.q1.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [256, 256, 256, 32, 1]
    assert linears[0].in_features == S + D
    assert sum(isinstance(m, nn.LayerNorm) for m in critic.q1.modules()) == 4


def test_twin_critic_normalises_states_inside():
    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(S, generator=g), torch.rand(S, generator=g) + 0.5
    critic = TwinCritic(S, D, widths=(16, 8), state_mean=mean, state_std=std)
    assert {"normalizer.mean", "normalizer.std"} <= set(critic.state_dict())
    plain = TwinCritic(S, D, widths=(16, 8))
    state = {k: v for k, v in critic.state_dict().items() if not k.startswith("normalizer.")}
    plain.load_state_dict(state, strict=False)
    s, z = torch.randn(4, S), torch.randn(4, D)
    torch.testing.assert_close(critic(s, z), plain((s - mean) / std, z))


def test_q_candidates_equals_a_loop():
    critic = TwinCritic(S, D, widths=(32, 32, 8))
    s, z = torch.randn(3, S), torch.randn(3, 11, D)
    scores = q_candidates(critic, s, z)
    assert scores.shape == (3, 11)
    loop = torch.stack(
        [torch.stack([critic(s[b : b + 1], z[b, k : k + 1]).min() for k in range(11)]) for b in range(3)]
    )
    torch.testing.assert_close(scores, loop)
    with pytest.raises(ValueError):
        q_candidates(critic, s, z[0])


def test_polyak_update_math():
    source = TwinCritic(S, D, widths=(8, 4), state_mean=torch.ones(S), state_std=torch.ones(S) * 2)
    target = TwinCritic(S, D, widths=(8, 4))
    before = copy.deepcopy(target.state_dict())
    polyak_update(target, source, polyak=0.995)
    for name, p in target.named_parameters():
        expected = 0.995 * before[name] + 0.005 * source.state_dict()[name]
        torch.testing.assert_close(p.data, expected)
    torch.testing.assert_close(target.normalizer.mean, source.normalizer.mean)  # buffers copied
    after = copy.deepcopy(target.state_dict())
    polyak_update(target, source, polyak=1.0)  # keeps the target
    assert all(torch.equal(after[k], v) for k, v in target.state_dict().items())
    polyak_update(target, source, polyak=0.0)  # hard copy
    assert all(torch.equal(source.state_dict()[k], v) for k, v in target.state_dict().items())
    with pytest.raises(ValueError):
        polyak_update(target, source, polyak=1.5)
