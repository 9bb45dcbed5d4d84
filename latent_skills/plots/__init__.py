"""The paper's figures as PNG files, also drawn by ``latent-skills plot ...``.

- :func:`plot_latents_by_horizon` — encoder latents across horizons H (paper Fig. 2)
- :func:`plot_prior_samples` — ground truth vs diffusion prior vs Gaussian prior latents (Fig. 3)
- :func:`plot_world_model` — LDCP's predicted skill end states on the maze (Fig. 5)
- :func:`plot_learning_curves` — one panel per training stage from the logger's ``progress.csv``
- :func:`plot_image_autoencoder` — frames, their β-VAE reconstructions and encoded episodes (App. C, Fig. 6)

matplotlib is needed to draw (``pip install "latent-skills[plot]"``); importing this module does not
import it, nor torch: the names load on first use. Figures are drawn on their own Agg canvas:
pyplot's global state is never touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from .curves import find_progress_csv, plot_learning_curves, read_stage_series
    from .frames import plot_image_autoencoder
    from .latents import plot_latents_by_horizon, plot_prior_samples
    from .pca import PCA
    from .world_model import draw_maze, plot_world_model

_EXPORTS = {
    **dict.fromkeys(("find_progress_csv", "plot_learning_curves", "read_stage_series"), ".curves"),
    **dict.fromkeys(("plot_latents_by_horizon", "plot_prior_samples"), ".latents"),
    "plot_image_autoencoder": ".frames",
    "PCA": ".pca",
    **dict.fromkeys(("draw_maze", "plot_world_model"), ".world_model"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "PCA",
    "draw_maze",
    "find_progress_csv",
    "plot_image_autoencoder",
    "plot_latents_by_horizon",
    "plot_learning_curves",
    "plot_prior_samples",
    "plot_world_model",
    "read_stage_series",
]
