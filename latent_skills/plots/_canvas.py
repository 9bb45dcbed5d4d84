"""matplotlib without pyplot: a ``Figure`` on an Agg canvas, so the user's backend and state are untouched.

matplotlib is not a core dependency; it is imported only when a figure is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = 'pip install "latent-skills[plot]"'
DPI = 100
PANEL_INCHES = 4.0  # each square panel; a figure of n panels is (n · 4) × 4 inches at DPI
# Cyclic: a heading of -180° and one of +180° are the same direction.
HEADING_CMAP = "hsv"


def new_figure(width: float, height: float) -> Figure:
    """An empty ``width × height``-inch figure (constrained layout) on its own Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"Plotting needs matplotlib, which is not installed: {INSTALL_HINT}") from exc
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG to ``path`` (parent folders are created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
