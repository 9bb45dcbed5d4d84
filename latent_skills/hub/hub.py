"""Share agents on the Hugging Face Hub: ``push_to_hub`` uploads a checkpoint with its model card in
one commit; ``from_pretrained`` loads a local folder or a Hub repo (through the Hub's cache, so it
works offline once downloaded).

A pushed repo holds ``config.json`` and ``model.safetensors`` (exactly what ``agent.save`` writes),
``README.md`` (the model card), and optionally ``eval_results.json``, ``learning_curve.png`` and
``replay.mp4``. Nothing is pickled; ``from_pretrained`` downloads only ``config.json`` and
``model.safetensors``.

huggingface_hub is imported inside the functions: ``import latent_skills`` does not pay for it.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .card import LIBRARY_NAME, model_card
from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError, read_config

if TYPE_CHECKING:
    from latent_skills.agents import LatentSkillAgent

CARD_NAME = "README.md"
EVAL_RESULTS_NAME = "eval_results.json"
LEARNING_CURVE_NAME = "learning_curve.png"
VIDEO_NAME = "replay.mp4"
# Files a push may leave out; an older push's copy is deleted so the repo never shows stale results.
OPTIONAL_FILES = (EVAL_RESULTS_NAME, LEARNING_CURVE_NAME, VIDEO_NAME)
# What from_pretrained downloads: the two files the checkpoint format names, nothing else (no card,
# no video, nothing a repo may add: never anything that could be a pickle, nor unbounded extras).
ALLOW_PATTERNS = [CONFIG_NAME, WEIGHTS_NAME]
# Episodes push_to_hub evaluates when not told, as huggingface_sb3's package_to_hub.
DEFAULT_EVAL_EPISODES = 10
# Frames of the replay video at most (huggingface_sb3's video_length).
DEFAULT_VIDEO_LENGTH = 1000


def push_to_hub(
    agent: LatentSkillAgent,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    eval_episodes: int | None = None,
    eval_envs: int = 10,
    eval_results: dict[str, Any] | None = None,
    video: bool | None = None,
    video_length: int = DEFAULT_VIDEO_LENGTH,
    reproduce: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    endpoint: str | None = None,
    progress_csv: str | os.PathLike | None = None,
) -> str:
    """Upload ``agent`` to the Hub repo ``repo_id`` (created if needed) in one commit; return the
    commit's URL (a ``huggingface_hub.CommitInfo``: ``.pr_url`` is the pull request's with ``create_pr``).

    The commit holds ``config.json`` + ``model.safetensors`` (as ``agent.save`` writes them), a
    ``README.md`` model card, and:

    - ``eval_results.json``: the agent is first evaluated on its dataset's evaluation env
      (``agent.evaluate(n_episodes=eval_episodes, n_envs=eval_envs)``), by default for
      ``DEFAULT_EVAL_EPISODES`` (10) episodes where that env is recorded; the results also go into the
      card's model-index. ``eval_episodes=0`` skips it (the card then says it was not evaluated);
      ``eval_results`` passes results already measured (``agent.evaluate``'s dict) instead.
    - ``replay.mp4``: one evaluation episode (at most ``video_length`` frames), shown in the card.
      ``video=None`` records it where the ``video`` extra is installed and the env renders here (with a
      warning where rendering fails), ``True`` requires it (:class:`VideoUnavailable` otherwise),
      ``False`` skips it.
    - ``learning_curve.png``: ``progress_csv`` (default: the CSV file of the agent's SB3 logger, when
      it has one) plotted where matplotlib is installed.

    ``reproduce`` is the command the card gives to train it again (default: a ``latent-skills train``
    command with the agent's preset and config). ``revision`` pushes to that branch (created from
    ``main`` if needed); ``create_pr`` opens a pull request instead of committing to the branch.
    ``token`` defaults to the logged-in token; ``endpoint`` to ``HF_ENDPOINT``.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    record = agent.spec.eval_env
    if record is not None and ((eval_results is None and eval_episodes != 0) or video is not False):
        record.registered_spec("this agent")  # an env the checkpoint may not build: refused before the Hub
    with tempfile.TemporaryDirectory(prefix="latent-skills-push-") as tmp:
        folder = Path(agent.save(tmp))
        library_version = json.loads((folder / CONFIG_NAME).read_text()).get("library_version")
        api = HfApi(
            endpoint=endpoint, token=token, library_name=LIBRARY_NAME, library_version=library_version
        )
        # the repo (and the token) first: a rejected push fails before minutes of evaluation
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        target = repo_url.repo_id or repo_id  # "name" alone becomes "user/name" on the Hub
        if revision is not None and not revision.startswith("refs/pr/"):
            api.create_branch(target, branch=revision, exist_ok=True)
        branch = revision or "main"

        results, not_evaluated = _evaluation(agent, eval_episodes, eval_envs, eval_results)
        files = [CONFIG_NAME, WEIGHTS_NAME]
        if results is not None:
            (folder / EVAL_RESULTS_NAME).write_text(json.dumps(results, indent=2) + "\n")
            files.append(EVAL_RESULTS_NAME)
        csv_path = progress_csv if progress_csv is not None else _logger_csv(agent)
        if csv_path is not None and write_learning_curve(csv_path, folder / LEARNING_CURVE_NAME):
            files.append(LEARNING_CURVE_NAME)
        if _record_replay(agent, folder / VIDEO_NAME, video, video_length):
            files.append(VIDEO_NAME)
        card = model_card(
            agent,
            target,
            results,
            learning_curve=LEARNING_CURVE_NAME if LEARNING_CURVE_NAME in files else None,
            library_version=library_version,
            video=f"{api.endpoint}/{target}/resolve/{quote(branch, safe='')}/{VIDEO_NAME}"
            if VIDEO_NAME in files
            else None,
            reproduce=reproduce,
            not_evaluated=not_evaluated,
        )
        card.save(folder / CARD_NAME)
        files.append(CARD_NAME)

        remote = set(api.list_repo_files(target, revision=revision))
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(folder / n)) for n in files
        ]
        operations += [
            CommitOperationDelete(path_in_repo=n) for n in OPTIONAL_FILES if n in remote and n not in files
        ]
        info = api.create_commit(
            target,
            operations,
            commit_message=commit_message or _message(agent, results),
            revision=revision,
            create_pr=create_pr,
        )
    return info


