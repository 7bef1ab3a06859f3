"""Normalized learning curves of finished (or running) runs over seeds: a markdown table and a plot.

Runs are grouped by algorithm and SMILING settings (`smiling.algos.run_label` with ``detail``); references (expert and
random returns) come from the demos' metadata of the runs' task.

    python benchmarks/summarize_learning.py runs/bench/smiling-bic-s* --plot docs/img/smiling-bic.png
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from smiling.data import load_demos
from smiling.algos import load_config, run_label
from smiling.experiments import aggregate, first_reach, plot_curves
from smiling.utils.io import read_json


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--plot", default=None)
    p.add_argument("--threshold", type=float, default=0.9)
    a = p.parse_args()
    tasks = {read_json(Path(r) / "config.json")["config"]["task"] for r in a.runs}
    if len(tasks) != 1:
        raise SystemExit(f"runs of several tasks: {sorted(tasks)}")
    task = tasks.pop()
    meta = load_demos(task).metadata
    expert, random = meta["expert_return_mean"], meta["random_return_mean"]
    groups = defaultdict(list)
    for r in sorted(a.runs):
        groups[run_label(load_config(r), detail=True)].append(r)
    results = {label: aggregate(rs, expert, random) for label, rs in groups.items()}
    print(f"{task}: expert return {expert:.1f}, random {random:.1f} (from the bundled demos' metadata)\n")
    for label, g in results.items():
        print(f"#### {label}: {len(g['runs'])} runs ({', '.join(Path(r).name for r in g['runs'])})\n")
        print("| env steps | " + " | ".join(f"{s // 1000}k" for s in g["steps"]) + " |")
        print("|---" * (len(g["steps"]) + 1) + "|")
        print("| normalized, mean ± std | " + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in zip(g["mean"], g["std"]))
              + " |")
        for run, row in zip(g["runs"], g["per_run"]):
            print(f"| {Path(run).name} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
        reach = [first_reach(s, n, a.threshold) for s, n in g["curves"]]
        print(f"\nfirst eval >= {a.threshold}: " + ", ".join(f"{Path(r).name}: {x if x is not None else 'never'}"
                                                       for r, x in zip(g["runs"], reach)))
        print(f"mean over seeds >= {a.threshold} first at: {first_reach(g['steps'], g['mean'], a.threshold)}\n")
    if a.plot:
        print(f"plot: {plot_curves(results, a.plot, title=task)}")


if __name__ == "__main__":
    main()
