"""Summarise benchmarks/results/quick_preset/*.json: a markdown table (printed) and a bar plot.

python benchmarks/summarize_quick_preset.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "quick_preset"


def main() -> None:
    runs: dict[str, list[dict]] = {}
    for path in sorted(RESULTS.glob("*-seed*.json")):
        run = json.loads(path.read_text())
        # results taken with different replanning intervals are summarised apart
        runs.setdefault(f"{run['maze']}, replan {run['config']['exec_horizon']}", []).append(run)
    print(
        "| maze, replanning | seeds | LDCQ quick: normalized score | BC, same data and wall time | LDCQ success | train s | end-to-end s |"
    )
    print("|---|---|---|---|---|---|---|")
    for maze, items in runs.items():
        ldcq = [r["ldcq"]["normalized_score"] for r in items]
        bc = [r["bc"]["normalized_score"] for r in items]
        succ = [r["ldcq"]["success_rate"] for r in items]

        def fmt(values: list[float]) -> str:
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.1f} ± {spread:.1f} ({', '.join(f'{v:.1f}' for v in values)})"

        train = ", ".join(f"{r['train_s']:.0f}" for r in items)
        total = ", ".join(f"{r['end_to_end_s']:.0f}" for r in items)
        print(
            f"| {maze} | {len(items)} | {fmt(ldcq)} | {fmt(bc)} | {statistics.mean(succ):.2f} | {train} | {total} |"
        )
    plot(runs)


def plot(runs: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1 + 2.5 * len(runs), 3.5))
    for m, items in enumerate(runs.values()):
        for k, (name, key) in enumerate((("LDCQ quick", "ldcq"), ("BC", "bc"))):
            scores = [r[key]["normalized_score"] for r in items]
            ax.bar(
                m + 0.35 * k,
                statistics.mean(scores),
                width=0.3,
                color=f"C{k}",
                label=name if m == 0 else None,
            )
            ax.scatter([m + 0.35 * k] * len(scores), scores, color="k", s=10, zorder=3)
    ax.set_xticks([m + 0.175 for m in range(len(runs))], list(runs))
    ax.set_ylabel("normalized score (20 episodes per seed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "scores.png", dpi=120)


if __name__ == "__main__":
    main()
