"""Finding Minari datasets: local first, download on request, one clear error otherwise."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
from gymnasium.envs.registration import EnvSpec
from minari.dataset.minari_storage import MinariStorage
from minari.storage.datasets_root_dir import get_dataset_path

from latent_skills.envs.safe_make import EnvRecord, UntrustedEnvSpecError


class DatasetNotFoundError(FileNotFoundError):
    """A dataset id that is neither local nor (with ``download=True``) downloadable."""


def datasets_root() -> Path:
    """Where Minari keeps local datasets (``MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    return get_dataset_path()


def is_local(dataset_id: str) -> bool:
    return (get_dataset_path(dataset_id) / "data").exists()


def _not_found(dataset_id: str, cause: str, tried_download: bool = False) -> DatasetNotFoundError:
    env_value = os.environ.get("MINARI_DATASETS_PATH")
    where = f"MINARI_DATASETS_PATH={env_value}" if env_value else "MINARI_DATASETS_PATH is unset"
    if tried_download:
        fixes = ["check the id and the network (`minari list remote` lists the ids Minari serves)"]
    else:
        fixes = [
            f"download it: `minari download {dataset_id}`, `--download` on the command line, "
            "or download=True in Python"
        ]
    fixes.append("point MINARI_DATASETS_PATH at the folder that holds it")
    if "maze" in dataset_id.lower() and "ant" not in dataset_id.lower():
        fixes.append(
            "make a PointMaze dataset locally, no network needed: "
            "`latent-skills collect pointmaze --maze umaze --steps 100000`"
        )
    return DatasetNotFoundError(
        f"Minari dataset {dataset_id!r} {cause}.\n"
        f"  Looked in {datasets_root()} ({where}).\n"
        "  Fix it one of these ways:\n" + ";\n".join(f"  - {fix}" for fix in fixes) + "."
    )


def load_dataset(dataset: str | minari.MinariDataset, download: bool = False) -> minari.MinariDataset:
    """Return a ``MinariDataset`` for an id (local first, then Minari's download) or pass one through."""
    if isinstance(dataset, minari.MinariDataset):
        return dataset
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a Minari id or MinariDataset, not {type(dataset).__name__}")
    if is_local(dataset):
        _check_spaces_stored(dataset)
        return minari.load_dataset(dataset)
    if not download:
        raise _not_found(dataset, "is not in the local Minari store")
    try:
        minari.download_dataset(dataset)
    except Exception as exc:  # network errors, unknown remote ids, version mismatches
        raise _not_found(
            dataset, f"could not be downloaded ({type(exc).__name__}: {exc})", tried_download=True
        ) from exc
    _check_spaces_stored(dataset)
    return minari.load_dataset(dataset)


def _check_spaces_stored(dataset_id: str) -> None:
    """A dataset is downloaded data. Where its metadata lacks the observation or action space,
    Minari's loader builds the env its ``env_spec`` names (``gym.make(EnvSpec)``, which imports and
    calls the spec's entry point): allow that only for a spec that names what the registry has."""
    data_path = get_dataset_path(dataset_id) / "data"
    try:
        meta = MinariStorage.read_raw_metadata(data_path)
    except (ValueError, OSError):
        return  # Minari's own loader reports a damaged store
    if "observation_space" in meta and "action_space" in meta:
        return
    stored = meta.get("env_spec")
    if stored is None:
        return  # Minari refuses it without building anything
    source = f"Minari dataset {dataset_id!r}"
    try:
        EnvRecord.from_stored(stored, source).registered_spec(source)
    except UntrustedEnvSpecError as exc:
        raise UntrustedEnvSpecError(
            f"{source} stores no observation/action space, so Minari would build the env its env_spec "
            f"names to learn them; that spec is refused: {exc}"
        ) from exc


def dataset_eval_env_spec(dataset: minari.MinariDataset) -> EnvSpec | None:
    """The dataset's evaluation env spec (its ``eval_env_spec``, else its ``env_spec``), as stored:
    data to check, never to pass to ``gym.make`` (see :func:`make_eval_env`)."""
    return getattr(dataset, "_eval_env_spec", None) or dataset.env_spec


def make_eval_env(dataset: minari.MinariDataset, **kwargs: Any) -> gym.Env:
    """The dataset's evaluation env, built safely: from the registered spec of its id with its JSON
    kwargs and time limit (``kwargs`` override them), where Minari's
    ``recover_environment(eval_env=True)`` would import and call the entry point the dataset names.
    An unregistered id, or a spec naming other code than the registry, is an
    :class:`~latent_skills.envs.safe_make.UntrustedEnvSpecError`."""
    spec = dataset_eval_env_spec(dataset)
    source = f"Minari dataset {dataset.spec.dataset_id!r}"
    if spec is None:
        raise ValueError(f"{source} records no environment: build one with gym.make(...)")
    return EnvRecord.from_spec(spec, trusted=False, source=source).make(source, **kwargs)


def reference_scores(dataset: minari.MinariDataset) -> tuple[float, float] | None:
    """The dataset's ``(ref_min_score, ref_max_score)``, or None where it has none (or unusable ones)."""
    meta = dataset.storage.metadata
    low, high = meta.get("ref_min_score"), meta.get("ref_max_score")
    if low is None or high is None:
        return None
    return usable_reference(low, high, f"Minari dataset {dataset.spec.dataset_id!r}")


def usable_reference(low: Any, high: Any, source: str) -> tuple[float, float] | None:
    """``(low, high)`` as floats when they can normalise a score (finite, ``high > low``); else None,
    with a warning naming ``source``: equal scores divided by zero after a whole evaluation, NaN ones
    wrote a bare ``NaN`` into eval.json."""
    try:
        pair = float(low), float(high)
    except (TypeError, ValueError):
        pair = (math.nan, math.nan)
    if all(math.isfinite(v) for v in pair) and pair[1] > pair[0]:
        return pair
    warnings.warn(
        f"{source}: reference scores ref_min={low!r}, ref_max={high!r} cannot normalise a score (finite, "
        "ref_max > ref_min needed); results will have no normalized_score",
        stacklevel=3,
    )
    return None


def dataset_summary(dataset: minari.MinariDataset) -> dict[str, Any]:
    """What ``latent-skills info`` prints: sizes, spaces, reference scores, evaluation env."""
    from .flatten import ObservationFlattener

    eval_spec = dataset_eval_env_spec(dataset)
    scores = reference_scores(dataset)
    return {
        "dataset_id": dataset.spec.dataset_id,
        # latent-skills' own maze data says which kind it is (goal-conditioned or single-goal)
        "task": dataset.storage.metadata.get("task"),
        "episodes": dataset.total_episodes,
        "steps": dataset.total_steps,
        "observation_space": str(dataset.observation_space),
        "flat_state_dim": ObservationFlattener.from_space(dataset.observation_space).dim,
        "action_space": str(dataset.action_space),
        "ref_min_score": None if scores is None else scores[0],
        "ref_max_score": None if scores is None else scores[1],
        "env_id": None if dataset.env_spec is None else dataset.env_spec.id,
        "eval_env_id": None if eval_spec is None else eval_spec.id,
        "eval_env_kwargs": None if eval_spec is None else dict(eval_spec.kwargs),
        "eval_max_episode_steps": None if eval_spec is None else eval_spec.max_episode_steps,
    }
