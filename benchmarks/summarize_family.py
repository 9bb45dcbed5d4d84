"""Summarise benchmarks/results/family/*.json: a markdown table (printed) and a bar plot.

python benchmarks/summarize_family.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "family"
ORDER = ("LDCQ", "LDGC", "LDCP", "BCQH", "LatentDiffuser", "BC")


def load() -> dict[str, dict[str, list[dict]]]:
    """maze → agent → one summary per seed that ran it."""
    table: dict[str, dict[str, list[dict]]] = {}
    for path in sorted(RESULTS.glob("*-seed*.json")):
        run = json.loads(path.read_text())
        for name, summary in run["agents"].items():
            table.setdefault(run["maze"], {}).setdefault(name, []).append({**summary, "seed": run["seed"]})
    return table


def fmt(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f} ({', '.join(f'{v:.1f}' for v in values)})"


def main() -> None:
    table = load()
    print("| maze | agent | seeds | normalized score | success rate | train s (own + reused stages) |")
    print("|---|---|---|---|---|---|")
    for maze, agents in table.items():
        for name in ORDER:
            runs = agents.get(name)
            if not runs:
                continue
            scores = [r["normalized_score"] for r in runs]
            success = statistics.mean(r["success_rate"] for r in runs)
            train = ", ".join(f"{r['train_s']:.0f}" for r in runs)
            print(f"| {maze} | {name} | {len(runs)} | {fmt(scores)} | {success:.2f} | {train} |")
    plot(table)


def plot(table: dict[str, dict[str, list[dict]]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.5 + 4.5 * len(table), 3.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(table), squeeze=False)[0]
    for ax, (maze, agents) in zip(axes, table.items(), strict=True):
        names = [n for n in ORDER if n in agents]
        for i, name in enumerate(names):
            scores = [r["normalized_score"] for r in agents[name]]
            ax.bar(i, statistics.mean(scores), color=f"C{i}")
            ax.scatter([i] * len(scores), scores, color="k", s=10, zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(f"PointMaze {maze}, quick preset")
        ax.set_ylabel("normalized score (20 episodes per seed)")
    fig.tight_layout()
    fig.savefig(RESULTS / "scores.png", dpi=120)


if __name__ == "__main__":
    main()
