"""Saving a made dataset under a Minari id, safely.

The id is checked before any work (:func:`check_dataset_id`): Minari's own check runs only after it has
created the dataset's folder, so a malformed id such as ``../../x/y-v0`` used to write outside the
datasets root and fail at the very end. The dataset is then written into a hidden staging folder inside
the root and moved into place only once it is complete (:func:`write_dataset`), so a failed or
interrupted collection leaves nothing under the id, and ``overwrite`` removes the old dataset only after
the new one is finished.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import minari

__all__ = ["DATASET_ID_FORM", "InvalidDatasetIdError", "check_dataset_id", "prepare_target", "write_dataset"]

_ROOT_VARIABLE = "MINARI_DATASETS_PATH"
_SEGMENT = r"[A-Za-z0-9_-]+"
_DATASET_ID_RE = re.compile(rf"(?:{_SEGMENT}/)*{_SEGMENT}-v[0-9]+")
DATASET_ID_FORM = (
    "NAME-vN or NAMESPACE/NAME-vN (namespaces may nest: A/B/NAME-vN; Minari wants a namespace of at least "
    "2 characters), each part made of letters, digits, '_' and '-', e.g. latent-skills/pointmaze/umaze-v0"
)
_STAGING_PREFIX = ".latent-skills-staging-"  # hidden: Minari's listings skip dot-folders


class InvalidDatasetIdError(ValueError):
    """A dataset id that is not of Minari's form or that would leave the datasets root."""


def _datasets_root() -> Path:
    """Minari's datasets root, as ``minari.storage.get_dataset_path`` finds it, without creating it."""
    value = os.environ.get(_ROOT_VARIABLE)
    return Path(value) if value is not None else Path.home() / ".minari" / "datasets"


def check_dataset_id(dataset_id: str) -> Path:
    """Raise :class:`InvalidDatasetIdError` unless ``dataset_id`` is a well-formed Minari id whose folder
    lies inside the datasets root; return that folder. Creates nothing.

    The accepted form (``namespace/name-vN`` or ``name-vN``, namespace segments and name of
    ``[A-Za-z0-9_-]``, and what Minari's ``parse_dataset_id`` accepts) excludes ``..``, absolute paths
    and empty segments; the resolved folder is checked against the resolved root as well (a symlinked
    namespace pointing elsewhere is refused too).
    """
    from minari.dataset.minari_dataset import parse_dataset_id

    message = f"invalid Minari dataset id {dataset_id!r}: expected {DATASET_ID_FORM}"
    if not isinstance(dataset_id, str) or not _DATASET_ID_RE.fullmatch(dataset_id):
        raise InvalidDatasetIdError(message)
    try:  # Minari's own rule too (it checks only after creating the folder)
        parse_dataset_id(dataset_id)
    except ValueError:
        raise InvalidDatasetIdError(message) from None
    root = _datasets_root()
    folder = root / dataset_id
    resolved_root, resolved = root.resolve(), folder.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise InvalidDatasetIdError(
            f"dataset id {dataset_id!r} resolves to {resolved}, outside the datasets root {resolved_root}"
        )
    return folder


def prepare_target(dataset_id: str, overwrite: bool) -> Path:
    """Check ``dataset_id`` (see :func:`check_dataset_id`) and that it is free unless ``overwrite``;
    return its folder. Meant to run before a collection, so nobody waits for a run that cannot be saved.

    Raises:
        InvalidDatasetIdError: a malformed id.
        FileExistsError: the id exists locally and ``overwrite`` is False.
    """
    folder = check_dataset_id(dataset_id)
    if folder.exists() and not overwrite:
        raise FileExistsError(
            f"Minari dataset {dataset_id!r} already exists at {folder}; pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )
    return folder


@contextlib.contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari at ``path`` (it reads ``MINARI_DATASETS_PATH`` at every call) for the block."""
    old = os.environ.get(_ROOT_VARIABLE)
    os.environ[_ROOT_VARIABLE] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ[_ROOT_VARIABLE]
        else:
            os.environ[_ROOT_VARIABLE] = old


def _ensure_namespace(dataset_id: str) -> None:
    """Create the id's namespace in the (real) root the way ``create_dataset_from_buffers`` would."""
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = dataset_id.rpartition("/")[0]
    if namespace and namespace not in list_local_namespaces():
        create_namespace(namespace)


def _move_into_place(staged: Path, target: Path, dataset_id: str, overwrite: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.rename(staged, target)
        return
    if not overwrite:  # it appeared while we were collecting
        raise FileExistsError(f"Minari dataset {dataset_id!r} appeared at {target} during the collection")
    old = target.parent / f".{target.name}.replaced-{uuid.uuid4().hex}"
    os.rename(target, old)
    try:
        os.rename(staged, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_dataset(
    dataset_id: str, write: Callable[[str], object], *, overwrite: bool = False
) -> minari.MinariDataset:
    """Run ``write(dataset_id)`` (which creates the dataset with Minari's usual functions) against a
    hidden staging root inside the datasets root, then move the finished dataset into place.

    Whatever happens inside ``write`` (an exception, Ctrl-C), the staging folder is removed and nothing
    appears under the id; an existing dataset (``overwrite``) is replaced only after ``write`` returned.
    Minari's root is switched through ``MINARI_DATASETS_PATH`` for the duration of ``write``: other
    threads of the process using Minari meanwhile would see the staging root.

    Returns:
        The dataset, loaded from its final place.
    """
    target = prepare_target(dataset_id, overwrite)
    root = _datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=root))
    try:
        with _minari_root(staging):
            write(dataset_id)
        staged = staging / dataset_id
        if not (staged / "data").is_dir():
            raise RuntimeError(f"writing {dataset_id!r} produced no Minari dataset at {staged}")
        _ensure_namespace(dataset_id)
        _move_into_place(staged, target, dataset_id, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return minari.load_dataset(dataset_id)
