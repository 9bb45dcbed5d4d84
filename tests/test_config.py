"""Config validation (every field's range), strict loading of saved configs, and device resolution."""

from __future__ import annotations

import json
import math
import typing
from dataclasses import fields

import pytest
import torch

from latent_skills.agents.base import resolve_device
from latent_skills.config import (
    AgentConfig,
    BCQHConfig,
    ConfigError,
    DiffusionPriorConfig,
    LatentDiffuserConfig,
    LDCPConfig,
    LDCQConfig,
    LDGCConfig,
    field_range,
)

CLASSES = [
    AgentConfig,
    DiffusionPriorConfig,
    LDCQConfig,
    LDGCConfig,
    LDCPConfig,
    BCQHConfig,
    LatentDiffuserConfig,
]
PRESETS = ["paper", "quick"]


def _numeric_fields(cls: type[AgentConfig]) -> dict[str, type]:
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        if name not in cls.field_names():
            continue
        args = typing.get_args(hint)
        base = next(a for a in args if a is not type(None)) if type(None) in args else hint  # X | None
        if base in (int, float):
            out[name] = base
    return out


# ---------------------------------------------------------------- every field has a rule


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_numeric_field_has_an_allowed_range(cls):
    missing = [name for name in _numeric_fields(cls) if field_range(name) is None]
    assert not missing, f"{cls.__name__} fields without a range in FIELD_RANGES: {missing}"
    assert all(cls.from_preset(p) for p in PRESETS)  # the defaults and presets are valid


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_float_field_must_be_finite(cls):
    floats = [name for name, kind in _numeric_fields(cls).items() if kind is float]
    assert "skills_lr" in floats and "gamma" in floats
    for name in floats:
        for bad in (math.inf, -math.inf, math.nan, "nan", "inf"):
            with pytest.raises(ConfigError, match=rf"^{name} must be a finite number.*got (nan|inf|-inf)"):
                cls.from_dict({name: bad})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_widths_field_is_non_empty_and_positive(cls):
    widths = [name for name in cls.field_names() if name.endswith("_widths")]
    assert widths or cls is AgentConfig
    for name in widths:
        for bad in ((), (0,), (64, -1, 64), "", "64,0,64"):
            with pytest.raises(ConfigError, match=rf"^{name} must be a non-empty list of layer widths"):
                cls.from_dict({name: bad})


BAD_VALUES = [
    # (config class, field, bad value, the allowed range as the message states it)
    (AgentConfig, "grad_clip", 0.0, "> 0"),
    (AgentConfig, "grad_clip", -1.0, "> 0"),
    (AgentConfig, "vae_beta", -0.01, "≥ 0"),
    (AgentConfig, "skills_lr", 0.0, "> 0"),
    (DiffusionPriorConfig, "prior_lr", -1e-4, "> 0"),
    (DiffusionPriorConfig, "prior_snr_clip", 0.0, "> 0"),
    (DiffusionPriorConfig, "guidance", -0.5, "≥ 0"),
    (AgentConfig, "gamma", 0.0, "in (0, 1]"),
    (AgentConfig, "gamma", 1.01, "in (0, 1]"),
    (DiffusionPriorConfig, "prior_cond_drop", 1.0, "in [0, 1)"),
    (AgentConfig, "seed", -1, "in [0, 4294967296)"),
    (AgentConfig, "seed", 2**32, "in [0, 4294967296)"),
    (AgentConfig, "horizon", 0, "> 0"),
    (AgentConfig, "latent_dim", -2, "> 0"),
    (AgentConfig, "vae_gru_layers", 0, "> 0"),
    (AgentConfig, "act_candidates", 0, "> 0"),
    (DiffusionPriorConfig, "ddpm_extra_steps", -1, "≥ 0"),
    (AgentConfig, "skills_steps", 0, "> 0"),
    (AgentConfig, "exec_horizon", 0, "> 0"),
    (AgentConfig, "exec_horizon", 31, "in [1, horizon (30)]"),
    (DiffusionPriorConfig, "denoiser_widths", (128, 32, 32, 128), "odd number"),
    (DiffusionPriorConfig, "sampler", "euler", "one of"),
    (LDCQConfig, "q_polyak", 1.0, "in [0, 1)"),
    (LDCQConfig, "q_polyak", -0.1, "in [0, 1)"),
    (LDCQConfig, "q_lr", 0.0, "> 0"),
    (LDCQConfig, "q_candidates", 0, "> 0"),
    (LDCQConfig, "bank_ram_gb", 0.0, "> 0"),
    (LDCQConfig, "per_alpha", -0.1, "≥ 0"),
    (LDCQConfig, "per_beta_start", -0.1, "in [0, 1]"),
    (LDCQConfig, "per_beta_start", 1.1, "in [0, 1]"),
    (LDCQConfig, "per_beta_growth", -0.03, "≥ 0"),
    (LDCQConfig, "per_beta_every", 0, "> 0"),
    (LDCQConfig, "candidate_source", "disk", "one of"),
    (LDCQConfig, "per_beta_schedule", "cosine", "one of"),
    (LDCQConfig, "success_cut", "stay", "one of"),
    (BCQHConfig, "grad_clip", 0.0, "> 0"),
    (LDGCConfig, "hindsight_horizons", 0.0, "> 0"),
    (LDGCConfig, "hindsight_horizons", 0.01, "≥ 1 step"),
    (LDCPConfig, "plan_depth", 0, "> 0"),
    (LDCPConfig, "plan_candidates", -1, "> 0"),
    (LDCPConfig, "dynamics_lr", 0.0, "> 0"),
    (LatentDiffuserConfig, "energy_samples", 1, "≥ 2"),
    (LatentDiffuserConfig, "energy_beta", -1.0, "≥ 0"),
    (LatentDiffuserConfig, "energy_guidance", -1.0, "≥ 0"),
]


