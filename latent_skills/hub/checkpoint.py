"""The checkpoint format: ``config.json`` (what the agent is) + ``model.safetensors`` (its tensors),
and, for a run that can be resumed, ``training_state.safetensors`` (optimiser moments, generator
states, replay priorities; its JSON half lives in ``config.json`` under ``training_state``).

``config.json`` holds ``format_version``, ``library_version``, ``agent_type``, whatever the agent
needs to rebuild itself, and the SHA-256 of every tensor file (``files``). Loading is strict: a
missing or extra tensor, a wrong shape, a newer format, a hash that does not match or a non-finite
weight is an error that names the file and what is wrong.

Saving never leaves a half-written checkpoint: the files are written into a fresh folder beside the
target, which then replaces the target as a whole (anything else in the target folder, such as
``logs/``, is carried over). Writers take turns (a lock on the parent folder); a reader that
races a writer sees the old or the new checkpoint, never a mix (the hashes tell, and it retries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

FORMAT_VERSION = 5
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TRAINING_STATE_NAME = "training_state.safetensors"
# The files a save replaces; everything else in the folder (logs, eval.json, a model card) is kept.
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, TRAINING_STATE_NAME)
_NEW, _OLD = ".new-", ".old-"  # sibling folders of a save in progress: .NAME.new-UUID, .NAME.old-UUID

Migration = Callable[
    [dict[str, Any], dict[str, torch.Tensor]], tuple[dict[str, Any], dict[str, torch.Tensor]]
]
# Version policy: FORMAT_VERSION goes up whenever config.json or model.safetensors change in a way
# older code cannot read, and that change registers MIGRATIONS[old] = a function turning a format
# `old` checkpoint (meta, tensors) into format `old + 1`. read_checkpoint chains them, so checkpoints
# already shared (on the Hub or on disk) keep loading.
MIGRATIONS: dict[int, Migration] = {}


def _format_1_to_2(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 2 stores the evaluation env as ``{"id", "kwargs", "max_episode_steps"}`` and records file
    hashes; format 1's full EnvSpec JSON is still read (and checked against the registry when the env
    is built), and it has no hashes to check. Older readers refuse format 2 with "upgrade" instead of
    failing on the new env form."""
    return meta, tensors


