"""How a config field is declared and checked: :func:`setting` (a default, an allowed range or set of
choices, whether it is an acting setting and a one-line doc), the registry of every declared field,
and the type coercion and range checks that ``from_dict`` applies.

Field names are global (a config is flat: ``--set name=value`` reaches every field by its name), so
each name is declared once, in one settings group (:mod:`latent_skills.config.settings`), and the
registry is keyed by name.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A config field that does not exist, has the wrong type, or an invalid value."""


@dataclass(frozen=True)
class Range:
    """An interval of allowed values: ``low``/``high`` ``None`` for unbounded, ``*_open`` to exclude
    the bound. ``str`` reads ``> 0``, ``≥ 0``, ``in (0, 1]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None and self.low is not None:
            return f"{'>' if self.low_open else '≥'} {_number(self.low)}"
        if self.low is None and self.high is not None:
            return f"{'<' if self.high_open else '≤'} {_number(self.high)}"
        if self.low is None:
            return "any number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        assert self.high is not None  # both bounds are set here
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
UNIT_OPEN_TOP = Range(0.0, 1.0, high_open=True)


@dataclass(frozen=True)
class Setting:
    """What a config field declares beside its type and default (``dataclasses.Field.metadata``)."""

    doc: str
    range: Range | None = None
    # the allowed strings; a mapping (a registry such as the diffusion solvers') is read when checked
    choices: Iterable[str] | None = None
    acting: bool = False  # changes how a trained agent acts, not what it learned: set_acting may change it

    def options(self) -> tuple[str, ...] | None:
        return None if self.choices is None else tuple(self.choices)


_METADATA_KEY = "latent_skills"


def setting(
    default: Any,
    doc: str,
    *,
    range: Range | None = None,  # noqa: A002 - the word the declarations read best with
    choices: Iterable[str] | None = None,
    acting: bool = False,
) -> Any:
    """A config field: its ``default``, a one-line ``doc``, the allowed ``range`` (numbers) or
    ``choices`` (strings), and whether it is an ``acting`` setting (``set_acting`` may change it
    after training). Used as a dataclass field's default: ``gamma: float = setting(0.995, "...")``."""
    return dataclasses.field(
        default=default,
        metadata={_METADATA_KEY: Setting(doc=doc, range=range, choices=choices, acting=acting)},
    )


#: Every declared field by name, in declaration order (see :func:`declare`).
SETTINGS: dict[str, Setting] = {}
_TYPES: dict[str, Any] = {}  # each declared field's type hint


def declare(*groups: type) -> None:
    """Register the fields of settings ``groups`` (dataclasses whose fields come from
    :func:`setting`) by name, in order. A name declared twice is an error: the flat ``--set`` surface
    needs every name to mean one thing."""
    for group in groups:
        hints = typing.get_type_hints(group)
        for field in dataclasses.fields(group):
            declared = field.metadata.get(_METADATA_KEY)
            if declared is None:
                raise TypeError(f"{group.__name__}.{field.name} is not declared with setting()")
            if field.name in SETTINGS:
                raise TypeError(f"config field {field.name!r} is declared twice ({group.__name__})")
            SETTINGS[field.name] = declared
            _TYPES[field.name] = hints[field.name]


def check_declared(name: str, value: Any) -> None:
    """Coerce and check ``value`` as declared field ``name`` would be (for a value that no field of
    the config at hand keeps: a retired field)."""
    hint = _TYPES[name]
    check_field(name, coerce(name, value, hint), hint)


def declared_order(name: str) -> float:
    """Where ``name`` was declared (a config lists its fields in this order; undeclared last)."""
    try:
        return list(SETTINGS).index(name)
    except ValueError:
        return math.inf


class _DeclaredView(Mapping[str, Any]):
    """A read-only table over :data:`SETTINGS`: one entry per declared field that has ``attr``."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def _value(self, setting_: Setting) -> Any:
        return setting_.options() if self.attr == "choices" else getattr(setting_, self.attr)

    def __getitem__(self, name: str) -> Any:
        declared = SETTINGS.get(name)
        value = None if declared is None else self._value(declared)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name, s in SETTINGS.items() if self._value(s) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


#: The allowed values of every declared numeric field (from its :func:`setting`).
FIELD_RANGES: Mapping[str, Range] = _DeclaredView("range")
#: The allowed strings of every declared string field with choices.
FIELD_CHOICES: Mapping[str, tuple[str, ...]] = _DeclaredView("choices")


def field_range(name: str) -> Range | None:
    """The allowed values of numeric field ``name``: its declared range, else (a field a user's
    subclass adds) ``> 0`` for ``*_lr``, ``*_batch_size`` and ``*_steps``; ``None``: no rule."""
    declared = SETTINGS.get(name)
    if declared is not None and declared.range is not None:
        return declared.range
    if name.endswith(("_lr", "_batch_size", "_steps")):
        return POSITIVE
    return None


def check_field(name: str, value: Any, hint: Any) -> None:
    """Type-generic checks of one field's value, then its range and choices."""
    if value is None:
        if type(None) not in typing.get_args(hint):
            raise ConfigError(f"{name} must not be None")
        return
    if isinstance(value, tuple):
        if name.endswith("_widths") and (not value or min(value) <= 0):
            raise ConfigError(
                f"{name} must be a non-empty list of layer widths, each > 0, got {list(value)!r}"
            )
        return
    if isinstance(value, str):
        choices = FIELD_CHOICES.get(name)
        if choices is not None and value not in choices:
            raise ConfigError(f"{name} must be one of {choices}, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    allowed = field_range(name)
    if isinstance(value, float) and not (math.isfinite(value) and (allowed is None or value in allowed)):
        raise ConfigError(
            f"{name} must be a finite number{'' if allowed is None else f' {allowed}'}, got {value!r}"
        )
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")


def jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type; accept strings from the command line."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return coerce(name, value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list of ints, got {value!r}")
        return tuple(coerce(name, v, int) for v in value)
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an int, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            as_float = None
        if as_float is not None and as_float.is_integer():
            return int(as_float)
    elif hint is float:
        if not isinstance(value, bool):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
    elif hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


__all__ = [
    "FIELD_CHOICES",
    "FIELD_RANGES",
    "NON_NEGATIVE",
    "POSITIVE",
    "SETTINGS",
    "UNIT_OPEN_TOP",
    "ConfigError",
    "Range",
    "Setting",
    "check_declared",
    "check_field",
    "coerce",
    "declare",
    "declared_order",
    "field_range",
    "jsonable",
    "setting",
]
