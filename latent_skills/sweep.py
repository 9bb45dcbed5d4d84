"""Sweeps: one recipe trained over several seeds (and agents), each run a Ray task, the scores gathered
into one table with the interquartile mean and its bootstrap confidence interval.

    from latent_skills.sweep import run_sweep
    result = run_sweep("ldcq-pointmaze-umaze-quick", seeds=[0, 1, 2], agents=["LDCQ", "BCQH"], out="runs/sweep")
    print(result.table())        # also in runs/sweep/sweep.json and runs/sweep/sweep.csv

``latent-skills sweep --recipe R --seeds 0 1 2`` does the same from the command line. Each run is
:func:`run_one`: ``recipe.make_agent(seed=s, **settings)`` → ``learn`` (saving to ``OUT/AGENT-seedS``,
resumable with ``latent-skills train --resume``) → ``evaluate``. An exception inside a run makes that
run ``failed`` (with the error's one-line message, its traceback in ``sweep.json``) and the others go
on. ``backend="ray"`` (needs ``pip install "latent-skills[ray]"``) runs them as Ray tasks, one CPU slot
each by default: it attaches to the cluster at ``$RAY_ADDRESS`` when set (there ``out`` must be a folder
every node sees, and ``latent_skills`` installed on every node), otherwise starts a local Ray instance
and shuts it down at the end. ``backend="local"`` runs them one after another in this process.

Ray is imported only when a Ray sweep starts, never with ``latent_skills``.
"""

from __future__ import annotations

import csv
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .recipes import Recipe, load_recipe
from .runs import SCORE_KEYS, scores
from .runs import run as run_recipe
from .stats import summarize

__all__ = [
    "BACKENDS",
    "FORWARDED_ENV",
    "RunSpec",
    "SweepResult",
    "import_ray",
    "plan_runs",
    "run_one",
    "run_sweep",
]

BACKENDS = ("ray", "local")
SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
# Passed to every Ray task, so workers see the datasets, renderer and Hub cache the driver sees.
# (Ray sets OMP_NUM_THREADS to each task's CPU slots itself.)
FORWARDED_ENV = ("MINARI_DATASETS_PATH", "MUJOCO_GL", "HF_HOME", "HF_HUB_OFFLINE")
CSV_COLUMNS = (
    "agent",
    "seed",
    "status",
    "score",
    "metric",
    "normalized_score",
    "mean_return",
    "std_return",
    "success_rate",
    "n_episodes",
    "seconds",
    "path",
    "error",
)


def import_ray() -> Any:
    """Ray, or an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        from .loggers import MissingExtraError

        raise MissingExtraError(
            "Sweeps on Ray need the 'ray' package: pip install 'latent-skills[ray]' "
            "(or run the sweep in this process with --local / backend='local')"
        ) from exc
    return ray


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything a worker needs, picklable (the recipe travels loaded, so a worker
    needs neither the recipe file nor the command line)."""

    recipe: Recipe  # with the run's agent
    seed: int
    path: str  # absolute: the checkpoint folder OUT/AGENT-seedS
    settings: dict[str, Any] = field(default_factory=dict)  # config fields (``--set``), over the recipe
    eval_episodes: int = 0  # 0: no evaluation
    eval_envs: int = 10
    device: str = "auto"
    download: bool = False

    @property
    def agent(self) -> str:
        return self.recipe.agent

    @property
    def name(self) -> str:
        return run_name(self.agent, self.seed)


