"""One registry of agent classes by name: the CLI, recipes, ``load`` and the Hub loader all read it.

A checkpoint names its agent type as a string; loading looks that string up here and nowhere else,
so a checkpoint can only ever pick one of the classes registered in this process (``@register_agent``
on a composition of your own adds it).

The library's own agents are known here by name before their modules are imported (importing one
imports torch): :func:`agent_class` imports the module of the one it is asked for, and
:func:`agent_names` and :func:`config_class` answer for them without importing any, so listing and
checking recipes stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from latent_skills.config import AgentConfig

    from .base import LatentSkillAgent

A = TypeVar("A", bound="type[LatentSkillAgent]")

# The library's agents: name -> (the module that defines and registers it, its config class in
# latent_skills.config). tests/test_imports.py checks these against the classes.
BUILTIN_AGENTS: dict[str, tuple[str, str]] = {
    "LDCQ": ("latent_skills.agents.ldcq", "LDCQConfig"),
    "LDGC": ("latent_skills.agents.ldgc", "LDGCConfig"),
    "LDCP": ("latent_skills.agents.ldcp", "LDCPConfig"),
    "BCQH": ("latent_skills.agents.bcqh", "BCQHConfig"),
    "LatentDiffuser": ("latent_skills.agents.latent_diffuser", "LatentDiffuserConfig"),
}

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
    elif known is None and name in BUILTIN_AGENTS and cls.__module__ != BUILTIN_AGENTS[name][0]:
        raise ValueError(
            f"{name!r} is the name of a latent-skills agent ({BUILTIN_AGENTS[name][0]}.{name}): "
            "give yours another name"
        )
    _AGENTS[name] = cls
    return cls


def agent_names() -> tuple[str, ...]:
    """Every registered agent name (the library's own first); imports no agent."""
    return tuple(dict.fromkeys([*BUILTIN_AGENTS, *_AGENTS]))


def canonical_name(name: str) -> str:
    """The registered spelling of agent ``name`` (case-insensitive), without importing the agent; an
    unknown name is a ValueError naming the known ones."""
    for known in agent_names():
        if known.lower() == str(name).lower():
            return known
    names = agent_names()
    hint = difflib.get_close_matches(str(name), list(names), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"unknown agent {name!r}.{suggestion} Known agents: {', '.join(names)}")


def agent_class(name: str) -> type[LatentSkillAgent]:
    """The registered agent class called ``name`` (case-insensitive); an unknown name is a ValueError
    naming the known ones."""
    name = canonical_name(name)
    if name not in _AGENTS:
        importlib.import_module(BUILTIN_AGENTS[name][0])  # its @register_agent adds it
    return _AGENTS[name]


def config_class(name: str) -> type[AgentConfig]:
    """The config class of agent ``name`` (case-insensitive); for the library's agents without
    importing them (nor torch)."""
    name = canonical_name(name)
    if name in _AGENTS:
        return _AGENTS[name].config_class
    import latent_skills.config

    config: type[AgentConfig] = getattr(latent_skills.config, BUILTIN_AGENTS[name][1])
    return config
