"""Writing a checkpoint folder whole: files staged in a sibling folder that then replaces the target,
writers taking turns under a lock on the parent folder (see the package doc)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .format import (
    CHECKPOINT_FILES,
    CONFIG_NAME,
    TRAINING_STATE_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    file_sha256,
    seal_config,
)
from .migrations import FORMAT_VERSION

NEW, OLD = ".new-", ".old-"  # sibling folders of a save in progress: .NAME.new-UUID, .NAME.old-UUID


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
    staging = folder.parent / f".{folder.name}{NEW}{uuid.uuid4().hex}"
    files = {WEIGHTS_NAME: tensors}
    if training_tensors is not None:
        files[TRAINING_STATE_NAME] = training_tensors
    # the lock covers the staging folder too: one found while holding it is a killed save's leftover
    with folder_lock(folder, exclusive=True):
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
            meta = seal_config({"format_version": FORMAT_VERSION, **meta, "files": hashes})
            (staging / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
            _swap_in(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return folder


@contextlib.contextmanager
def folder_lock(folder: Path, exclusive: bool) -> Iterator[None]:
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
        old = folder.parent / f".{folder.name}{OLD}{uuid.uuid4().hex}"
        os.rename(folder, old)
    os.rename(staging, folder)
    if old is not None:
        for entry in old.iterdir():
            if entry.name not in CHECKPOINT_FILES and not (folder / entry.name).exists():
                os.rename(entry, folder / entry.name)  # open files (a CSV log) follow the rename
        shutil.rmtree(old, ignore_errors=True)
    _clean_leftovers(folder)


def siblings(folder: Path, kind: str) -> list[Path]:
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
    for candidate in siblings(folder, OLD):
        if (candidate / CONFIG_NAME).is_file():
            os.rename(candidate, folder)
            return


def _clean_leftovers(folder: Path) -> None:
    """Staging and set-aside folders of saves that were killed (called with the writer lock held)."""
    for leftover in siblings(folder, NEW) + siblings(folder, OLD):
        shutil.rmtree(leftover, ignore_errors=True)
