"""The ``latent-skills`` command (click): one module per group of commands, the options they share in
:mod:`.options`, one error policy in :mod:`.main`. The library never imports it.

Each command imports what it needs inside its body, so ``latent-skills --help`` loads no heavy
library."""

from __future__ import annotations

from . import data, plot, share, sweep, train, zoo  # noqa: F401 - each adds its commands to main
from .main import UserError, main

__all__ = ["UserError", "main"]
