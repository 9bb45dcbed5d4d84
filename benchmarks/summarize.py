"""Regenerate the tables of BENCHMARKS.md from the JSON results in benchmarks/results.

    python -m benchmarks.summarize                 # rewrite BENCHMARKS.md's tables
    python -m benchmarks.summarize --check         # exit 1 if BENCHMARKS.md is not up to date
    python -m benchmarks.summarize --plots         # also redraw the summary plots (matplotlib)
    python -m benchmarks.summarize --results benchmarks/results/archive \\
        --doc benchmarks/results/archive/README.md # the archive's tables

A document holds each table between ``<!-- summarize: NAME -->`` and ``<!-- /summarize: NAME -->``
(NAME one of the sections below); everything outside the markers is left as written. Each table is
followed by its provenance: commit, dataset, machine and date, read from the results' stamps
(:mod:`benchmarks.record`). Results written before the stamps existed carry a ``git`` entry added
when they were archived or kept: the commit that added them, not the one they ran on.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.record import REPO, RESULTS

DOC = REPO / "BENCHMARKS.md"
MARKER = re.compile(r"(<!-- summarize: (\w+) -->\n)(.*?)(<!-- /summarize: \2 -->)", re.DOTALL)
FAMILY = ("LDCQ", "LDGC", "LDCP", "BCQH", "LatentDiffuser", "BC")


# ---------------------------------------------------------------------------- reading results
def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f} ({', '.join(f'{v:.1f}' for v in values)})"


def _dataset(run: dict[str, Any]) -> str | None:
    stamp = run.get("dataset")
    if isinstance(stamp, dict):
        steps = stamp.get("total_steps")
        detail = [f"{steps:,} steps" if steps else None, stamp.get("task")]
        if stamp.get("minari_version"):
            detail.append(f"minari {stamp['minari_version']}")
        detail = [d for d in detail if d]
        return f"`{stamp['id']}`" + (f" ({', '.join(detail)})" if detail else "")
    dataset_id = run.get("dataset_id") or run.get("pretraining", {}).get("dataset_id")
    if dataset_id is None:
        return None
    steps = run.get("dataset_steps") or run.get("pretraining", {}).get("dataset_steps") or run.get("steps")
    return f"`{dataset_id}`" + (f" ({steps:,} steps)" if steps else "")


def _machine(run: dict[str, Any]) -> str | None:
    m = run.get("machine")
    if not m:
        return None
    cpu = m.get("cpu_model") or m.get("processor") or "?"
    parts = [f"{cpu}, {m.get('cpu_count')} cores"]
    if m.get("memory_gb"):
        parts.append(f"{m['memory_gb']} GB")
    torch_version = (m.get("versions") or {}).get("torch")
    threads = m.get("torch_threads") or run.get("torch_threads")
    if torch_version:
        parts.append(f"torch {torch_version}" + (f", {threads} thread(s)" if threads else ""))
    if m.get("cuda"):
        parts.append(m["cuda"])
    return ", ".join(parts)


def _load(run: dict[str, Any]) -> float | None:
    load = (run.get("machine") or {}).get("load_average")
    return None if not load else load["15m"]


def _commit(run: dict[str, Any]) -> str:
    git = run.get("git")
    if not git:
        return "not recorded"
    return f"`{git['commit'][:7]}`" + (" with uncommitted changes" if git.get("dirty") else "")


def _date(run: dict[str, Any]) -> str | None:
    if run.get("date_utc"):
        return run["date_utc"][:10]
    committed = (run.get("git") or {}).get("committed_utc")
    return None if committed is None else f"{committed[:10]} (commit date)"


def _distinct(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


_SEEDS = re.compile(r"^(.* --seeds)((?: \d+)+)$")


def _commands(runs: list[dict[str, Any]]) -> list[str]:
    """The distinct command lines of ``runs``; one-seed runs of the same command are merged."""
    merged: dict[str, list[str]] = {}
    for command in _distinct([r.get("command") for r in runs]):
        match = _SEEDS.match(command)
        head, seeds = (match.group(1), match.group(2).split()) if match else (command, [])
        merged.setdefault(head, []).extend(s for s in seeds if s not in merged.get(head, []))
    return [" ".join([head, *seeds]) for head, seeds in merged.items()]


def provenance(runs: list[dict[str, Any]]) -> str:
    """One line naming the commands, commits, data, machines and dates of ``runs``."""
    lines = []
    commands = _commands(runs)
    if commands:
        lines.append("Command: " + "; ".join(f"`{c}`" for c in commands) + ".")
    notes = _distinct([(r.get("git") or {}).get("note") for r in runs])
    note = f" ({'; '.join(notes)})" if notes else ""
    lines.append("Commit: " + ", ".join(_distinct([_commit(r) for r in runs])) + note + ".")
    datasets = _distinct([_dataset(r) for r in runs])
    if datasets:
        lines.append("Data: " + "; ".join(datasets) + ".")
    machines = _distinct([_machine(r) for r in runs])
    if machines:
        loads = [x for x in (_load(r) for r in runs) if x is not None]
        load = ""
        if loads:
            low, high = f"{min(loads):.1f}", f"{max(loads):.1f}"
            load = f" (15-min load average {low if low == high else f'{low}–{high}'})"
        lines.append("Machine: " + "; ".join(machines) + load + ".")
    dates = sorted(_distinct([_date(r) for r in runs]))
    if dates:
        lines.append("Date: " + (dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}") + ".")
    return "\n".join(f"- {line}" for line in lines)


def _maze_first(path: Path) -> tuple[int, str]:
    """Sort result files umaze, medium, large, then by name."""
    order = ("umaze", "medium", "large")
    maze = path.name.split("-")[0]
    return (order.index(maze) if maze in order else len(order), path.name)


def _missing(command: str) -> str:
    return f"No result in this folder yet: `{command}`."


# ---------------------------------------------------------------------------- the sections
def windows_memory(results: Path, plots: bool) -> str:
    path = results / "windows_memory.json"
    if not path.exists():
        return _missing("python -m benchmarks.windows_memory")
    r = load(path)
    dense = r["dense_float64_gb"]
    row = (
        f"| SkillWindows over {r['steps']:,} steps, S = {r['state_dim']}, H = {r['horizon']} "
        f"| **{r['peak_rss_mb']:.0f} MB** peak RSS (limit {r['limit_mb']} MB; the dense float64 array "
        f"would be {dense:.1f} GB) | {r['build_s']:.1f} s | {r['batch_ms']:.1f} ms |"
    )
    table = "| what | memory | build | one 128-window batch |\n|---|---|---|---|\n" + row
    return f"{table}\n\n{provenance([r])}"


def collect_speed(results: Path, plots: bool) -> str:
    paths = [results / name for name in ("collect_speed.json", "collect_speed_pixels.json")]
    found = [load(path) for path in paths if path.exists()]
    if not found:
        return _missing("python -m benchmarks.collect_speed")
    rows = []
    for r in found:
        kind = r.get("observation", "states")
        flags = f" --observation pixels --image-size {r['image_size']}" if kind == "pixels" else ""
        disk = f"{r['disk_mb']:.0f} MB" if "disk_mb" in r else "not recorded"
        load_average = (r.get("machine") or {}).get("load_average")
        busy = f"{load_average['1m']:.1f}" if load_average else "not recorded"
        rows.append(
            f"| `collect pointmaze --maze {r['maze']} --steps {r['steps']}{flags}` incl. 2 × "
            f"{r['ref_episodes']} reference episodes | **{r['wall_time_s']:.1f} s** "
            f"({r['steps_per_s_including_ref_and_save']:.0f} steps/s) | {r['reference_scores_s']:.1f} s | "
            f"{r['episodes']} | {disk} | {busy} |"
        )
    header = (
        "| what | wall time | of it, reference scores | episodes | on disk | load average |\n"
        "|---|---|---|---|---|---|\n"
    )
    return header + "\n".join(rows) + f"\n\n{provenance(found)}"


def startup_speed(results: Path, plots: bool) -> str:
    path = results / "startup_speed.json"
    if not path.exists():
        return _missing("python -m benchmarks.startup_speed --baseline PATH")
    r = load(path)
    base = r.get("baseline")

    def cell(m: dict[str, Any]) -> str:
        return f"{m['wall_s']['median']:.2f} s ({m['cpu_s']['median']:.2f} s CPU, {m['peak_rss_mib']['median']:.0f} MiB)"

    if base:
        commit = (base.get("git") or {}).get("commit", "?")[:7]
        header = f"| command | before (`{commit}`) | after | after / before (wall) |\n|---|---|---|---|"
    else:
        header = "| command | wall (CPU, peak RSS) |\n|---|---|"
    lines = [header]
    for row in r["commands"]:
        after = cell(row["this"])
        if base:
            ratio = row["wall_ratio_median"]
            lines.append(f"| `{row['command']}` | {cell(row['baseline'])} | **{after}** | {ratio:.2f} |")
        else:
            lines.append(f"| `{row['command']}` | **{after}** |")
    note = f"\n\n{r['note']}" if r.get("note") else ""
    runs = f"Medians of {r['runs']} runs each after {r['warmup']} warm-up, whole processes."
    if r.get("rss_floor_mib"):
        runs += f" Peak RSS cannot read below {r['rss_floor_mib']:.0f} MiB (the timing process's own)."
    return "\n".join(lines) + f"\n\n{runs}{note}\n\n{provenance([r])}"


def first_number(results: Path, plots: bool) -> str:
    return _cli_runs(results / "first_number.json", "python -m benchmarks.first_number --baseline PATH")


def readme_first_command(results: Path, plots: bool) -> str:
    return _cli_runs(results / "readme_first_command.json", "python -m benchmarks.first_number --readme")


def _cli_runs(path: Path, command: str) -> str:
    """A table of whole CLI runs timed by benchmarks.first_number."""
    if not path.exists():
        return _missing(command)
    r = load(path)
    lines = [
        "| checkout | wall time to the first score | parts (s, from the progress bars) | normalized score |",
        "|---|---|---|---|",
    ]
    for name, runs in r["runs"].items():
        label = f"before (`{(r.get('baseline_commit') or '?')[:7]}`)" if name == "baseline" else "after"
        if not r.get("baseline_commit"):
            label = "this commit"
        for run in runs:
            parts = ", ".join(f"{k} {v}" for k, v in run["parts_s"].items())
            lines.append(f"| {label} | **{run['wall_s']:.0f} s** | {parts} | {run['normalized_score']:.1f} |")
    note = f"\n\n{r['note']}" if r.get("note") else ""
    return "\n".join(lines) + f"\n\n`{r['timed_command']}`{note}\n\n{provenance([r])}"


PEERS = (("bc", "BC"), ("iql", "IQL"), ("td3+bc", "TD3+BC"))


def _quick_runs(folder: Path) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*-seed*.json"), key=_maze_first):
        run = load(path)
        # results taken with different replanning intervals are summarised apart
        runs.setdefault(f"{run['maze']}, replan {run['config']['exec_horizon']}", []).append(run)
    return runs


def _peer_runs(folder: Path, maze: str) -> dict[str, list[dict]]:
    """d3rlpy's results (benchmarks.peers) on ``maze``, by algorithm."""
    found: dict[str, list[dict]] = {}
    for algo, _ in PEERS:
        runs = [load(p) for p in sorted(folder.glob(f"{maze}-{algo}-seed*.json"))]
        if runs:
            found[algo] = runs
    return found


