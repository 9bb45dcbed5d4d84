"""One registry of agent classes by name: the CLI, recipes, ``load`` and the Hub loader all read it.

A checkpoint names its agent type as a string; loading looks that string up here and nowhere else,
so a checkpoint can only ever pick one of the classes registered in this process (``@register_agent``
on a composition of your own adds it).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .base import LatentSkillAgent

A = TypeVar("A", bound="type[LatentSkillAgent]")

_AGENTS: dict[str, type[LatentSkillAgent]] = {}


def register_agent(cls: A) -> A:
    """Class decorator: make ``cls`` loadable by name (its class name) from checkpoints and recipes."""
    name = cls.__name__
    known = _AGENTS.get(name)
    if known is not None and known is not cls and known.__module__ == cls.__module__:
        pass  # the same module re-imported (e.g. reloaded): the newer definition wins
    elif known is not None and known is not cls:
        raise ValueError(
            f"an agent named {name!r} is already registered ({known.__module__}.{name}): give yours another name"
        )
    _AGENTS[name] = cls
    return cls


def agent_names() -> tuple[str, ...]:
    """Every registered agent name (the library's own first)."""
    _load_builtin_agents()
    return tuple(_AGENTS)


def agent_class(name: str) -> type[LatentSkillAgent]:
    """The registered agent class called ``name`` (case-insensitive); an unknown name is a ValueError
    naming the known ones."""
    _load_builtin_agents()
    for known, cls in _AGENTS.items():
        if known.lower() == str(name).lower():
            return cls
    hint = difflib.get_close_matches(str(name), list(_AGENTS), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"unknown agent {name!r}.{suggestion} Known agents: {', '.join(_AGENTS)}")


def _load_builtin_agents() -> None:
    import latent_skills.agents  # noqa: F401 - registers LDCQ, LDGC, LDCP, BCQH, LatentDiffuser
