"""The checkpoint format's names and small parts: the files of a checkpoint folder, the error every
refusal raises, a tensor's header entry, and the hashes that detect damage (see the package doc)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

CONFIG_NAME = "config.json"
CONFIG_HASH_KEY = "config_sha256"  # the hash of config.json's canonical form, this key left out
WEIGHTS_NAME = "model.safetensors"
TRAINING_STATE_NAME = "training_state.safetensors"
# The files a save replaces; everything else in the folder (logs, eval.json, a model card) is kept.
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, TRAINING_STATE_NAME)


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded as asked."""


# The most bytes a config.json may have (a real one has a few KB) and a safetensors header may have
# (safetensors' own limit).
MAX_CONFIG_BYTES = 16 << 20
MAX_HEADER_BYTES = 100 << 20
# Tensors whose infinite entries mean "unbounded" rather than "diverged": the action bounds a decoder
# clamps to, -inf allowed in a lower bound, +inf in an upper one (an unbounded Box action space).
BOUND_TENSORS = {"action_low": -math.inf, "action_high": math.inf}
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as a safetensors header describes it (``start``/``end``: byte offsets in the file)."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def config_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of ``meta`` (a checkpoint's config.json) without ``config_sha256``, in a canonical JSON
    form: sorted keys, no spaces, ASCII. What format 6 records as ``config_sha256``."""
    body = {key: value for key, value in meta.items() if key != CONFIG_HASH_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal_config(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with a fresh ``config_sha256``: to write a config.json edited on purpose (the hash
    detects damage; it is no signature, anyone can compute it)."""
    body = {key: value for key, value in meta.items() if key != CONFIG_HASH_KEY}
    return {**body, CONFIG_HASH_KEY: config_digest(body)}


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    start = prefix + "."
    return {name[len(start) :]: t for name, t in tensors.items() if name.startswith(start)}
