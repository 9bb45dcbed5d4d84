"""Data: Minari loading, the observation flattening rule, skill windows and dataset makers."""

from .episodes import EpisodeArrays, StateStats
from .flatten import ObservationFlattener, ObsSegment
from .loading import DatasetNotFoundError, dataset_summary, load_dataset, reference_scores
from .windows import SkillWindows, WindowedArray

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