def _peer_cell(got: list[dict]) -> str:
    if not got:
        return "—"
    success = statistics.mean(r["scores"]["success_rate"] for r in got)
    steps = statistics.mean(r["gradient_steps"] for r in got)
    seconds = statistics.mean(r["train_seconds"] for r in got)
    return (
        f"{mean_sd([r['scores']['normalized_score'] for r in got])}; success {success:.2f}, "
        f"{steps / 1000:.0f}k steps in {seconds:.0f} s"
    )


def _quick_table(folder: Path, peers: Path | None, command: str) -> tuple[str, dict[str, list[dict]]]:
    """LDCQ's quick preset per maze; our BC where the runs trained it; d3rlpy's peers where run."""
    runs = _quick_runs(folder)
    if not runs:
        return _missing(command), runs
    peer_runs = {name: _peer_runs(peers, items[0]["maze"]) for name, items in runs.items()} if peers else {}
    shown = [(a, label) for a, label in PEERS if any(a in p for p in peer_runs.values())]
    with_bc = any(r.get("bc") for items in runs.values() for r in items)
    columns = ["maze, replanning", "seeds", "episodes", "LDCQ quick: normalized score"]
    columns += ["BC, same data and wall time"] if with_bc else []
    columns += [f"{label} (d3rlpy)" for _, label in shown]
    columns += ["LDCQ success"] + (["BC success"] if with_bc else []) + ["train s", "end-to-end s"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, items in runs.items():
        bcs = [r["bc"] for r in items if r.get("bc")]
        cells = [name, str(len(items)), str(items[0]["eval_episodes"])]
        cells.append(mean_sd([r["ldcq"]["normalized_score"] for r in items]))
        if with_bc:
            cells.append(mean_sd([b["normalized_score"] for b in bcs]) if bcs else "—")
        cells += [_peer_cell(peer_runs.get(name, {}).get(algo, [])) for algo, _ in shown]
        cells.append(f"{statistics.mean(r['ldcq']['success_rate'] for r in items):.2f}")
        if with_bc:
            cells.append(f"{statistics.mean(b['success_rate'] for b in bcs):.2f}" if bcs else "—")
        cells.append(", ".join(f"{r['train_s']:.0f}" for r in items))
        cells.append(", ".join(f"{r['end_to_end_s']:.0f}" for r in items))
        lines.append("| " + " | ".join(cells) + " |")
    every = [r for items in runs.values() for r in items]
    every += [r for by_algo in peer_runs.values() for rs in by_algo.values() for r in rs]
    return "\n".join(lines) + "\n\n" + provenance(every), runs


def quick_preset(results: Path, plots: bool) -> str:
    folder = results / "quick_preset"
    table, runs = _quick_table(
        folder, results / "peers", "python -m benchmarks.quick_preset --maze umaze --seeds 0 1 2 3 4"
    )
    if plots and runs:
        _plot_quick_preset(runs, folder / "scores.png")
    return table


def quick_preset_single_goal(results: Path, plots: bool) -> str:
    folder = results / "quick_preset_single_goal"
    table, runs = _quick_table(
        folder,
        results / "peers_single_goal",
        "python -m benchmarks.quick_preset --maze large --task single-goal --steps 1000000 --episodes 50",
    )
    if plots and runs:
        _plot_quick_preset(runs, folder / "scores.png")
    return table


def quick_preset_variants(results: Path, plots: bool) -> str:
    """LDCQ's quick preset with one setting changed (``--set ... --tag T``) beside the preset itself."""
    rows: list[tuple[str, str, list[dict]]] = []
    for folder in sorted(results.glob("quick_preset*")):
        if not folder.is_dir():
            continue
        for name, items in _quick_runs(folder).items():
            overrides = items[0].get("overrides") or {}
            setting = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the preset"
            rows.append((items[0]["task"], f"{name} | {setting}", items))
    variants = [r for r in rows if "the preset" not in r[1]]
    if not variants:
        return _missing("python -m benchmarks.quick_preset --set success_cut=terminal --tag terminal --no-bc")
    compared = {(task, label.split(" | ")[0]) for task, label, _ in variants}
    lines = [
        "| data | maze, replanning | setting | seeds | LDCQ quick: normalized score | success |",
        "|---|---|---|---|---|---|",
    ]
    shown = []
    for task, label, items in sorted(
        rows, key=lambda r: (r[0], r[1].split(" | ")[0], "the preset" not in r[1])
    ):
        if (task, label.split(" | ")[0]) not in compared:
            continue
        scores = [r["ldcq"]["normalized_score"] for r in items]
        success = statistics.mean(r["ldcq"]["success_rate"] for r in items)
        lines.append(f"| {task} | {label} | {len(items)} | {mean_sd(scores)} | {success:.2f} |")
        shown += items
    return "\n".join(lines) + "\n\n" + provenance(shown)


def _plot_quick_preset(runs: dict[str, list[dict]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1 + 2.5 * len(runs), 3.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for m, items in enumerate(runs.values()):
        for k, (name, key) in enumerate((("LDCQ quick", "ldcq"), ("BC", "bc"))):
            scores = [r[key]["normalized_score"] for r in items]
            x = m + 0.35 * k
            ax.bar(x, statistics.mean(scores), width=0.3, color=f"C{k}", label=name if m == 0 else None)
            ax.scatter([x] * len(scores), scores, color="k", s=10, zorder=3)
    ax.set_xticks([m + 0.175 for m in range(len(runs))], list(runs))
    ax.set_ylabel("normalized score (20 episodes per seed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def family(results: Path, plots: bool) -> str:
    return _family_table(results, "family", "python -m benchmarks.family --maze medium --seeds 0 1 2", plots)


def family_single_goal(results: Path, plots: bool) -> str:
    """The variants on single-goal data, beside LDCQ's own runs (quick_preset_single_goal: same seeds,
    so the same skills as the variants' donor)."""
    command = (
        "python -m benchmarks.family --maze large --task single-goal --steps 1000000 --episodes 50 "
        "--agents LDGC BCQH"
    )
    ldcq = [
        (run["maze"], {**run["ldcq"], "train_s": run["train_s"], "seed": run["seed"]}, run)
        for path in sorted((results / "quick_preset_single_goal").glob("*-seed*.json"), key=_maze_first)
        for run in [load(path)]
    ]
    return _family_table(results, "family_single_goal", command, plots, ldcq)


def _family_table(
    results: Path,
    name: str,
    command: str,
    plots: bool,
    extra: list[tuple[str, dict, dict]] | None = None,
) -> str:
    """Per maze and agent the scores of results/NAME, then of its variants results/NAME_TAG (their
    ``--set`` shown), and ``extra`` rows ((maze, agent summary, run) of LDCQ trained elsewhere)."""
    table: dict[str, dict[str, list[dict]]] = {}
    every = []
    # variants are NAME_TAG; family_single_goal is not a variant of family (another data kind)
    other_tasks = [f"{name}_single_goal"] if not name.endswith("_single_goal") else []
    folders = [results / name] + sorted(
        f for f in results.glob(f"{name}_*") if f.is_dir() and not f.name.startswith(tuple(other_tasks))
    )
    for folder in folders:
        for path in sorted(folder.glob("*-seed*.json"), key=_maze_first):
            run = load(path)
            every.append(run)
            setting = ", ".join(f"{k}={v}" for k, v in (run.get("overrides") or {}).items())
            for agent, summary in run["agents"].items():
                label = f"{agent} ({setting})" if setting else agent
                table.setdefault(run["maze"], {}).setdefault(label, []).append(
                    {**summary, "seed": run["seed"]}
                )
    if not table:
        return _missing(command)
    for maze, summary, run in extra or []:
        if maze in table:
            table[maze].setdefault("LDCQ", []).append(summary)
            every.append(run)
    lines = [
        "| maze | agent | seeds | normalized score | success rate | train s (own + reused stages) |",
        "|---|---|---|---|---|---|",
    ]
    for maze, agents in table.items():
        for label in sorted(agents, key=lambda a: (_family_rank(a), a)):
            items = agents[label]
            scores = [r["normalized_score"] for r in items]
            success = statistics.mean(r["success_rate"] for r in items)
            train = ", ".join(f"{r['train_s']:.0f}" for r in items)
            lines.append(f"| {maze} | {label} | {len(items)} | {mean_sd(scores)} | {success:.2f} | {train} |")
    if plots:
        _plot_family(table, results / name / "scores.png")
    return "\n".join(lines) + "\n\n" + provenance(every)


def _family_rank(label: str) -> int:
    agent = label.split(" ")[0]
    return FAMILY.index(agent) if agent in FAMILY else len(FAMILY)


def _plot_family(table: dict[str, dict[str, list[dict]]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.5 + 4.5 * len(table), 3.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(table), squeeze=False)[0]
    for ax, (maze, agents) in zip(axes, table.items(), strict=True):
        names = sorted(agents, key=lambda a: (_family_rank(a), a))
        for i, name in enumerate(names):
            scores = [r["normalized_score"] for r in agents[name]]
            ax.bar(i, statistics.mean(scores), color=f"C{i}")
            ax.scatter([i] * len(scores), scores, color="k", s=10, zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(f"PointMaze {maze}, quick preset")
        ax.set_ylabel("normalized score (20 episodes per seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def acting_sweep(results: Path, plots: bool) -> str:
    paths = sorted(results.glob("acting_sweep-*.json"))
    if not paths:
        return _missing("python -m benchmarks.acting_sweep --maze umaze --seeds 0 1 2")
    lines = [
        "| maze | act_candidates | exec_horizon | normalized score (per seed) |",
        "|---|---|---|---|",
    ]
    every = []
    for path in paths:
        run = load(path)
        every.append(run)
        maze = path.stem.removeprefix("acting_sweep-")
        settings: dict[tuple[int, int], list[dict]] = {}
        for item in run["runs"]:
            settings.setdefault((item["act_candidates"], item["exec_horizon"]), []).append(item)
        for (candidates, every_steps), items in settings.items():
            scores = [i["normalized_score"] for i in sorted(items, key=lambda i: i["seed"])]
            lines.append(f"| {maze} | {candidates} | {every_steps} | {mean_sd(scores)} |")
    return "\n".join(lines) + "\n\n" + provenance(every)


def sampler_speed(results: Path, plots: bool) -> str:
    path = results / "sampler_speed.json"
    if not path.exists():
        return _missing("python -m benchmarks.sampler_speed runs/ldcq-umaze")
    r = load(path)
    lines = [
        f"| sampler ({r['candidates']} candidates) | ms / decision | normalized score (± s.e.) | success |",
        "|---|---|---|---|",
    ]
    for row in r["samplers"]:
        lines.append(
            f"| {row['sampler']} | {row['ms_per_decision']:.1f} | {row['normalized_score']:.1f} ± "
            f"{row['score_sem']:.1f} | {row['success_rate']:.2f} |"
        )
    ddpm = next((row for row in r["samplers"] if row["sampler"] == "ddpm-200"), None)
    if ddpm is not None:
        ratios = [
            f"{row['sampler']} {ddpm['ms_per_decision'] / row['ms_per_decision']:.0f}×"
            for row in r["samplers"]
            if row is not ddpm
        ]
        lines += ["", "Decisions per second against 200-step DDPM: " + ", ".join(ratios) + "."]
    q = r["q_stage"]
    if q is None:
        return "\n".join(lines) + "\n\n" + provenance([r])
    bank, online = q["bank"], q["online"]
    lines += [
        "",
        f"Q stage (batch {bank['batch_size']}, {bank['candidates_per_next_state']} candidates per next "
        f"state, {bank['steps']} steps): {bank['steps_per_s']:.1f} gradient steps/s with the candidate "
        f"bank (set up in {bank['setup_s']:.0f} s), {online['steps_per_s']:.1f} steps/s sampling "
        f"candidates on the fly (set up in {online['setup_s']:.0f} s).",
    ]
    return "\n".join(lines) + "\n\n" + provenance([r])


def skill_sac(results: Path, plots: bool) -> str:
    path = results / "skill_sac.json"
    if not path.exists():
        return _missing("python -m benchmarks.skill_sac")
    r = load(path)
    lines = [
        f"| {r['budget_env_steps']:,} env steps | seeds | final normalized score (per seed) "
        "| best during training (mean) | wall s per run |",
        "|---|---|---|---|---|",
    ]
    names = {"skills": "SAC over LDCQ skills", "raw": "SAC on raw actions"}
    order = [*names, *sorted({k.split("/")[0] for k in r["summary"]} - set(names))]
    for key, s in sorted(r["summary"].items(), key=lambda item: order.index(item[0].split("/")[0])):
        method, reward = key.split("/")
        lines.append(
            f"| {names.get(method, method)} ({reward} reward) | {len(s['final_scores'])} "
            f"| {mean_sd(s['final_scores'])} | {s['best_score_mean']:.1f} | {s['wall_s_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n\n" + provenance([r])


def success_cut(results: Path, plots: bool) -> str:
    runs = [load(p) for p in sorted((results / "success_cut").glob("*-seed*.json"), key=_maze_first)]
    if not runs:
        return _missing("python -m benchmarks.success_cut --maze umaze --seeds 0 1 2")
    lines = [
        "| maze | success_cut | seeds | LDCQ quick: normalized score | success | last mean Q target |",
        "|---|---|---|---|---|---|",
    ]
    by_maze: dict[str, list[dict]] = {}
    for run in runs:
        by_maze.setdefault(run["maze"], []).append(run)
    for maze, items in by_maze.items():
        for choice in items[0]["choices"]:
            got = [r["choices"][choice] for r in items if choice in r["choices"]]
            scores = [g["normalized_score"] for g in got]
            success = statistics.mean(g["success_rate"] for g in got)
            target = ", ".join(f"{g['q_target']:.2f}" for g in got)
            lines.append(f"| {maze} | {choice} | {len(got)} | {mean_sd(scores)} | {success:.2f} | {target} |")
    return "\n".join(lines) + "\n\n" + provenance(runs)


def stage_speed(results: Path, plots: bool) -> str:
    runs = [load(p) for p in sorted((results / "stage_speed").glob("*.json"))]
    if not runs:
        return _missing("python -m benchmarks.stage_speed --preset paper")
    lines = [
        "| preset, device, options | skills steps/s | prior steps/s | Q steps/s | windows encoded/s | bank states/s "
        "(candidates, batch) | whole run on 1M steps, extrapolated |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        rate = {s: f"{v['steps_per_s']:.1f}" for s, v in r["stages"].items()}
        bank = r["bank"]
        total = r["extrapolated_s"]
        parts = ", ".join(f"{k} {v / 60:.0f} min" for k, v in total.items() if k != "total")
        options = ["compile"] * bool(r.get("compile")) + [r.get("precision", "float32")]
        lines.append(
            f"| {r['preset']}, {r['device']}, {' + '.join(options)} | {rate['skills']} | {rate['prior']} | {rate['q']} "
            f"| {r['posterior_windows_per_s']:.0f} | {bank['states_per_s']:.0f} ({bank['candidates']}, "
            f"{bank['chunk_states']}) | **{total['total'] / 3600:.1f} h** ({parts}) |"
        )
    return "\n".join(lines) + "\n\n" + provenance(runs)


def stage_profile(results: Path, plots: bool) -> str:
    runs = [
        r for r in (load(p) for p in sorted((results / "stage_speed").glob("*.json"))) if r.get("profile")
    ]
    if not runs:
        return _missing("python -m benchmarks.stage_speed --preset quick --profile 20")
    lines = [
        "| preset, device | part | top ops by self CPU time (share, calls) |",
        "|---|---|---|",
    ]
    for r in runs:
        for part, ops in r["profile"].items():
            top = "; ".join(f"`{o['op']}` {o['share']:.0%} ({o['calls']})" for o in ops[:6])
            lines.append(f"| {r['preset']}, {r['device']} | {part} | {top} |")
    evaluations = [
        f"{r['preset']}: {r['evaluation']['env_steps_per_s']:.0f} env steps/s over "
        f"{r['evaluation']['episodes']} episodes in parallel"
        for r in runs
        if "evaluation" in r
    ]
    text = "\n".join(lines)
    if evaluations:
        text += "\n\nEvaluation speed: " + "; ".join(evaluations) + "."
    return text + "\n\n" + provenance(runs)


# Speed levers on single-goal Large (issue 21): folder suffix, what the variant changes
LEVERS = (
    ("nodistill_check", "the quick preset"),
    ("distill", "+ a one-step sampler distilled from the prior (`distill_steps=1000`, `distill_lr=1e-3`)"),
)


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def single_goal_levers(results: Path, plots: bool) -> str:
    """Each speed lever's seeds on single-goal Large beside the quick preset's, on the same code: the
    IQM with its stratified-bootstrap interval (latent_skills.stats), the times; then the acting
    settings tried on one trained agent (``--also-act``)."""
    from latent_skills.stats import summarize as score_summary

    lines = [
        "| variant | seeds | normalized score: IQM [95% CI] | mean | per seed (seed: score) | success "
        "| end to end s: median (range) | Q stage s | evaluation s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    shown: list[dict] = []
    for tag, label in LEVERS:
        folder = results / f"quick_preset_single_goal_{tag}"
        runs = sorted((load(p) for p in folder.glob("large-seed*.json")), key=lambda r: r["seed"])
        if not runs:
            continue
        scores = [r["ldcq"]["normalized_score"] for r in runs]
        got = score_summary(scores)
        low, high = got["iqm_ci"]
        success = statistics.mean(r["ldcq"]["success_rate"] for r in runs)
        per_seed = ", ".join(f"{r['seed']}: {x:.1f}" for r, x in zip(runs, scores, strict=True))
        lines.append(
            f"| {label} | {len(runs)} | **{got['iqm']:.1f}** [{low:.1f}, {high:.1f}] | {got['mean']:.1f} "
            f"| {per_seed} | {success:.2f} "
            f"| {_median_range([r['end_to_end_s'] for r in runs])} "
            f"| {statistics.median(r['stage_s']['q'] for r in runs):,.0f} "
            f"| {statistics.median(r['eval_s'] for r in runs):,.0f} |"
        )
        shown += runs
    if not shown:
        return _missing(
            "python -m benchmarks.quick_preset --maze large --task single-goal --steps 1000000 "
            "--episodes 50 --seeds 0 1 2 3 4 --no-bc --set distill_steps=0 --tag nodistill_check"
        )
    text = "\n".join(lines)
    acting = sorted((results / "quick_preset_single_goal_acting").glob("large-seed*.json"))
    if acting:
        rows = [
            "| seed | acting | normalized score | success | evaluation s |",
            "|---|---|---|---|---|",
        ]
        for path in acting:
            run = load(path)
            config = run["config"]
            base = f"act_candidates={config['act_candidates']}, exec_horizon={config['exec_horizon']} (the preset)"
            rows.append(
                f"| {run['seed']} | {base} | {run['ldcq']['normalized_score']:.1f} "
                f"| {run['ldcq']['success_rate']:.2f} | {run['eval_s']:,.0f} |"
            )
            for variant in run.get("acting_variants", []):
                changed = ", ".join(f"{k}={v}" for k, v in variant["set_acting"].items())
                rows.append(
                    f"| {run['seed']} | {changed} | {variant['normalized_score']:.1f} "
                    f"| {variant['success_rate']:.2f} | {variant['eval_s']:,.0f} |"
                )
            shown.append(run)
        text += (
            "\n\nActing settings on the same trained agent (50 episodes each, the same seeds):\n\n"
            + "\n".join(rows)
        )
    return text + "\n\n" + provenance(shown)


SECTIONS: dict[str, Callable[[Path, bool], str]] = {
    "windows_memory": windows_memory,
    "collect_speed": collect_speed,
    "startup_speed": startup_speed,
    "first_number": first_number,
    "readme_first_command": readme_first_command,
    "quick_preset": quick_preset,
    "quick_preset_single_goal": quick_preset_single_goal,
    "quick_preset_variants": quick_preset_variants,
    "single_goal_levers": single_goal_levers,
    "success_cut": success_cut,
    "stage_speed": stage_speed,
    "stage_profile": stage_profile,
    "acting_sweep": acting_sweep,
    "family": family,
    "family_single_goal": family_single_goal,
    "sampler_speed": sampler_speed,
    "skill_sac": skill_sac,
}


def regenerate(text: str, results: Path, plots: bool = False) -> str:
    """``text`` with every marked section's table rebuilt from ``results``."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        return f"{match.group(1)}{SECTIONS[name](results, plots)}\n{match.group(4)}"

    return MARKER.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.summarize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of result JSON files")
    parser.add_argument("--doc", type=Path, default=DOC, help="markdown file whose marked tables to rewrite")
    parser.add_argument("--check", action="store_true", help="only check that the document is up to date")
    parser.add_argument("--plots", action="store_true", help="also redraw the summary plots")
    args = parser.parse_args(argv)
    text = args.doc.read_text()
    new = regenerate(text, args.results, plots=args.plots)
    if args.check:
        if new != text:
            print(f"{args.doc} is out of date: run python -m benchmarks.summarize", file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.doc.write_text(new)
        print(f"updated {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
