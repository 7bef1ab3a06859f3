"""Wall time of each finished run under a tree of run directories (TASK/ALGO/sSEED, as `smiling figure` and
`smiling experiment` lay them out): the last ``wall_time`` of its metrics.csv, gathered per task and algorithm.

``wall_time`` counts every second from the run's start to its last evaluation: time shared with other work and
time paused (SIGSTOP) are in it, so the lowest of a range is the nearest to what a run costs on a free core.

    python benchmarks/run_wall_times.py docs/figures/cpu
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root", help="a tree of run directories TASK/ALGO/sSEED")
    root = Path(p.parse_args().root)
    times: dict[tuple[str, str], list[tuple[str, int, float]]] = defaultdict(list)
    for metrics in sorted(root.glob("*/*/s*/metrics.csv")):
        with open(metrics, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or not rows[-1].get("wall_time"):
            continue
        run = metrics.parent
        times[(run.parent.parent.name, run.parent.name)].append(
            (run.name, int(float(rows[-1]["step"] or 0)), float(rows[-1]["wall_time"]) / 60))
    if not times:
        raise SystemExit(f"{root}: no run with a wall_time column in its metrics.csv (TASK/ALGO/sSEED/metrics.csv)")
    print("| task | algorithm | env steps | runs | wall time, min (each run) |")  # (BC: no env step, –)
    print("|---|---|---|---|---|")
    for (task, algo), runs in times.items():
        steps = sorted({s for _, s, _ in runs})
        minutes = [m for _, _, m in runs]
        each = ", ".join(f"{name} {m:.0f}" for name, _, m in runs)
        print(f"| {task} | {algo} | {', '.join(f'{s:,}' if s else '–' for s in steps)} | {len(runs)} | "
              f"{min(minutes):.0f}–{max(minutes):.0f} ({each}) |")


if __name__ == "__main__":
    main()
