"""Per-seed numbers behind a figure's or an experiment's summary table: for each task and algorithm, each run's
final evaluation, its area under the curve, its best evaluation, the first evaluation at or above a threshold
and the evaluation from which it stays there, then every evaluation (normalized, as the tables are), and the
mean over seeds at each evaluation the runs share.

    python benchmarks/per_seed.py docs/figures/cpu                        # every run under the folder
    python benchmarks/per_seed.py docs/figures/cpu --tasks dmc:cheetah-run --algos smiling,dac --until 100000

The figures' and `smiling experiment`'s tables average these over seeds (`smiling.experiments.report`).
"""

from __future__ import annotations

import argparse

import numpy as np

from smiling.experiments.report import area_under_curve, collect


def _k(step: float) -> str:
    return f"{int(step) // 1000}k"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root", help="a folder of run directories (a figure's or an experiment's)")
    p.add_argument("--tasks", default=None, help="comma-separated task ids (default: all)")
    p.add_argument("--algos", default=None, help="comma-separated labels, e.g. smiling,dac+actions (default: all)")
    p.add_argument("--until", type=int, default=None, help="only evaluations at env steps <= this")
    p.add_argument("--threshold", type=float, default=0.9)
    a = p.parse_args()
    split = lambda s: s.split(",") if s else None  # noqa: E731
    groups = collect(a.root, "normalized", algos=split(a.algos), tasks=split(a.tasks), until=a.until)
    for task in sorted(groups):
        for label in sorted(groups[task]):
            curves = sorted(groups[task][label], key=lambda c: c.run.name)
            print(f"{task} {label}: {len(curves)} runs, mean final {np.mean([c.values[-1] for c in curves]):.2f}")
            for c in curves:
                above = c.values >= a.threshold
                first = _k(c.steps[np.argmax(above)]) if above.any() else "never"
                stays = next((_k(c.steps[i]) for i in range(len(above)) if above[i:].all()), "never")
                print(f"  {c.run.name}: final {c.values[-1]:.2f}, AUC {area_under_curve(c.steps, c.values):.2f}, "
                      f"best {c.best:.2f}, first >= {a.threshold}: {first}, stays >= {a.threshold} from: {stays}")
                print("    " + " ".join(f"{_k(s)} {v:.2f}" for s, v in zip(c.steps, c.values)))
            shared = sorted(set.intersection(*(set(c.steps.tolist()) for c in curves)))
            if len(curves) > 1 and len(shared) > 1:
                mean = [np.mean([c.values[list(c.steps).index(s)] for c in curves]) for s in shared]
                print("  mean: " + " ".join(f"{_k(s)} {v:.2f}" for s, v in zip(shared, mean)))


if __name__ == "__main__":
    main()