def run_name(agent: str, seed: int) -> str:
    """The run's folder name under the sweep's out folder: ``LDCQ-seed0``."""
    return f"{agent}-seed{seed}"


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Train and evaluate one run (:func:`latent_skills.runs.run`); never raises (but for Ctrl-C): an
    exception is a ``failed`` record with the error's one-line message and traceback. Usable without
    Ray."""
    start = time.perf_counter()
    record = _record(spec)
    try:
        outcome = run_recipe(
            spec.recipe,
            spec.path,
            seed=spec.seed,
            settings=spec.settings,
            device=spec.device,
            download=spec.download,
            eval_episodes=spec.eval_episodes,
            eval_envs=spec.eval_envs,
        )
        record["train_seconds"] = round(outcome.train_seconds, 3)
        if outcome.result is not None:
            record.update(scores(outcome.result, *_EVAL_EXTRA))
        record["status"] = "ok"
    except Exception as exc:
        record.update(status="failed", error=one_line(exc), traceback=traceback.format_exc())
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


_EVAL_EXTRA = ("n_episodes",)  # kept beside runs.SCORE_KEYS


def _record(spec: RunSpec, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"agent": spec.agent, "seed": spec.seed, "status": None, "path": spec.path}
    base.update(dict.fromkeys((*SCORE_KEYS, *_EVAL_EXTRA)))
    base.update(error=None, traceback=None, seconds=None, train_seconds=None)
    base.update(values)
    return base


def one_line(exc: BaseException) -> str:
    """``ConfigError: unknown config field 'q_steps' ...``: the type and the first line of the message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def plan_runs(
    recipe: Recipe,
    seeds: Sequence[int],
    out: str | os.PathLike,
    *,
    agents: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    eval_episodes: int | None = None,
    eval_envs: int = 10,
    device: str = "auto",
    download: bool = False,
) -> list[RunSpec]:
    """The runs of a sweep, agent by agent, seed by seed. ``agents``: registered names in any case
    (default: the recipe's agent); ``settings``: config fields for every run (``seed`` is not one:
    pass ``seeds``); ``eval_episodes``: default the recipe's."""
    from .agents.registry import agent_class

    settings = dict(settings or {})
    if "seed" in settings:
        raise ValueError("seed is set per run: pass the seeds to sweep over instead of a seed setting")
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {list(seeds)}")
    names = [agent_class(name).__name__ for name in (agents or [recipe.agent])]  # ValueError if unknown
    names = list(dict.fromkeys(names))
    episodes = recipe.eval_episodes if eval_episodes is None else eval_episodes
    root = Path(out).absolute()
    return [
        RunSpec(
            recipe=replace(recipe, agent=name),
            seed=int(seed),
            path=str(root / run_name(name, int(seed))),
            settings=settings,
            eval_episodes=episodes,
            eval_envs=eval_envs,
            device=device,
            download=download,
        )
        for name in names
        for seed in seeds
    ]


