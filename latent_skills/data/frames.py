"""One image part of a Minari dataset's observations, read from disk a batch at a time.

An image encoder trains on random frames of the whole dataset, yet 100k 64×64 RGB frames are 1.2 GB
as ``uint8`` (4.9 GB as float32): :class:`DatasetFrames` never holds more than the frames asked for.
Frame ``i`` is the dataset's ``i``-th observation in :class:`~latent_skills.data.episodes.EpisodeArrays`'
order (episode by episode, each episode's ``T + 1`` observations). From Minari's HDF5 store (its
default, and what ``latent-skills collect`` writes) the rows asked for are read straight from the file,
JPEG-encoded frames decoded one by one; from another store each episode a batch touches is read whole
(slower, and still bounded by the batch's episodes).
"""

from __future__ import annotations

import io
from typing import Any

import minari
import numpy as np

from .flatten import KeyPath


class DatasetFrames:
    """Random access to the frames of the observation part at ``path`` (``()`` for a Box observation)."""

    def __init__(self, dataset: minari.MinariDataset, path: KeyPath) -> None:
        self.dataset, self.path = dataset, path
        self.episode_ids = np.asarray(dataset.episode_indices, np.int64)
        meta = dataset.storage.get_episode_metadata(self.episode_ids.tolist())
        lengths = np.array([int(m["total_steps"]) + 1 for m in meta], np.int64)  # observations
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.jpeg = bool(getattr(dataset.storage, "jpeg_encoding", False))
        self._file: Any = None  # the HDF5 file, opened on first read
        self._nodes: dict[int, Any] = {}  # each episode's frames in it, looked up once
        self.largest_read = 0  # the most frames one read returned (tests check the bound)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        """Frames ``index`` (any order, repeats allowed) as one ``uint8`` array ``(len(index), ...)``."""
        index = np.asarray(index, np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"frame index out of range 0..{len(self) - 1}")
        episodes = np.searchsorted(self.offsets, index, side="right") - 1
        steps = index - self.offsets[episodes]
        out: np.ndarray | None = None
        for episode in np.unique(episodes):
            here = np.flatnonzero(episodes == episode)
            rows, back = np.unique(steps[here], return_inverse=True)
            frames = self._read(int(self.episode_ids[episode]), rows)
            if out is None:
                out = np.empty((len(index), *frames.shape[1:]), np.uint8)
            out[here] = frames[back]
        self.largest_read = max(self.largest_read, len(index))
        return np.empty((0,), np.uint8) if out is None else out

    def _read(self, episode_id: int, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, unique) of one episode's frames."""
        path = getattr(self.dataset.storage, "_file_path", None)
        if path is None or not str(path).endswith(".hdf5"):
            episode = next(iter(self.dataset.storage.get_episodes([episode_id])))
            part = episode["observations"]
            for key in self.path:
                part = part[key]
            return np.asarray(part)[rows]
        node = self._nodes.get(episode_id)
        if node is None:
            if self._file is None:
                import h5py

                self._file = h5py.File(path, "r")
            node = self._file[f"episode_{episode_id}"]["observations"]
            for key in self.path:
                node = node[key]
            self._nodes[episode_id] = node
        span = int(rows[-1] - rows[0]) + 1
        # h5py's point selection is slow per call: a short run of rows is read whole, then picked
        stored = node[rows[0] : rows[-1] + 1][rows - rows[0]] if span <= 4 * len(rows) + 16 else node[rows]
        if not self.jpeg:
            return np.asarray(stored, np.uint8)
        from PIL import Image

        return np.stack([np.asarray(Image.open(io.BytesIO(raw)), np.uint8) for raw in stored])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._nodes = None, {}

    def __getstate__(self) -> dict[str, Any]:  # an open HDF5 file does not travel (e.g. to a Ray worker)
        return {**self.__dict__, "_file": None, "_nodes": {}}
