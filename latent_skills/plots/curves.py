"""Learning curves from the CSV that an SB3 logger writes (``latent-skills train``: DIR/logs/progress.csv)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ._canvas import PANEL_INCHES, new_figure, save_png

STEP_COLUMN = "time/total_timesteps"  # SB3's name for the step count, used when the log has it


def find_progress_csv(source: str | os.PathLike) -> Path:
    """``source`` itself when it is a file, else ``source/logs/progress.csv`` or ``source/progress.csv``."""
    path = Path(source)
    if path.is_file():
        return path
    candidates = [path / "logs" / "progress.csv", path / "progress.csv"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no progress.csv at {source} (looked for {', '.join(map(str, candidates))}). "
        "`latent-skills train` writes DIR/logs/progress.csv; in Python log with "
        "agent.set_logger(stable_baselines3.common.logger.configure(DIR, ['csv']))"
    )


def read_stage_series(
    csv_path: str | os.PathLike, metric: str = "loss"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each stage's ``STAGE/metric`` column as ``(x, values)``, in the order stages first appear.

    ``x`` is the step count when the log has a ``time/total_timesteps`` column, else the number of
    the stage's logged point (one every ``log_interval`` steps of the stage).
    """
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except csv.Error as exc:
        raise ValueError(f"{csv_path} is not a readable CSV file: {exc}") from exc
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        step = row.get(STEP_COLUMN)
        for key, value in row.items():
            if not key or not key.endswith(f"/{metric}") or value in (None, ""):
                continue
            xs, ys = series.setdefault(key.rsplit("/", 1)[0], ([], []))
            try:
                y = float(value)
                x = float(step) if step not in (None, "") else float(len(xs) + 1)
            except ValueError:
                continue
            xs.append(x)
            ys.append(y)
    return {stage: (np.array(xs), np.array(ys)) for stage, (xs, ys) in series.items()}


def plot_learning_curves(source: str | os.PathLike, path: str | os.PathLike, *, metric: str = "loss") -> Path:
    """One panel per training stage with its ``STAGE/metric`` column (default: the loss) from an SB3
    ``progress.csv``; ``source`` is the CSV or a run folder (``DIR/logs/progress.csv``, as
    ``latent-skills train`` writes). Writes a PNG of (4·stages) × 3 inches at 100 dpi.
    """
    csv_path = find_progress_csv(source)
    series = read_stage_series(csv_path, metric)
    if not series:
        raise ValueError(f"{csv_path} has no STAGE/{metric} columns to plot")
    by_step = _has_step_column(csv_path)
    fig = new_figure(PANEL_INCHES * len(series), 0.75 * PANEL_INCHES)
    from matplotlib.ticker import MaxNLocator  # after new_figure: it raises the install hint

    axes = fig.subplots(1, len(series), squeeze=False)[0]
    for ax, (stage, (x, y)) in zip(axes, series.items(), strict=True):
        ax.plot(x, y, marker="." if len(x) < 30 else None)
        ax.set_title(f"stage {stage}", fontsize=10)
        if by_step:
            ax.set_xlabel("gradient steps")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("logged point (every log_interval steps)")
        ax.set_ylabel(metric)
    return save_png(fig, path)


def _has_step_column(csv_path: Path) -> bool:
    with open(csv_path, newline="") as f:
        return STEP_COLUMN in next(csv.reader(f), [])
