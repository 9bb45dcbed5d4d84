"""The config's derived tables are what they were before each field was declared once.

``data/config_tables_main.json`` holds the tables the previous config module produced (one
hand-written table per view): per config class its fields, types, defaults, acting fields, presets,
``from_preset`` results, ranges and choices, and the module-level tables. Only two changes are
intended: the old base config is now ``DiffusionPriorConfig`` (``AgentConfig`` is the root every
agent's config shares), and BCQH and LatentDiffuser no longer carry fields they never read (their
``retired_fields``): a value for one (an old checkpoint's, a recipe's for every agent) is checked
as declared and dropped.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest

import latent_skills.config as C
from latent_skills.checkpoint.migrations import MIGRATIONS

MAIN = json.loads((Path(__file__).parent / "data" / "config_tables_main.json").read_text())
# the old module's name of each class -> today's
RENAMED = {"AgentConfig": "DiffusionPriorConfig"}
# fields declared since the tables were recorded (the image encoder, issue 23): left out of today's
# tables before they are compared, and checked on their own below
ADDED = {"image_steps", "image_lr", "image_batch_size", "image_beta"}


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def tables(cls: type[C.AgentConfig]) -> dict[str, Any]:
    """Every view of ``cls`` the old tables recorded, computed from today's declarations."""
    hints = typing.get_type_hints(cls)
    names = cls.field_names()
    return {
        "fields": names,
        "types": {f: str(hints[f]) for f in names},
        "defaults": cls().to_dict(),
        "acting": list(cls.ACTING),
        "presets": {p: {k: _json(v) for k, v in values.items()} for p, values in cls.PRESETS.items()},
        "from_preset": {p: cls.from_preset(p).to_dict() for p in cls.PRESETS},
        "from_preset_h10": {p: cls.from_preset(p, horizon=10).to_dict() for p in cls.PRESETS},
        "from_preset_h3": {p: cls.from_preset(p, horizon=3).to_dict() for p in cls.PRESETS},
        "ranges": {f: None if C.field_range(f) is None else str(C.field_range(f)) for f in names},
        "choices": {f: list(C.FIELD_CHOICES[f]) for f in names if f in C.FIELD_CHOICES},
    }


def without(table: Any, retired: set[str]) -> Any:
    """``table`` with every entry named by a retired field left out, at any depth."""
    if isinstance(table, dict):
        return {k: without(v, retired) for k, v in table.items() if k not in retired}
    if isinstance(table, list) and all(isinstance(x, str) for x in table):
        return [x for x in table if x not in retired]
    return table


@pytest.mark.parametrize("old_name", sorted(MAIN["classes"]))
def test_every_classs_tables_are_unchanged_but_for_retired_fields(old_name):
    cls = getattr(C, RENAMED.get(old_name, old_name))
    before = MAIN["classes"][old_name]
    retired = set(cls.retired_fields)
    assert retired <= set(before["fields"])  # only fields it had
    assert without(tables(cls), ADDED) == without(before, retired)
    assert not retired & set(cls.field_names())
    assert set(cls.field_names()) >= ADDED


def test_only_bcqh_and_latent_diffuser_lost_fields():
    assert set(C.BCQHConfig.retired_fields) == {
        *C.DiffusionPriorConfig.field_names(),
        *("distill_steps", "distill_nfe", "distill_batch_size", "distill_lr", "distilled_for"),
    } - set(C.AgentConfig.field_names())
    assert set(C.LatentDiffuserConfig.retired_fields) == {
        "distill_steps",
        "distill_nfe",
        "distill_batch_size",
        "distill_lr",
        "distilled_for",
    }
    for cls in (C.DiffusionPriorConfig, C.LDCQConfig, C.LDGCConfig, C.LDCPConfig):
        assert cls.retired_fields == ()


def test_module_tables_are_unchanged():
    assert {k: list(v) for k, v in C.FIELD_CHOICES.items()} == MAIN["FIELD_CHOICES"]
    assert list(C.ACTING_FIELDS) == MAIN["ACTING_FIELDS"]
    assert {k: _json(v) for k, v in C.QUICK.items() if k not in ADDED} == MAIN["QUICK"]
    assert list(C.SOLVERS) == MAIN["SOLVERS"]
    assert list(C.CANDIDATE_SOURCES) == MAIN["CANDIDATE_SOURCES"]
    # every range the old table listed, as it was; the fields its suffix rule covered (> 0) now
    # declare that range themselves
    ranges = {k: [str(v), v.low, v.high, v.low_open, v.high_open] for k, v in C.FIELD_RANGES.items()}
    assert {k: ranges[k] for k in MAIN["FIELD_RANGES"]} == MAIN["FIELD_RANGES"]
    for name in set(ranges) - set(MAIN["FIELD_RANGES"]) - ADDED:
        assert name.endswith(("_lr", "_batch_size", "_steps")) and C.FIELD_RANGES[name] == C.POSITIVE
    assert (C.FIELD_RANGES["image_steps"], C.FIELD_RANGES["image_beta"]) == (C.NON_NEGATIVE, C.NON_NEGATIVE)


@pytest.mark.parametrize("name", ["BCQHConfig", "LatentDiffuserConfig"])
@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_configs_saved_with_retired_fields_still_load(name, preset):
    """What the old module wrote into checkpoints, fields these agents never read included."""
    cls = getattr(C, name)
    saved = MAIN["classes"][name]["from_preset"][preset]
    assert set(cls.retired_fields) <= set(saved)
    migrated = MIGRATIONS[6]({"config": saved}, {})[0]["config"]  # what loading adds: ADDED's defaults
    assert cls.from_saved(migrated) == cls.from_preset(preset).replace(
        **{k: cls().to_dict()[k] for k in ADDED}
    )


def test_every_field_is_declared_once_with_a_doc():
    for cls in (
        C.AgentConfig,
        C.LDCQConfig,
        C.LDGCConfig,
        C.LDCPConfig,
        C.BCQHConfig,
        C.LatentDiffuserConfig,
    ):
        for name in cls.field_names():
            assert C.SETTINGS[name].doc, name
    with pytest.raises(TypeError, match="declared twice"):
        C.fields.declare(C.settings.SkillSettings)


def test_a_retired_field_is_checked_and_dropped():
    config = C.BCQHConfig.from_dict({"sampler_steps": 3, "diffusion_timesteps": 20, "q_steps": 5})
    assert config.q_steps == 5 and not hasattr(config, "sampler_steps")
    with pytest.raises(C.ConfigError, match="sampler must be one of"):
        C.BCQHConfig.from_dict({"sampler": "euler"})
    with pytest.raises(C.ConfigError, match="distill_steps must be ≥ 0"):
        C.LatentDiffuserConfig.from_dict({"distill_steps": -1})
    with pytest.raises(C.ConfigError, match="has no field 'guidanse'"):
        C.BCQHConfig.from_dict({"guidanse": 1.0})