@dataclass
class SweepResult:
    """The runs' records (in plan order) and, per agent, the summary of its per-seed scores."""

    runs: list[dict[str, Any]]
    summary: dict[str, dict[str, Any]]
    info: dict[str, Any]  # recipe, dataset, settings, seeds, backend, timing, version

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [run for run in self.runs if run["status"] != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return {**self.info, "summary": self.summary, "runs": self.runs}

    def table(self) -> str:
        """Per agent: runs, failures, each seed's score, mean ± std, IQM [95 % CI]; then the failures."""
        header = ("agent", "metric", "ok", "scores by seed", "mean ± std", "IQM [95% CI]")
        rows = [header]
        for agent, s in self.summary.items():
            failed = {str(run["seed"]) for run in self.failed if run["agent"] == agent}
            by_seed = "  ".join(
                f"{seed}: {_fmt(score, seed in failed)}" for seed, score in s["scores"].items()
            )
            mean = "n/a" if s["mean"] is None else f"{s['mean']:.1f} ± {s['std']:.1f}"
            ci = s["iqm_ci"]
            middle = "n/a" if s["iqm"] is None else f"{s['iqm']:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"
            rows.append((agent, s["metric"] or "-", f"{s['n_ok']}/{s['n_runs']}", by_seed, mean, middle))
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in rows]
        for run in self.failed:  # the whole message is in sweep.json and sweep.csv
            error = str(run["error"])
            shown = error if len(error) <= 160 else error[:159] + "…"
            lines.append(f"failed: {run_name(run['agent'], run['seed'])}: {shown}")
        return "\n".join(lines)

    def write(self, out: str | os.PathLike) -> tuple[Path, Path]:
        """``OUT/sweep.json`` (everything) and ``OUT/sweep.csv`` (a row per run)."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = folder / SWEEP_JSON, folder / SWEEP_CSV
        json_path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        metrics = {agent: s["metric"] for agent, s in self.summary.items()}
        with csv_path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for run in self.runs:
                metric = metrics.get(run["agent"])
                writer.writerow({**run, "metric": metric, "score": run.get(metric) if metric else None})
        return json_path, csv_path


def _fmt(score: float | None, failed: bool) -> str:
    return "failed" if failed else "-" if score is None else f"{score:.1f}"  # -: not evaluated


def summarize_runs(
    runs: Iterable[dict[str, Any]], *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per agent (in order of appearance): ``metric`` (``normalized_score`` where every finished run
    has one, else ``mean_return``; None when no run finished), ``scores`` by seed (None: failed or not evaluated), ``n_runs``,
    ``n_ok``, and :func:`latent_skills.stats.summarize` of the scores: ``mean``, ``std``, ``iqm``,
    ``iqm_ci``."""
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_agent.setdefault(run["agent"], []).append(run)
    summary = {}
    for agent, items in by_agent.items():
        ok = [run for run in items if run["status"] == "ok"]
        normalized = all(run.get("normalized_score") is not None for run in ok)
        metric = None if not ok else "normalized_score" if normalized else "mean_return"
        scores = {
            str(run["seed"]): run.get(metric) if metric and run["status"] == "ok" else None for run in items
        }
        values = [value for value in scores.values() if value is not None]
        stats = summarize(values, n_resamples=n_resamples, seed=seed)
        summary[agent] = {
            "metric": metric,
            "n_runs": len(items),
            "n_ok": len(ok),
            "scores": scores,
            **{key: stats[key] for key in ("mean", "std", "iqm", "iqm_ci")},
        }
    return summary


def existing_results(specs: Sequence[RunSpec], out: str | os.PathLike) -> list[Path]:
    """What a sweep into ``out`` would replace: its sweep.json and run folders that are not empty."""
    found = [Path(out) / SWEEP_JSON] if (Path(out) / SWEEP_JSON).exists() else []
    found += [Path(s.path) for s in specs if Path(s.path).is_dir() and any(Path(s.path).iterdir())]
    return found


