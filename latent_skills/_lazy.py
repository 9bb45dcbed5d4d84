"""Lazy package attributes (PEP 562), so that ``import latent_skills`` and the command's ``--help`` do
not pay for torch, Stable-Baselines3 or Minari.

A package ``__init__`` names where each public name lives and binds the returned ``__getattr__`` and
``__dir__``; the module holding a name is imported the first time the name is read, and the value is
then cached in the package. Type checkers and IDEs read the same names from imports under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to the module
    (relative to the package, e.g. ``".base"``) that defines it; ``namespace`` is the package's
    ``globals()``, where a loaded name is cached."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # read once: later lookups do not come back here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