def _evaluation(
    agent: LatentSkillAgent, episodes: int | None, n_envs: int, given: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The results to publish, or None and why there are none (said in the card)."""
    if given is not None:
        return {**given, "dataset_id": agent.spec.dataset_id, "env_id": agent.spec.env_id}, None
    if episodes is None:
        if agent.spec.eval_env_spec is None:
            return None, "no evaluation env is recorded with it"
        episodes = DEFAULT_EVAL_EPISODES
    if episodes == 0:
        return None, "eval_episodes=0"
    if episodes < 0:
        raise ValueError(f"eval_episodes must be ≥ 0, got {episodes}")
    results = agent.evaluate(n_episodes=episodes, n_envs=max(1, min(n_envs, episodes)))
    results.update(dataset_id=agent.spec.dataset_id, env_id=agent.spec.env_id)
    return results, None


def _record_replay(agent: LatentSkillAgent, path: Path, video: bool | None, length: int) -> bool:
    """Record the replay video for a push; False where it is skipped (see ``push_to_hub``'s ``video``)."""
    if video is False:
        return False
    from latent_skills.envs.video import VideoUnavailable, record_video, video_dependencies_missing

    if video is None and (agent.spec.eval_env_spec is None or video_dependencies_missing()):
        return False  # the extra is optional: no video, no warning
    try:
        record_video(agent, path, episodes=1, video_length=length)
    except VideoUnavailable as exc:
        if video:
            raise
        warnings.warn(f"pushing without replay.mp4: {exc}", stacklevel=3)
        return False
    return True


def from_pretrained(
    cls: type[LatentSkillAgent],
    repo_id_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> LatentSkillAgent:
    """Load an agent from a checkpoint folder or a Hub repo id (``owner/name``) as class ``cls``
    (``LatentSkillAgent`` picks the class from the checkpoint).

    A repo is downloaded into the Hugging Face cache (``cache_dir``, default ``HF_HUB_CACHE``) at
    ``revision`` (branch, tag or commit; default ``main``): only ``config.json`` and
    ``model.safetensors``. Once cached it loads without network, with
    ``local_files_only=True`` or ``HF_HUB_OFFLINE=1``; ``force_download=True`` downloads the files
    again even where they are cached. Loading is strict (``cls.load``).
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
    _check_class(cls, Path(folder), name)
    try:
        return cls.load(folder, device)
    except CheckpointError as exc:
        raise CheckpointError(f"{where}: {exc}") from exc


def _check_class(cls: type[LatentSkillAgent], folder: Path, repo_id: str) -> None:
    """A Hub-flavoured version of ``load``'s wrong-class error: name the class and the call to use."""
    try:
        kind = read_config(folder).get("agent_type")
    except (OSError, CheckpointError):
        return  # load() reports a missing or damaged config.json
    from latent_skills.agents import LatentSkillAgent, agent_class

    try:
        saved = agent_class(str(kind))
    except ValueError:
        return  # load() reports an unknown agent type
    if cls is not LatentSkillAgent and saved is not cls:
        raise CheckpointError(
            f"Hub repo {repo_id!r} holds a {kind} agent, not a {cls.__name__}: load it with "
            f"{kind}.from_pretrained({repo_id!r}) or latent_skills.load_agent(...)."
        )


def _message(agent: LatentSkillAgent, results: dict[str, Any] | None) -> str:
    message = f"Upload {type(agent).__name__} trained on {agent.spec.dataset_id or 'an offline dataset'}"
    if results is not None:
        message += f" (mean return {results['mean_return']:.2f} over {results['n_episodes']} episodes)"
    return message


def _logger_csv(agent: LatentSkillAgent) -> Path | None:
    """The progress.csv the agent's SB3 logger writes, if it writes one."""
    for fmt in getattr(getattr(agent, "logger", None), "output_formats", []):
        name = getattr(getattr(fmt, "file", None), "name", None)
        if isinstance(name, str) and name.endswith(".csv") and Path(name).is_file():
            return Path(name)
    return None


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