def run_sweep(
    recipe: str | Path | Recipe,
    seeds: Sequence[int],
    *,
    agents: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    eval_episodes: int | None = None,
    eval_envs: int = 10,
    device: str = "auto",
    download: bool = False,
    backend: str = "ray",
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    num_cpus: int | None = None,
    overwrite: bool = False,
    echo: Callable[[str], Any] | None = print,
    prepare: Callable[[Recipe], Any] | None = None,
    name: str | None = None,
) -> SweepResult:
    """Train ``recipe`` (a shipped name, a TOML path or a :class:`Recipe`) for every agent × seed,
    evaluate each run on ``eval_episodes`` episodes (default: the recipe's; 0: none), write
    ``out/sweep.json`` and ``out/sweep.csv`` and return the :class:`SweepResult`.

    ``backend``: ``"ray"`` (a task per run with ``cpus_per_run`` CPU and ``gpus_per_run`` GPU slots; a
    local Ray instance of ``num_cpus`` CPUs unless ``$RAY_ADDRESS`` names a cluster or Ray is already
    initialised) or ``"local"`` (one run after another in this process). ``out``: default
    ``runs/sweep-RECIPE``; one holding an earlier sweep's results is a FileExistsError unless
    ``overwrite``. ``echo``: where progress lines go (None: nowhere). ``prepare(recipe)``: called once
    after the checks, before any run (``latent-skills sweep`` makes the embedded dataset there).
    ``name``: the recipe as ``sweep.json`` names it (default: the name or path given)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    name = name or (None if isinstance(recipe, Recipe) else str(recipe))
    label = name or f"{loaded.agent} on {loaded.dataset}"
    if out is None:
        stem = Path(name).name.removesuffix(".toml") if name else loaded.agent.lower()
        out = Path("runs") / f"sweep-{stem}"
    specs = plan_runs(
        loaded,
        seeds,
        out,
        agents=agents,
        settings=settings,
        eval_episodes=eval_episodes,
        eval_envs=eval_envs,
        device=device,
        download=download,
    )
    there = existing_results(specs, out)
    if there and not overwrite:
        shown = ", ".join(str(p) for p in there[:3]) + (" ..." if len(there) > 3 else "")
        raise FileExistsError(
            f"{out} already holds sweep results ({shown}): choose another out folder, or overwrite them "
            "(--overwrite, overwrite=True)"
        )
    say = echo or (lambda line: None)
    if backend == "ray":
        ray = import_ray()  # before anything runs: a missing extra must not cost a dataset download
    if download:  # once, here: parallel runs would race to download the same files
        from .data.loading import load_dataset

        load_dataset(loaded.dataset, download=True)
    if prepare is not None:
        prepare(loaded)
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    say(
        f"sweep {label}: {len(specs)} runs ({', '.join(dict.fromkeys(s.agent for s in specs))} × seeds "
        f"{', '.join(map(str, seeds))}) on {backend} -> {out}"
    )
    if backend == "ray":
        runs = _run_on_ray(ray, specs, cpus_per_run, gpus_per_run, num_cpus, say)
    else:
        runs = []
        for spec in specs:
            say(f"{spec.name}: training")
            runs.append(run_one(spec))
            say(_done_line(runs[-1]))
    info = {
        "recipe": name,
        "description": loaded.description,
        "agent": loaded.agent,
        "dataset": loaded.dataset,
        "preset": loaded.preset,
        "recipe_config": loaded.overrides(),
        "settings": dict(settings or {}),
        "agents": list(dict.fromkeys(s.agent for s in specs)),
        "seeds": [int(seed) for seed in seeds],
        "eval_episodes": specs[0].eval_episodes,
        "backend": backend,
        "out": str(out),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock, 3),
        "version": _version(),
    }
    result = SweepResult(runs=runs, summary=summarize_runs(runs), info=info)
    result.write(out)
    return result


def _done_line(run: dict[str, Any]) -> str:
    name = run_name(run["agent"], run["seed"])
    if run["status"] != "ok":
        return f"{name}: failed: {run['error']}"
    score = run.get("normalized_score")
    if score is None:
        score = run.get("mean_return")
    shown = "" if score is None else f", score {score:.1f}"
    return f"{name}: ok{shown} ({run['seconds']:.0f} s)"


def _run_on_ray(
    ray: Any,
    specs: Sequence[RunSpec],
    cpus_per_run: float,
    gpus_per_run: float,
    num_cpus: int | None,
    say: Callable[[str], Any],
) -> list[dict[str, Any]]:
    """Every run as a Ray task; records in plan order. A task that dies (a worker killed, out of
    memory) is a failed run like one that raised."""
    env_vars = {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ}
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    try:
        task = ray.remote(
            num_cpus=cpus_per_run,
            num_gpus=gpus_per_run,
            max_retries=0,
            runtime_env={"env_vars": env_vars} if env_vars else None,
        )(run_one)
        pending = {task.remote(spec): spec for spec in specs}
        say(f"{len(pending)} Ray tasks submitted")
        records: dict[str, dict[str, Any]] = {}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ref)
            try:
                record = ray.get(ref)
            except Exception as exc:  # the task did not return: its worker died, or Ray failed it
                record = _record(spec, status="failed", error=one_line(exc), traceback=str(exc))
            records[spec.name] = record
            say(_done_line(record))
    finally:
        if started:
            ray.shutdown()
    return [records[spec.name] for spec in specs]


def _version() -> str:
    from . import __version__

    return __version__
