"""Training logs through Stable-Baselines3's logger: CSV, JSON, TensorBoard and Weights & Biases.

    from latent_skills.loggers import configure_logger
    agent.set_logger(configure_logger("runs/ldcq/logs", ["csv", "tensorboard", "wandb"], agent=agent))

TensorBoard is SB3's own ``tensorboard`` format (extra ``latent-skills[tensorboard]``); W&B is
:class:`WandbOutputFormat`, an SB3 ``KVWriter`` that calls ``wandb.log`` (extra ``latent-skills[wandb]``;
``WANDB_MODE=offline`` works without an account). With ``agent=`` the agent's config is logged once, as
hyperparameters, in every format: ``config.json`` beside ``progress.csv``, TensorBoard's HPARAMS tab
(SB3's :class:`HParam`), the W&B run's config. Close the logger (``logger.close()``) when training is
over: it flushes TensorBoard and finishes the W&B run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latent_skills._lazy import lazy_exports

if TYPE_CHECKING:
    from stable_baselines3.common.logger import KVWriter, Logger

    from latent_skills._wandb_writer import WandbOutputFormat

# Stable-Baselines3 (and torch with it) is imported when a logger is made, not with this module: the
# command line checks --log with FORMATS and require_formats before anything heavy loads.
__getattr__, __dir__ = lazy_exports(__name__, {"WandbOutputFormat": "latent_skills._wandb_writer"}, globals())

__all__ = ["FORMATS", "MissingExtraError", "WandbOutputFormat", "configure_logger", "require_formats"]

FORMATS = ("csv", "json", "log", "stdout", "tensorboard", "wandb")
WANDB_RUN_ID = "wandb-run-id"  # in the log folder: a resumed run logs on to the same W&B run


class MissingExtraError(ImportError):
    """An optional package a log format needs is not installed; the message names the extra."""


def _missing(extra: str, what: str) -> MissingExtraError:
    return MissingExtraError(f'{what} needs the {extra!r} package: pip install "latent-skills[{extra}]"')


def require_formats(formats: Sequence[str]) -> None:
    """Check that ``formats`` are known and their optional packages installed (before a long setup):
    a ValueError, or a :class:`MissingExtraError` naming the extra to install."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown log formats {unknown}: choose from {', '.join(FORMATS)}")
    if "tensorboard" in formats:
        try:
            import torch.utils.tensorboard  # noqa: F401 - needs the tensorboard package
        except ImportError as exc:
            raise _missing("tensorboard", "--log tensorboard") from exc
    if "wandb" in formats:
        try:
            import wandb  # noqa: F401
        except ImportError as exc:
            raise _missing("wandb", "--log wandb") from exc


def configure_logger(
    folder: str | os.PathLike,
    formats: Sequence[str] = ("csv",),
    *,
    agent: Any = None,
    append: bool = False,
    wandb_project: str | None = None,
) -> Logger:
    """An SB3 :class:`Logger` writing ``formats`` (any of :data:`FORMATS`) under ``folder``.

    ``agent``: log its config once as hyperparameters (see the module doc). ``append``: continue a
    run's logs (``progress.csv`` grows, the W&B run whose id ``folder`` records goes on).
    ``wandb_project``: default ``$WANDB_PROJECT``, else ``latent-skills``; the W&B files go to
    ``folder/wandb``. A missing optional package is a :class:`MissingExtraError` naming the extra.
    """
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, make_output_format

    require_formats(formats)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hparams = _hyperparameters(agent) if agent is not None else None
    writers: list[KVWriter] = []
    for kind in dict.fromkeys(formats):  # in order, each once
        if kind == "csv" and append:
            from latent_skills.agents.resume import append_csv_logger

            writers.extend(append_csv_logger(folder).output_formats)
        elif kind == "tensorboard":
            writers.append(TensorBoardOutputFormat(str(folder)))
        elif kind == "wandb":
            writers.append(_wandb_writer(folder, hparams, append, wandb_project))
        else:
            writers.append(make_output_format(kind, str(folder)))
    logger = Logger(str(folder), writers)
    if hparams is not None:
        if "csv" in formats:
            (folder / "config.json").write_text(json.dumps(hparams, indent=2) + "\n")
        _log_hparams(logger, hparams, agent)
    return logger


def _hyperparameters(agent: Any) -> dict[str, Any]:
    return {
        "agent": type(agent).__name__,
        "dataset": agent.spec.dataset_id,
        **agent.config.to_dict(),
    }


def _log_hparams(logger: Logger, hparams: dict[str, Any], agent: Any) -> None:
    """TensorBoard's HPARAMS tab, written to the TensorBoard writers only (no empty CSV row)."""
    from stable_baselines3.common.logger import HParam, TensorBoardOutputFormat

    boards = [w for w in logger.output_formats if isinstance(w, TensorBoardOutputFormat)]
    if not boards:
        return
    flat = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()}
    # the metrics the HPARAMS tab shows beside each run (TensorBoard reads them from the scalars)
    skipped = agent.skipped_stages()
    metrics = {f"{stage}/loss": 0.0 for stage in agent.stage_names() if stage not in skipped}
    metrics["eval/mean_reward"] = 0.0
    for board in boards:
        board.write({"hparams": HParam(flat, metrics)}, {"hparams": None}, agent.num_timesteps)  # type: ignore[dict-item]


def _wandb_writer(
    folder: Path, hparams: dict[str, Any] | None, append: bool, project: str | None
) -> WandbOutputFormat:
    import wandb

    from latent_skills._wandb_writer import WandbOutputFormat

    id_file = folder / WANDB_RUN_ID
    resume_id = id_file.read_text().strip() if append and id_file.is_file() else None
    run = wandb.init(
        project=project or os.environ.get("WANDB_PROJECT") or "latent-skills",
        config=hparams,
        dir=str(folder),
        id=resume_id,
        resume="allow" if resume_id else None,
    )
    id_file.write_text(run.id + "\n")
    return WandbOutputFormat(run)
