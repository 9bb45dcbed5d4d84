"""Data: Minari loading, the observation flattening rule, skill windows and dataset makers.

The names load on first use (Minari and gymnasium with them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from .episodes import EpisodeArrays, StateStats
    from .flatten import ObservationFlattener, ObsSegment
    from .loading import DatasetNotFoundError, dataset_summary, load_dataset, reference_scores
    from .windows import SkillWindows, WindowedArray

_EXPORTS = {
    **dict.fromkeys(("EpisodeArrays", "StateStats"), ".episodes"),
    **dict.fromkeys(("ObservationFlattener", "ObsSegment"), ".flatten"),
    **dict.fromkeys(
        ("DatasetNotFoundError", "dataset_summary", "load_dataset", "reference_scores"), ".loading"
    ),
    **dict.fromkeys(("SkillWindows", "WindowedArray"), ".windows"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "DatasetNotFoundError",
    "EpisodeArrays",
    "ObsSegment",
    "ObservationFlattener",
    "SkillWindows",
    "StateStats",
    "WindowedArray",
    "dataset_summary",
    "load_dataset",
    "reference_scores",
]
