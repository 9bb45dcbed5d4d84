"""Sharing checkpoints on the Hugging Face Hub, for any class that saves and loads the checkpoint format
(:mod:`latent_skills.checkpoint`): it knows nothing of agents, as huggingface_hub's ``ModelHubMixin``
knows nothing of the models that inherit it.

- :func:`upload_checkpoint` saves an object into a temporary folder and pushes ``config.json`` and
  ``model.safetensors`` in one commit, with whatever files a hook writes beside them (a model card, an
  evaluation, a video: the object's side supplies those).
- :func:`load_pretrained` loads a local checkpoint folder or a Hub repo id (downloaded into the Hub's
  cache, so it works offline once downloaded): only ``config.json`` and ``model.safetensors``, never
  anything else a repo holds.
- :class:`HubMixin` gives a class ``push_to_hub`` and ``from_pretrained`` over those two, with two
  hooks to override (``_hub_files``, ``_check_pretrained``).

huggingface_hub is imported inside the functions: importing this module does not pay for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

from latent_skills.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError

LIBRARY_NAME = "latent-skills"
# What load_pretrained downloads: the two files the checkpoint format names, nothing else (no card,
# no video, nothing a repo may add: never anything that could be a pickle, nor unbounded extras).
ALLOW_PATTERNS = [CONFIG_NAME, WEIGHTS_NAME]


class Saveable(Protocol):
    def save(self, path: str | Path) -> Path: ...


Loaded = TypeVar("Loaded")


@dataclass(frozen=True)
class HubTarget:
    """Where a push goes: the repo as the Hub names it (``owner/name``), the endpoint, the branch, and
    the library version recorded in the checkpoint being pushed."""

    repo_id: str
    endpoint: str
    branch: str
    library_version: str | None

    def file_url(self, name: str) -> str:
        """The URL the Hub serves file ``name`` of this push from."""
        return f"{self.endpoint}/{self.repo_id}/resolve/{quote(self.branch, safe='')}/{name}"


@dataclass(frozen=True)
class HubFiles:
    """What a push adds beside the checkpoint: files written into the push's folder (``names``), the
    commit message to use when none is given, and the files a push may leave out (``optional``: an
    older push's copy is deleted so the repo never shows stale results)."""

    names: list[str] = field(default_factory=list)
    commit_message: str = "Upload checkpoint"
    optional: tuple[str, ...] = ()


FilesHook = Callable[[Path, HubTarget], HubFiles]
CheckHook = Callable[[Path, str], None]


def upload_checkpoint(
    obj: Saveable,
    repo_id: str,
    *,
    write_files: FilesHook | None = None,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    endpoint: str | None = None,
) -> Any:
    """Push ``obj.save(...)`` to the Hub repo ``repo_id`` (created if needed) in one commit; return the
    ``huggingface_hub.CommitInfo`` (its URL; ``.pr_url`` with ``create_pr``).

    The repo (and the token) are checked first, so a rejected push fails before ``write_files(folder,
    target)`` runs (it may take minutes: an evaluation). ``revision`` pushes to that branch (created
    from ``main`` if needed); ``create_pr`` opens a pull request instead of committing to it.
    ``token`` defaults to the logged-in token; ``endpoint`` to ``HF_ENDPOINT``.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    with tempfile.TemporaryDirectory(prefix=f"{LIBRARY_NAME}-push-") as tmp:
        folder = Path(obj.save(tmp))
        library_version = json.loads((folder / CONFIG_NAME).read_text()).get("library_version")
        api = HfApi(
            endpoint=endpoint, token=token, library_name=LIBRARY_NAME, library_version=library_version
        )
        with _refusal_explained(repo_id):
            repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        target = repo_url.repo_id or repo_id  # "name" alone becomes "user/name" on the Hub
        if revision is not None and not revision.startswith("refs/pr/"):
            api.create_branch(target, branch=revision, exist_ok=True)
        where = HubTarget(target, api.endpoint, revision or "main", library_version)
        extra = write_files(folder, where) if write_files is not None else HubFiles()
        files = [CONFIG_NAME, WEIGHTS_NAME, *extra.names]
        remote = set(api.list_repo_files(target, revision=revision))
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(folder / n)) for n in files
        ]
        operations += [
            CommitOperationDelete(path_in_repo=n) for n in extra.optional if n in remote and n not in files
        ]
        with _refusal_explained(target):
            return api.create_commit(
                target,
                operations,
                commit_message=commit_message or extra.commit_message,
                revision=revision,
                create_pr=create_pr,
            )


@contextlib.contextmanager
def _refusal_explained(repo_id: str) -> Iterator[None]:
    """A refused token names the fixes, not only ``401 Unauthorized``."""
    from huggingface_hub.utils import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status not in (401, 403):
            raise
        raise HfHubHTTPError(
            f"the Hub refused the credentials for {repo_id} ({status} "
            f"{'Unauthorized' if status == 401 else 'Forbidden'}): log in with `hf auth login`, or pass "
            "a token with write access (token=... in Python, --token on the command line)",
            response=exc.response,
        ) from exc


def load_pretrained(
    cls: Any,
    repo_id_or_path: str | os.PathLike,
    *,
    check: CheckHook | None = None,
    revision: str | None = None,
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Any:
    """``cls.load(folder, device)`` of a checkpoint folder, or of a Hub repo id (``owner/name``)
    downloaded into the Hugging Face cache (``cache_dir``, default ``HF_HUB_CACHE``) at ``revision``
    (branch, tag or commit; default ``main``): only ``config.json`` and ``model.safetensors``. Once
    cached it loads without network, with ``local_files_only=True`` or ``HF_HUB_OFFLINE=1``;
    ``force_download=True`` downloads the files again. ``check(folder, repo_id)`` may refuse a
    downloaded checkpoint (by raising) before it is loaded.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        validate_repo_id,
    )

    path = Path(repo_id_or_path).expanduser()
    if path.is_dir():
        return cls.load(path, device)
    name = str(repo_id_or_path)
    if path.exists():
        raise CheckpointError(f"{name} is a file: pass the checkpoint folder holding {CONFIG_NAME}.")
    try:
        validate_repo_id(name)
    except HFValidationError as exc:
        raise CheckpointError(
            f"{name!r} is neither a checkpoint folder nor a Hub repo id ('owner/name'): {exc}"
        ) from exc
    at = f" at revision {revision!r}" if revision else ""
    where = f"Hub repo {name!r}{at}"
    try:
        folder = snapshot_download(
            name,
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
            local_files_only=local_files_only,
            token=token,
            force_download=force_download,
            allow_patterns=ALLOW_PATTERNS,
            library_name=LIBRARY_NAME,
        )
    except RevisionNotFoundError as exc:
        raise CheckpointError(f"{where}: no such revision (a branch, tag or commit of the repo).") from exc
    except RepositoryNotFoundError as exc:
        raise CheckpointError(
            f"{name!r} is not a local folder, and the Hub has no model repo {name!r} you can read "
            "(a private repo needs token=... or `hf auth login`)."
        ) from exc
    except LocalEntryNotFoundError as exc:
        raise CheckpointError(
            f"{name!r} is not a local folder, and as a Hub repo{at} it is not in the Hugging Face "
            "cache while the Hub cannot be reached (offline, HF_HUB_OFFLINE=1 or "
            "local_files_only=True). Connect once to download it (then it loads offline), or pass "
            "a local checkpoint folder."
        ) from exc
    if check is not None:
        check(Path(folder), name)
    try:
        return cls.load(folder, device)
    except CheckpointError as exc:
        raise CheckpointError(f"{where}: {exc}") from exc