def _format_2_to_3(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 3 adds ``ddpm_variance``, ``goal_dropout`` (goal-conditioned priors) and
    ``energy_q_scale`` (LatentDiffuser). Agents saved before sampled DDPM with β̃_t, dropped the whole
    condition for guidance and weighted raw β·Q, so that is what they keep."""
    config = meta.get("config")
    if isinstance(config, dict):
        config = {**config}
        config.setdefault("ddpm_variance", "posterior")
        if "hindsight_horizons" in config:
            config.setdefault("goal_dropout", "condition")
        if "energy_beta" in config:
            config.setdefault("energy_q_scale", "raw")
        meta["config"] = config
    return meta, tensors


def _format_3_to_4(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 4 adds ``per_beta_schedule`` and ``success_cut`` (Q-learning agents). Agents saved
    before grew PER's β by a fixed step rule and bootstrapped at success cuts, so they keep that."""
    config = meta.get("config")
    if isinstance(config, dict) and "per_alpha" in config:
        config = {**config}
        config.setdefault("per_beta_schedule", "steps")
        config.setdefault("success_cut", "bootstrap")
        meta["config"] = config
    return meta, tensors


def _format_4_to_5(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 5 adds ``skill_windows``; agents saved before learned skills from every window."""
    config = meta.get("config")
    if isinstance(config, dict):
        meta["config"] = {**config, "skill_windows": config.get("skill_windows", "all")}
    return meta, tensors


MIGRATIONS[1] = _format_1_to_2
MIGRATIONS[2] = _format_2_to_3
MIGRATIONS[3] = _format_3_to_4
MIGRATIONS[4] = _format_4_to_5


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded as asked."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checkpoint(
    path: str | os.PathLike,
    meta: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    training_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``meta`` (JSON-serialisable) and ``tensors`` (and ``training_tensors``, the resumable
    training state) as the checkpoint folder ``path``; returns the folder.

    The files go into a fresh sibling folder that then replaces ``path`` whole. On any error
    (a full disk, an interrupt) the previous checkpoint at ``path`` is left as it was.
    """
    folder = Path(path).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}{_NEW}{uuid.uuid4().hex}"
    files = {WEIGHTS_NAME: tensors}
    if training_tensors is not None:
        files[TRAINING_STATE_NAME] = training_tensors
    # the lock covers the staging folder too: one found while holding it is a killed save's leftover
    with _folder_lock(folder, exclusive=True):
        try:
            staging.mkdir()
            # mkdir applied the umask to 0o777: the same umask applied to 0o666 is a plain file's mode
            file_mode = staging.stat().st_mode & 0o666
            hashes = {}
            for name, contents in files.items():
                contiguous = {key: t.detach().contiguous().cpu() for key, t in contents.items()}
                save_file(contiguous, str(staging / name), metadata={"format_version": str(FORMAT_VERSION)})
                # safetensors writes through a private temp file (mode 0600): give the weights the
                # mode any other output gets, so a shared cluster's group can read them
                os.chmod(staging / name, file_mode)
                hashes[name] = file_sha256(staging / name)
            meta = {"format_version": FORMAT_VERSION, **meta, "files": hashes}
            (staging / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
            _swap_in(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return folder


@contextlib.contextmanager
def _folder_lock(folder: Path, exclusive: bool) -> Iterator[None]:
    """Writers one at a time (exclusive), readers beside each other but never during a swap (shared):
    a POSIX advisory lock on the parent directory itself, so no lock file is left behind."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the swap never exposes a mixed folder, readers retry
        yield
        return
    try:
        fd = os.open(folder.parent, os.O_RDONLY)
    except OSError:  # no parent to lock (a reader of a missing folder): the read reports it
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by ``staging``: move the old folder aside, move the new one in, carry over
    what is not part of the checkpoint (logs, ...), delete the old one."""
    _recover(folder)
    old = None
    if folder.exists():
        if not folder.is_dir():
            raise CheckpointError(f"{folder} is a file, not a checkpoint folder: choose another path.")
        old = folder.parent / f".{folder.name}{_OLD}{uuid.uuid4().hex}"
        os.rename(folder, old)
    os.rename(staging, folder)
    if old is not None:
        for entry in old.iterdir():
            if entry.name not in CHECKPOINT_FILES and not (folder / entry.name).exists():
                os.rename(entry, folder / entry.name)  # open files (a CSV log) follow the rename
        shutil.rmtree(old, ignore_errors=True)
    _clean_leftovers(folder)


def _siblings(folder: Path, kind: str) -> list[Path]:
    prefix = f".{folder.name}{kind}"
    if not folder.parent.is_dir():
        return []
    found = []
    for entry in folder.parent.iterdir():
        if entry.name.startswith(prefix):
            with contextlib.suppress(OSError):  # another process may remove it meanwhile
                found.append((entry.stat().st_mtime, entry))
    return [entry for _, entry in sorted(found, reverse=True)]


def _recover(folder: Path) -> None:
    """A save killed between its two renames leaves no ``folder`` but the old one aside: put it back."""
    if folder.exists():
        return
    for candidate in _siblings(folder, _OLD):
        if (candidate / CONFIG_NAME).is_file():
            os.rename(candidate, folder)
            return


def _clean_leftovers(folder: Path) -> None:
    """Staging and set-aside folders of saves that were killed (called with the writer lock held)."""
    for leftover in _siblings(folder, _NEW) + _siblings(folder, _OLD):
        shutil.rmtree(leftover, ignore_errors=True)


def read_checkpoint(
    path: str | os.PathLike, *, training_state: bool = False
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint folder; raise :class:`CheckpointError` naming what is wrong.

    With ``training_state=True`` the tensors of ``training_state.safetensors`` (when the folder has
    one) are returned too, under the prefix ``training_state.``. A reader that races a save retries
    until it sees one whole checkpoint.
    """
    folder = Path(path)
    deadline = time.monotonic() + 10.0
    while True:
        before = _stamp(folder)
        try:
            with _folder_lock(folder.absolute(), exclusive=False):
                return _read_once(folder, training_state)
        except (CheckpointError, OSError) as exc:
            raced = _stamp(folder) != before or bool(_siblings(folder.absolute(), _NEW))
            if raced and time.monotonic() < deadline:  # a writer without the lock (another OS) raced us
                time.sleep(0.01)
                continue
            aside = _siblings(folder.absolute(), _OLD)
            if not folder.exists() and aside:  # a save was killed between its renames
                return _read_once(aside[0], training_state)
            if isinstance(exc, OSError):
                raise CheckpointError(f"{folder} cannot be read: {exc}") from exc
            raise


def _stamp(folder: Path) -> tuple[int, int] | None:
    """Identifies one save's config.json: a save replaces the file (a new inode)."""
    try:
        stat = (folder / CONFIG_NAME).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _read_once(folder: Path, training_state: bool) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise CheckpointError(
                f"{folder} is not a latent-skills checkpoint: {needed.name} is missing "
                f"(a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME})."
            )
    try:
        meta = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path} is not valid JSON ({exc}); the checkpoint is damaged.") from exc
    if not isinstance(meta, dict) or "format_version" not in meta or "agent_type" not in meta:
        raise CheckpointError(
            f"{config_path} lacks format_version/agent_type: not a latent-skills checkpoint."
        )
    version = meta["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} has checkpoint format {version!r}, newer than this latent-skills reads "
            f"({FORMAT_VERSION}): upgrade with `pip install -U latent-skills`."
        )
    names = [WEIGHTS_NAME]
    if training_state and (folder / TRAINING_STATE_NAME).is_file():
        names.append(TRAINING_STATE_NAME)
    tensors: dict[str, torch.Tensor] = {}
    for name in names:
        data = (folder / name).read_bytes()  # hashed and parsed from one read: a racing save cannot slip in
        _verify_hash(folder, name, meta.get("files"), hashlib.sha256(data).hexdigest())
        try:
            loaded = load(data)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{folder / name} cannot be read ({exc}); the checkpoint is damaged."
            ) from exc
        prefix = "" if name == WEIGHTS_NAME else "training_state."
        tensors.update({prefix + key: t for key, t in loaded.items()})
    _check_finite(folder, tensors)
    return _migrate(folder, meta, tensors)


def _verify_hash(folder: Path, name: str, hashes: Any, actual: str) -> None:
    if hashes is None:  # written before hashes were recorded: nothing to compare with
        return
    if not isinstance(hashes, dict) or not isinstance(hashes.get(name), str):
        raise CheckpointError(
            f"{folder}/{CONFIG_NAME} records no hash for {name}; the checkpoint is damaged."
        )
    if actual != hashes[name]:
        raise CheckpointError(
            f"{folder / name} does not match the SHA-256 recorded in {CONFIG_NAME}: the file was "
            "changed or damaged after it was saved (re-download it, or save the agent again)."
        )


def _check_finite(folder: Path, tensors: dict[str, torch.Tensor]) -> None:
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise CheckpointError(
            f"{folder} holds non-finite (NaN or inf) values in {shown}: these weights cannot act; "
            "use an earlier checkpoint of the run."
        )


def _migrate(
    folder: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Bring an older-format checkpoint up to FORMAT_VERSION, one registered step at a time."""
    version = meta["format_version"]
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise CheckpointError(
                f"{folder} has checkpoint format {version}, which this latent-skills cannot read: it "
                f"reads format {FORMAT_VERSION} and migrates from {sorted(MIGRATIONS) or 'no older format'}."
            )
        meta, tensors = step(dict(meta), dict(tensors))
        version += 1
        meta["format_version"] = version
    return meta, tensors


def split_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    start = prefix + "."
    return {name[len(start) :]: t for name, t in tensors.items() if name.startswith(start)}
