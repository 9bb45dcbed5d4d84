"""The checkpoint format: ``config.json`` (what the agent is) + ``model.safetensors`` (its tensors),
and, for a run that can be resumed, ``training_state.safetensors`` (optimiser moments, generator
states, replay priorities; its JSON half lives in ``config.json`` under ``training_state``).

``config.json`` holds ``format_version``, ``library_version``, ``agent_type``, whatever the agent
needs to rebuild itself, the SHA-256 of every tensor file (``files``) and, apart from that table,
``config_sha256``: the SHA-256 of the rest of ``config.json`` in a canonical form (sorted keys, no
spaces), so a damaged config (its hash table included) is refused rather than read as another agent.
Loading is strict: a missing or extra tensor, a wrong shape or dtype, a newer format, a hash that does
not match or a non-finite weight is an error that names the file and what is wrong. Tensor files are
read from their own headers first (names, dtypes, shapes, offsets checked against the file's size), so
a caller can refuse them before any tensor data is read, and hashed in a stream as they are read.

Saving never leaves a half-written checkpoint: the files are written into a fresh folder beside the
target, which then replaces the target as a whole (anything else in the target folder, such as
``logs/``, is carried over). Writers take turns (a lock on the parent folder); a reader that
races a writer sees the old or the new checkpoint, never a mix (the hashes tell, and it retries).
"""

from .format import (
    BOUND_TENSORS,
    CHECKPOINT_FILES,
    CONFIG_HASH_KEY,
    CONFIG_NAME,
    TRAINING_STATE_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    TensorInfo,
    config_digest,
    file_sha256,
    seal_config,
    split_state,
)
from .migrations import FORMAT_VERSION, MIGRATIONS, Migration
from .reading import Check, read_checkpoint, read_config
from .writing import write_checkpoint

__all__ = [
    "BOUND_TENSORS",
    "CHECKPOINT_FILES",
    "CONFIG_HASH_KEY",
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "MIGRATIONS",
    "TRAINING_STATE_NAME",
    "WEIGHTS_NAME",
    "Check",
    "CheckpointError",
    "Migration",
    "TensorInfo",
    "config_digest",
    "file_sha256",
    "read_checkpoint",
    "read_config",
    "seal_config",
    "split_state",
    "write_checkpoint",
]