class HubMixin:
    """``push_to_hub`` and ``from_pretrained`` for a class with ``save(path) -> folder`` and a
    classmethod ``load(folder, device)`` writing and reading :mod:`latent_skills.checkpoint`'s format.

    Override ``_hub_files`` to push more than the checkpoint (a model card, an evaluation) and
    ``_check_pretrained`` to refuse a downloaded checkpoint before it is loaded."""

    def _hub_files(self, folder: Path, target: HubTarget) -> HubFiles:
        """Files to write into ``folder`` and push beside the checkpoint (none by default)."""
        return HubFiles(commit_message=f"Upload {type(self).__name__}")

    @classmethod
    def _check_pretrained(cls, folder: Path, repo_id: str) -> None:
        """Refuse (raise) a downloaded checkpoint this class should not load; accepts all by default."""

    def push_to_hub(self, repo_id: str, **options: Any) -> Any:
        """Push this object's checkpoint to ``repo_id`` in one commit (:func:`upload_checkpoint`)."""
        return upload_checkpoint(cast("Saveable", self), repo_id, write_files=self._hub_files, **options)

    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | os.PathLike, **options: Any) -> Any:
        """Load a checkpoint folder or Hub repo as this class (:func:`load_pretrained`)."""
        return load_pretrained(cls, repo_id_or_path, check=cls._check_pretrained, **options)


def push_to_hub(obj: Any, repo_id: str, **options: Any) -> Any:
    """``obj.push_to_hub(repo_id, **options)``: the function form of the method (an agent's takes the
    options of :func:`latent_skills.agents.sharing.push_to_hub`)."""
    return obj.push_to_hub(repo_id, **options)


def from_pretrained(cls: type[Loaded], repo_id_or_path: str | os.PathLike, **options: Any) -> Loaded:
    """``cls.from_pretrained(repo_id_or_path, **options)``: the function form of the class method."""
    return cls.from_pretrained(repo_id_or_path, **options)  # type: ignore[attr-defined]


def write_learning_curve(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> bool:
    """Plot each stage's ``STAGE/loss`` column of an SB3 ``progress.csv`` into ``png_path``
    (:func:`latent_skills.plots.plot_learning_curves`).

    Returns False (and writes nothing) when matplotlib is not installed (it is not a dependency) or
    the file cannot be read or has no loss columns: a push goes on without the curve.
    """
    from latent_skills.plots import plot_learning_curves

    try:
        plot_learning_curves(csv_path, png_path)
    except (ImportError, OSError, ValueError):
        return False
    return True
