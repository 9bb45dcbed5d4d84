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

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

FORMAT_VERSION = 6
CONFIG_NAME = "config.json"
CONFIG_HASH_KEY = "config_sha256"  # the hash of config.json's canonical form, this key left out
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
# already shared (on the Hub or on disk) keep loading. A migration is also run on the tensor files'
# headers (the same dict with TensorInfo values) before any tensor is read: it may rename or drop
# keys freely, and must pass values it does not make through untouched.
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


def _format_5_to_6(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Format 6 adds ``config_sha256`` (config.json's own hash). Older checkpoints have none, so their
    config.json is checked only for what it must hold (file hashes from format 2 on); loading them
    otherwise changes nothing."""
    return meta, tensors


MIGRATIONS[1] = _format_1_to_2
MIGRATIONS[2] = _format_2_to_3
MIGRATIONS[3] = _format_3_to_4
MIGRATIONS[4] = _format_4_to_5
MIGRATIONS[5] = _format_5_to_6


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded as asked."""


# The most bytes a config.json may have (a real one has a few KB) and a safetensors header may have
# (safetensors' own limit).
MAX_CONFIG_BYTES = 16 << 20
MAX_HEADER_BYTES = 100 << 20
# Tensors whose infinite entries mean "unbounded" rather than "diverged": the action bounds a decoder
# clamps to, -inf allowed in a lower bound, +inf in an upper one (an unbounded Box action space).
BOUND_TENSORS = {"action_low": -math.inf, "action_high": math.inf}
_DTYPES = {
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
            meta = seal_config({"format_version": FORMAT_VERSION, **meta, "files": hashes})
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
            with _folder_lock(folder.absolute(), exclusive=False):
                return _read_once(folder, training_state, check)
        except (CheckpointError, OSError) as exc:
            raced = _stamp(folder) != before or bool(_siblings(folder.absolute(), _NEW))
            if raced and time.monotonic() < deadline:  # a writer without the lock (another OS) raced us
                time.sleep(0.01)
                continue
            aside = _siblings(folder.absolute(), _OLD)
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
            check(*_migrate(folder, dict(meta), headers))  # type: ignore[arg-type]
        tensors: dict[str, torch.Tensor] = {}
        for name, (handle, header, infos) in opened.items():
            loaded = _read_tensors(folder / name, handle, header, infos, meta.get("files"))
            tensors.update({_prefixed(name, key): t for key, t in loaded.items()})
    _check_finite(folder, tensors)
    return _migrate(folder, meta, tensors)


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
            "it with latent_skills.hub.checkpoint.seal_config)."
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
            dtype = _DTYPES[entry["dtype"]]
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
