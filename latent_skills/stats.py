"""Aggregate scores over seeds the way Agarwal et al. (2021, "Deep RL at the Edge of the Statistical
Precipice") recommend: the interquartile mean (IQM) with a stratified-bootstrap confidence interval.
numpy only (rliable computes the same, with scipy and arch behind it).

    from latent_skills.stats import iqm, bootstrap_ci, summarize
    iqm([72.1, 70.3, 68.0, 15.2])                 # mean of the middle 50 %: 69.15
    bootstrap_ci([72.1, 70.3, 68.0, 15.2])        # 95 % percentile interval of the IQM over resamples
    bootstrap_ci([[...task A runs], [...task B runs]])   # strata: runs are resampled within each task

``latent-skills sweep`` reports every agent's per-seed scores with :func:`summarize`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_RESAMPLES", "bootstrap_ci", "bootstrap_distribution", "iqm", "summarize"]

DEFAULT_RESAMPLES = 2000  # rliable's default for its interval estimates
Statistic = Callable[..., Any]  # statistic(array, axis=...) -> array, as np.mean, np.median, iqm


def iqm(scores: Sequence[float] | np.ndarray, axis: int | None = None) -> Any:
    """The interquartile mean: the mean of the scores left after cutting ``floor(n / 4)`` from each
    end of the sorted ``n`` (over all scores with ``axis=None``, else along ``axis``).

    It is ``scipy.stats.trim_mean(scores, 0.25)``, rliable's IQM: when ``n / 4`` is not whole it cuts
    less, not a fraction of a score, so ``n < 4`` is the plain mean. ``[1, 2, 3, 10, 100]`` cuts one
    from each end: ``(2 + 3 + 10) / 3 = 5``; ``[1, ..., 8]`` cuts two: ``(3 + 4 + 5 + 6) / 4 = 4.5``.
    """
    values = np.asarray(scores, dtype=np.float64)
    if axis is None:
        values, axis = values.reshape(-1), 0
    n = values.shape[axis]
    if n == 0:
        raise ValueError("iqm of no scores")
    cut = n // 4
    ordered = np.sort(values, axis=axis)
    return np.take(ordered, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def _strata(scores: Any) -> list[np.ndarray]:
    """Scores as strata (tasks), each a 1-D array of runs: a list (or tuple) of sequences is one stratum
    per item (they may differ in length); otherwise a 1-D array is one stratum and a 2-D array
    ``(runs, tasks)`` (rliable's layout) one per column."""
    if isinstance(scores, (list, tuple)) and scores and all(np.ndim(item) >= 1 for item in scores):
        strata = [np.asarray(stratum, dtype=np.float64).reshape(-1) for stratum in scores]
    else:
        array = np.asarray(scores, dtype=np.float64)
        if array.ndim == 1:
            strata = [array]
        elif array.ndim == 2:
            strata = [array[:, j] for j in range(array.shape[1])]
        else:
            raise ValueError(
                f"scores must be 1-D (runs), 2-D (runs, tasks) or a list of 1-D; got {array.ndim}-D"
            )
    if not strata or any(len(stratum) == 0 for stratum in strata):
        raise ValueError("every stratum needs at least one score")
    return strata


def bootstrap_distribution(
    scores: Any,
    statistic: Statistic = iqm,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """The stratified bootstrap: ``n_resamples`` values of ``statistic``, each on a resample that draws,
    within every stratum (task) independently, as many runs as it has, with replacement; the resampled
    strata are concatenated and ``statistic(resamples, axis=1)`` is applied to the ``(n_resamples,
    total runs)`` array. With one stratum this is the ordinary bootstrap over runs."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be ≥ 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    parts = [
        stratum[rng.integers(0, len(stratum), size=(n_resamples, len(stratum)))]
        for stratum in _strata(scores)
    ]
    return np.asarray(statistic(np.concatenate(parts, axis=1), axis=1), dtype=np.float64)


def bootstrap_ci(
    scores: Any,
    statistic: Statistic = iqm,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, float]:
    """The percentile interval of :func:`bootstrap_distribution`: its ``(1 − confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles (numpy's linear interpolation), as rliable's default."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = bootstrap_distribution(scores, statistic, n_resamples=n_resamples, seed=seed)
    alpha = 1 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def summarize(
    scores: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """``n``, ``mean``, ``std`` (the sample standard deviation, 0 for one score, as the benchmarks
    report), ``iqm`` and ``iqm_ci`` (its bootstrap percentile interval) of one agent's per-seed scores;
    all None when there are none."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return {"n": 0, "mean": None, "std": None, "iqm": None, "iqm_ci": None}
    low, high = bootstrap_ci(values, iqm, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "iqm": float(iqm(values)),
        "iqm_ci": [low, high],
    }
