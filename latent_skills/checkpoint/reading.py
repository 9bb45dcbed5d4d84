"""Reading a checkpoint folder strictly: config.json verified, tensor headers checked before any data
is read, every file hashed as it is read, non-finite weights refused (see the package doc)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .format import (
    BOUND_TENSORS,
    CONFIG_HASH_KEY,
    CONFIG_NAME,
    DTYPES,
    MAX_CONFIG_BYTES,
    MAX_HEADER_BYTES,
    TRAINING_STATE_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    TensorInfo,
    config_digest,
)
from .migrations import FORMAT_VERSION, migrate
from .writing import NEW, OLD, folder_lock, siblings

Check = Callable[[dict[str, Any], dict[str, TensorInfo]], None]


def read_checkpoint(
    path: str | os.PathLike, *, training_state: bool = False, check: Check | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint folder; raise :class:`CheckpointError` naming what is wrong.

    With ``training_state=True`` the tensors of ``training_state.safetensors`` (when the folder has
    one) are returned too, under the prefix ``training_state.``. ``check(meta, headers)``, if given,
    sees the (migrated) config and every tensor's :class:`TensorInfo` after config.json and the
    headers are verified and before any tensor data is read: it may refuse by raising. A reader that
    races a save retries until it sees one whole checkpoint.
    """
    folder = Path(path)
    deadline = time.monotonic() + 10.0
    while True:
        before = _stamp(folder)
        try:
            with folder_lock(folder.absolute(), exclusive=False):
                return _read_once(folder, training_state, check)
        except (CheckpointError, OSError) as exc:
            raced = _stamp(folder) != before or bool(siblings(folder.absolute(), NEW))
            if raced and time.monotonic() < deadline:  # a writer without the lock (another OS) raced us
                time.sleep(0.01)
                continue
            aside = siblings(folder.absolute(), OLD)
            if not folder.exists() and aside:  # a save was killed between its renames
                return _read_once(aside[0], training_state, check)
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


