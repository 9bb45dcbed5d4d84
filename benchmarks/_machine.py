"""What every benchmark result records about the machine it ran on."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any


def machine_info() -> dict[str, Any]:
    versions = {}
    for package in ("latent-skills", "torch", "numpy", "minari", "gymnasium", "gymnasium-robotics", "mujoco"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "versions": versions,
    }