@pytest.mark.parametrize(("cls", "name", "value", "allowed"), BAD_VALUES, ids=lambda v: str(v))
def test_bad_value_names_the_field_the_value_and_the_range(cls, name, value, allowed):
    with pytest.raises(ConfigError) as error:
        cls.from_dict({name: value})
    message = str(error.value)
    assert message.startswith(name), message
    assert allowed in message, message
    if not isinstance(value, tuple):
        assert str(value) in message or repr(value) in message or repr(float(value)) in message, message


def test_holding_the_goal_forever_needs_a_discount():
    with pytest.raises(ConfigError, match="success_cut='hold'.*gamma < 1"):
        LDCQConfig.from_dict({"success_cut": "hold", "gamma": 1.0})
    assert LDCQConfig.from_dict({"success_cut": "hold", "gamma": 0.99}).success_cut == "hold"


def test_bad_value_through_replace_and_preset_overrides():
    config = LDCQConfig.from_preset("quick")
    with pytest.raises(ConfigError, match="grad_clip"):
        config.replace(grad_clip=0)
    with pytest.raises(ConfigError, match="per_alpha"):
        LDCQConfig.from_preset("quick", per_alpha=-1)
    with pytest.raises(ConfigError, match="q_widths"):
        LDCQConfig.from_preset("paper", q_widths="")


def test_boundary_values_are_allowed():
    config = LDCQConfig.from_dict(
        {
            "gamma": 1.0,
            "vae_beta": 0.0,
            "guidance": 0.0,
            "prior_cond_drop": 0.0,
            "q_polyak": 0.0,
            "per_alpha": 0.0,
            "per_beta_start": 1.0,
            "per_beta_growth": 0.0,
            "seed": 0,
            "ddpm_extra_steps": 0,
            "exec_horizon": 30,
        }
    )
    assert config.gamma == 1.0 and config.exec_horizon == 30
    assert LatentDiffuserConfig.from_dict({"energy_samples": 2, "energy_beta": 0.0}).energy_samples == 2


# ---------------------------------------------------------------- saved configs


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_to_dict_from_saved_round_trip_is_identity(cls, preset):
    config = cls.from_preset(preset)
    saved = config.to_dict()
    assert cls.from_saved(saved) == config
    # also through JSON (tuples become lists, ints stay ints)
    again = cls.from_saved(json.loads(json.dumps(saved)))
    assert again == config and again.to_dict() == saved
    assert all(type(getattr(again, f.name)) is type(getattr(config, f.name)) for f in fields(cls))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_from_saved_refuses_missing_fields_instead_of_filling_defaults(cls):
    saved = cls.from_preset("quick").to_dict()
    del saved["act_candidates"], saved["exec_horizon"]
    with pytest.raises(ConfigError, match=r"lacks fields \['act_candidates', 'exec_horizon'\]") as error:
        cls.from_saved(saved)
    assert "older latent-skills" in str(error.value)
    with pytest.raises(ConfigError, match="runs/x/config.json's config lacks fields"):
        cls.from_saved(saved, source="runs/x/config.json")
    # from_dict (user overrides) still fills the rest with defaults
    assert cls.from_dict(saved).act_candidates == cls().act_candidates


def test_from_saved_refuses_unknown_fields_and_bad_values():
    saved = LDCQConfig().to_dict()
    with pytest.raises(ConfigError, match=r"fields \['energy_beta'\].*newer latent-skills"):
        LDCQConfig.from_saved({**saved, "energy_beta": 3.0})
    with pytest.raises(ConfigError, match="grad_clip"):
        LDCQConfig.from_saved({**saved, "grad_clip": 0.0})
    with pytest.raises(ConfigError, match="JSON object"):
        LDCQConfig.from_saved([1, 2])  # type: ignore[arg-type]


# ---------------------------------------------------------------- devices


def test_resolve_device_cpu_and_torch_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    mps = torch.backends.mps
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_unavailable_or_unknown_devices_are_config_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for device in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(
            ConfigError, match=r"CUDA is not available on this machine; use device='cpu' or 'auto'"
        ):
            resolve_device(device)
    with pytest.raises(ConfigError, match="MPS"):
        resolve_device("mps")
    for nonsense in ("gpu", "cuda:x", "", "cpu cpu"):
        with pytest.raises(ConfigError, match="not a device torch knows"):
            resolve_device(nonsense)
    with pytest.raises(ConfigError, match="runs on 'cpu', 'cuda' or 'mps'"):
        resolve_device("meta")


def test_a_cuda_index_this_machine_lacks_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")
