"""The W&B writer of :mod:`latent_skills.loggers` (public there as ``WandbOutputFormat``), apart
because an SB3 ``KVWriter`` subclass imports Stable-Baselines3, and torch, when it is defined."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter

__all__ = ["WandbOutputFormat"]


class WandbOutputFormat(KVWriter):
    """Writes the logger's numbers to a W&B run (``wandb.log(values, step=step)``); other values
    (text, figures, SB3's HParam) are skipped, and so are keys excluded for ``"wandb"``."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        values = {
            key: float(value) if isinstance(value, np.generic) else value
            for key, value in key_values.items()
            if isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool)
            and "wandb" not in (key_excluded.get(key) or ())
        }
        if values:
            self.run.log(values, step=int(step))

    def close(self) -> None:
        self.run.finish()
