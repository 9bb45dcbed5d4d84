"""An agent on the Hugging Face Hub: what an agent's push holds beside its checkpoint (the model card,
an evaluation, a learning curve, a replay video) and how ``from_pretrained`` refuses a checkpoint of
another agent type. The Hub mechanics are :mod:`latent_skills.hub`'s, which knows nothing of agents.

A pushed repo holds ``config.json`` and ``model.safetensors`` (exactly what ``agent.save`` writes),
``README.md`` (the model card), and optionally ``eval_results.json``, ``learning_curve.png`` and
``replay.mp4``. Nothing is pickled; ``from_pretrained`` downloads only ``config.json`` and
``model.safetensors``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latent_skills.checkpoint import CheckpointError, read_config
from latent_skills.hub.mixin import (
    HubFiles,
    HubTarget,
    load_pretrained,
    upload_checkpoint,
    write_learning_curve,
)

from .card import model_card
from .registry import agent_class

if TYPE_CHECKING:
    from .base import LatentSkillAgent

CARD_NAME = "README.md"
EVAL_RESULTS_NAME = "eval_results.json"
LEARNING_CURVE_NAME = "learning_curve.png"
VIDEO_NAME = "replay.mp4"
# Files a push may leave out; an older push's copy is deleted so the repo never shows stale results.
OPTIONAL_FILES = (EVAL_RESULTS_NAME, LEARNING_CURVE_NAME, VIDEO_NAME)
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
) -> Any:
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
    record = agent.spec.eval_env
    if record is not None and ((eval_results is None and eval_episodes != 0) or video is not False):
        record.registered_spec("this agent")  # an env the checkpoint may not build: refused before the Hub

    def write_files(folder: Path, target: HubTarget) -> HubFiles:
        results, not_evaluated = _evaluation(agent, eval_episodes, eval_envs, eval_results)
        files = []
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
            target.repo_id,
            results,
            learning_curve=LEARNING_CURVE_NAME if LEARNING_CURVE_NAME in files else None,
            library_version=target.library_version,
            video=target.file_url(VIDEO_NAME) if VIDEO_NAME in files else None,
            reproduce=reproduce,
            not_evaluated=not_evaluated,
        )
        card.save(folder / CARD_NAME)
        files.append(CARD_NAME)
        return HubFiles(files, _message(agent, results), OPTIONAL_FILES)

    return upload_checkpoint(
        agent,
        repo_id,
        write_files=write_files,
        token=token,
        private=private,
        commit_message=commit_message,
        revision=revision,
        create_pr=create_pr,
        endpoint=endpoint,
    )


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
        warnings.warn(f"pushing without replay.mp4: {exc}", stacklevel=5)
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

    def check_class(folder: Path, repo_id: str) -> None:
        _check_class(cls, folder, repo_id)

    agent: LatentSkillAgent = load_pretrained(
        cls,
        repo_id_or_path,
        check=check_class,
        revision=revision,
        device=device,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        force_download=force_download,
    )
    return agent


def _check_class(cls: type[LatentSkillAgent], folder: Path, repo_id: str) -> None:
    """A Hub-flavoured version of ``load``'s wrong-class error: name the class and the call to use."""
    try:
        kind = read_config(folder).get("agent_type")
    except (OSError, CheckpointError):
        return  # load() reports a missing or damaged config.json
    try:
        saved = agent_class(str(kind))
    except ValueError:
        return  # load() reports an unknown agent type
    # cls is a LatentSkillAgent, so .base is loaded: read from there, not imported (.base imports this)
    any_agent = sys.modules[f"{__package__}.base"].LatentSkillAgent
    if cls is not any_agent and saved is not cls:
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
