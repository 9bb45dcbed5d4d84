"""``AgentConfig``: the fields every agent has, and what every config does with its fields —
presets, checking, the JSON round trip.

A config is flat (every field has a unique name) so that ``Agent.from_dataset(..., name=value)`` and
``latent-skills train --set name=value`` reach every field the same way. Unknown names are an error
that suggests the nearest known name.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from .fields import SETTINGS, ConfigError, check_declared, check_field, coerce, declared_order, jsonable
from .presets import quick_preset
from .settings import ActingSettings, ImageSettings, RunSettings, SkillSettings

T = TypeVar("T")


class _PerClass(Generic[T]):
    """A class attribute computed from the class it is read on (its fields), once per class."""

    def __init__(self, compute: Callable[[type], T]) -> None:
        self.compute = compute
        self.cache: dict[type, T] = {}

    def __get__(self, instance: object, owner: type) -> T:
        if owner not in self.cache:
            self.cache[owner] = self.compute(owner)
        return self.cache[owner]


def config_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of config class ``cls`` in declaration order (``latent_skills.config.settings``),
    fields a user's subclass adds last."""
    return sorted(dataclasses.fields(cls), key=lambda f: declared_order(f.name))


def _acting(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in config_fields(cls) if f.name in SETTINGS and SETTINGS[f.name].acting)


def _presets(cls: type) -> dict[str, dict[str, Any]]:
    return {"paper": {}, "quick": quick_preset(cls, **getattr(cls, "quick_values", {}))}


@dataclass(repr=False)
class AgentConfig(SkillSettings, ActingSettings, RunSettings, ImageSettings):
    """Fields every latent-skill agent has: the skills (stage 1), acting, the run and the image encoder.

    ``ACTING`` (the fields a trained agent may change with ``set_acting``) and ``PRESETS`` (``paper``:
    the defaults; ``quick``: :data:`~latent_skills.config.presets.QUICK` where the class has the
    field, then the class's own ``quick_values``) follow from the fields."""

    ACTING = _PerClass(_acting)
    PRESETS = _PerClass(_presets)
    # this class's values in the quick preset beyond the shared QUICK ones
    quick_values: ClassVar[dict[str, Any]] = {}
    # fields of the family this agent never reads, which older versions kept in its config: a value
    # for one (an old checkpoint's, or a recipe's or sweep's written for every agent) is checked as
    # declared and dropped
    retired_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # @dataclass would write a repr in its fields' inheritance order; keep the declared order
        cls.__repr__ = AgentConfig.__repr__  # type: ignore[method-assign]

    def __repr__(self) -> str:
        values = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in config_fields(type(self)))
        return f"{type(self).__name__}({values})"

    @property
    def replan_every(self) -> int:
        return self.horizon if self.exec_horizon is None else self.exec_horizon

    def validate(self) -> None:
        """Check every field against its declared range and choices
        (:func:`~latent_skills.config.fields.field_range`), then each settings group's rules that tie
        fields together. Generic rules: every float field is finite, every ``*_widths`` tuple is
        non-empty with positive entries."""
        hints = typing.get_type_hints(type(self))
        for f in config_fields(type(self)):
            check_field(f.name, getattr(self, f.name), hints[f.name])
        super().validate()

    # --- construction and JSON ---
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in config_fields(cls)]

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides: Any) -> AgentConfig:
        if preset not in cls.PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; {cls.__name__} has {sorted(cls.PRESETS)}")
        values = {**cls.PRESETS[preset], **overrides}
        preset_exec = cls.PRESETS[preset].get("exec_horizon")
        horizon = coerce("horizon", values.get("horizon", cls.horizon), int)
        if "exec_horizon" not in overrides and preset_exec is not None and preset_exec > horizon:
            values["exec_horizon"] = None  # the preset's replanning interval exceeds this task's H
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AgentConfig:
        known = cls.field_names()
        for name in [name for name in values if name in cls.retired_fields]:
            check_declared(name, values[name])
        values = {name: value for name, value in values.items() if name not in cls.retired_fields}
        for name in values:
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
                raise ConfigError(
                    f"{cls.__name__} has no field {name!r}.{suggestion} Fields: {', '.join(known)}"
                )
        hints = typing.get_type_hints(cls)
        config = cls(**{name: coerce(name, value, hints[name]) for name, value in values.items()})
        config.validate()
        return config

    @classmethod
    def from_saved(cls, values: dict[str, Any], source: str = "the checkpoint") -> AgentConfig:
        """A config written by ``to_dict`` (a checkpoint's ``config.json``), strictly.

        Unlike :meth:`from_dict` (user overrides on top of defaults), a saved config must name every
        field: a field it lacks is *not* filled with today's default, because the agent was trained
        and tuned with values that may differ (an older quick agent without ``act_candidates`` and
        ``exec_horizon`` would otherwise act with the paper's 500 candidates every 30 steps). The
        class's ``retired_fields`` (saved by older versions, never read) are dropped.
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{source}'s config must be a JSON object, got {type(values).__name__}")
        values = {name: value for name, value in values.items() if name not in cls.retired_fields}
        known = cls.field_names()
        missing = [name for name in known if name not in values]
        if missing:
            defaults = {f.name: jsonable(f.default) for f in config_fields(cls) if f.name in missing}
            raise ConfigError(
                f"{source}'s config lacks fields {missing}; it was written by an older latent-skills: "
                f"add the values the agent was trained with to its config.json (today's {cls.__name__} "
                f"defaults would be {defaults}, which may not be what it was trained and tuned with)"
            )
        unknown = [name for name in values if name not in known]
        if unknown:
            raise ConfigError(
                f"{source}'s config has fields {unknown} that {cls.__name__} does not know; it was "
                "written by a newer latent-skills: upgrade latent-skills to load it"
            )
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in config_fields(type(self))}

    def replace(self, **changes: Any) -> AgentConfig:
        return type(self).from_dict({**self.to_dict(), **changes})

    def with_acting(self, **changes: Any) -> AgentConfig:
        """This config with acting fields changed (``set_acting``); a field that changes what the agent
        learned is a :class:`ConfigError`."""
        not_acting = sorted(set(changes) - set(self.ACTING))
        if not_acting:
            raise ConfigError(
                f"{not_acting} change what the agent learned; after training only {list(self.ACTING)} can change"
            )
        return self.replace(**changes)


__all__ = ["AgentConfig", "config_fields"]