def _read_once(
    folder: Path, training_state: bool, check: Check | None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise CheckpointError(
                f"{folder} is not a latent-skills checkpoint: {needed.name} is missing "
                f"(a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME})."
            )
    meta = read_config(folder)
    names = [WEIGHTS_NAME]
    if training_state and (folder / TRAINING_STATE_NAME).is_file():
        names.append(TRAINING_STATE_NAME)
    with contextlib.ExitStack() as stack:
        # every file opened once: its header checked, then hashed and read from the same handle, so a
        # racing save (which replaces files, never rewrites them) cannot slip in between
        opened: dict[str, tuple[io.BufferedReader, bytes, dict[str, TensorInfo]]] = {}
        for name in names:
            handle = stack.enter_context(open(folder / name, "rb"))
            header, infos = _read_header(handle, folder / name)
            opened[name] = handle, header, infos
        if check is not None:
            headers = {
                _prefixed(name, key): info
                for name, (_, _, infos) in opened.items()
                for key, info in infos.items()
            }
            check(*migrate(folder, dict(meta), headers))  # type: ignore[arg-type]
        tensors: dict[str, torch.Tensor] = {}
        for name, (handle, header, infos) in opened.items():
            loaded = _read_tensors(folder / name, handle, header, infos, meta.get("files"))
            tensors.update({_prefixed(name, key): t for key, t in loaded.items()})
    _check_finite(folder, tensors)
    return migrate(folder, meta, tensors)


def _prefixed(name: str, key: str) -> str:
    return key if name == WEIGHTS_NAME else "training_state." + key


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's config.json, parsed and verified (its own hash, its file-hash table, its format
    version), before migration; :class:`CheckpointError` where it is damaged or not one."""
    config_path = Path(folder) / CONFIG_NAME
    with open(config_path, "rb") as handle:
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"{config_path} is over {MAX_CONFIG_BYTES >> 20} MB (a checkpoint's config has a few KB): "
            "it is damaged or not a latent-skills checkpoint."
        )
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CheckpointError(
            f"{config_path} is not valid JSON ({reason}); the checkpoint is damaged."
        ) from exc
    if not isinstance(meta, dict) or "format_version" not in meta or "agent_type" not in meta:
        raise CheckpointError(
            f"{config_path} lacks format_version/agent_type: not a latent-skills checkpoint "
            "(or a damaged one)."
        )
    version = meta["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{config_path} has format_version {version!r}: the checkpoint is damaged.")
    claimed = meta.get(CONFIG_HASH_KEY)
    intact = isinstance(claimed, str) and claimed == config_digest(meta)
    if version > FORMAT_VERSION:
        damaged = "" if intact else " (or it is damaged: its config_sha256 does not match)"
        raise CheckpointError(
            f"{Path(folder)} has checkpoint format {version!r}, newer than this latent-skills reads "
            f"({FORMAT_VERSION}): upgrade with `pip install -U latent-skills`{damaged}."
        )
    if claimed is not None and not intact:
        raise CheckpointError(
            f"{config_path} does not match its {CONFIG_HASH_KEY}: the file was changed or damaged after "
            "it was saved (re-download it, or save the agent again; to edit a config on purpose, write "
            "it with latent_skills.checkpoint.seal_config)."
        )
    if claimed is None and version >= 6:
        raise CheckpointError(
            f"{config_path} records no {CONFIG_HASH_KEY} (format {version} always does): the checkpoint "
            "is damaged."
        )
    if version >= 2 and not isinstance(meta.get("files"), dict):
        raise CheckpointError(
            f"{config_path} records no file hashes ('files'; format {version} always does): the "
            "checkpoint is damaged."
        )
    return meta


def _read_header(handle: io.BufferedReader, path: Path) -> tuple[bytes, dict[str, TensorInfo]]:
    """The header of a safetensors file (its raw bytes and every tensor's TensorInfo), checked against
    the file's size: dtypes known, shapes that fit their byte ranges, ranges that tile the data."""
    size = os.fstat(handle.fileno()).st_size

    def damaged(why: str) -> CheckpointError:
        return CheckpointError(f"{path} cannot be read ({why}); the checkpoint is damaged.")

    prefix = handle.read(8)
    if len(prefix) < 8:
        raise damaged("shorter than a safetensors header")
    length = int.from_bytes(prefix, "little")
    if length > min(MAX_HEADER_BYTES, size - 8):
        raise damaged(f"a header of {length} bytes in a file of {size}")
    header = handle.read(length)
    try:
        entries = json.loads(header.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise damaged(f"its header is not JSON: {type(exc).__name__}") from exc
    if not isinstance(entries, dict):
        raise damaged("its header is not a JSON object")
    entries.pop("__metadata__", None)
    data_start, infos = 8 + length, {}
    for key, entry in entries.items():
        try:
            dtype = DTYPES[entry["dtype"]]
            shape = tuple(entry["shape"])
            begin, end = entry["data_offsets"]
            ok = all(type(n) is int and n >= 0 for n in (*shape, begin, end))
        except (KeyError, TypeError, ValueError):
            raise damaged(f"tensor {key!r} has a malformed header entry") from None
        if not ok or end - begin != math.prod(shape) * dtype.itemsize:
            raise damaged(f"tensor {key!r}: shape {list(shape)} does not fit its byte range")
        infos[key] = TensorInfo(dtype, shape, data_start + begin, data_start + end)
    position = data_start
    for info in sorted(infos.values(), key=lambda i: (i.start, i.end)):
        if info.start != position:
            raise damaged("its tensors overlap or leave gaps")
        position = info.end
    if position != size:
        raise damaged(f"its tensors end at byte {position}, the file at {size}")
    return prefix + header, infos


def _read_tensors(
    path: Path, handle: io.BufferedReader, header: bytes, infos: dict[str, TensorInfo], hashes: Any
) -> dict[str, torch.Tensor]:
    """The tensors of an open safetensors file, hashed as they are read (never the file whole)."""
    digest = hashlib.sha256(header)
    tensors = {}
    handle.seek(len(header))
    for key, info in sorted(infos.items(), key=lambda item: item[1].start):
        buffer = bytearray(info.nbytes)
        view = memoryview(buffer)
        done = 0
        while done < info.nbytes:
            n = handle.readinto(view[done : done + (16 << 20)])
            if not n:
                raise CheckpointError(f"{path} cannot be read (it ended early); the checkpoint is damaged.")
            done += n
        digest.update(buffer)
        tensor = (
            torch.frombuffer(buffer, dtype=info.dtype) if info.nbytes else torch.empty(0, dtype=info.dtype)
        )
        tensors[key] = tensor.reshape(info.shape)
    if handle.read(1):
        raise CheckpointError(f"{path} grew while it was read; read it again.")
    _verify_hash(path.parent, path.name, hashes, digest.hexdigest())
    return tensors


def _verify_hash(folder: Path, name: str, hashes: Any, actual: str) -> None:
    if hashes is None:  # format 1: written before hashes were recorded (read_config checks the version)
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
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not _finite(name, t)]
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise CheckpointError(
            f"{folder} holds non-finite (NaN or inf) values in {shown}: these weights cannot act; "
            "use an earlier checkpoint of the run."
        )


def _finite(name: str, tensor: torch.Tensor) -> bool:
    """Every entry finite, but for an action bound, where its own infinity means unbounded."""
    finite = torch.isfinite(tensor)
    unbounded = BOUND_TENSORS.get(name.rsplit(".", 1)[-1])
    if unbounded is not None:
        finite |= tensor == unbounded
    return bool(finite.all())
