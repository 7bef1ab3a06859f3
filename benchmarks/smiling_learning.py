"""Imitation learning benchmark: imitate a task's bundled demos with SMILING (or a baseline, --algo: BC uses the
demos' actions, the others only their states) and print the normalized eval curve.

Same code path as `smiling imitate` (both call `smiling.algos.train`). Resumable: rerun the same command
and an interrupted run continues from its last checkpoint (a larger --steps extends a finished run).
Normalized return = (return - random) / (expert - random), with both references read from the demos' metadata.

    python benchmarks/smiling_learning.py --task dmc:ball_in_cup-catch --steps 100000 --seed 0 \
        --out runs/bench/smiling-bic-s0 [--k 8] [--schedule ddpm] [--relabel update] [--no-cap-errors]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from smiling.algos import TrainConfig, train
from smiling.data import load_demos
from smiling.runs import read_metrics


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--k", type=int, default=None, help="noise levels per state (default: the library's)")
    p.add_argument("--schedule", default=None)
    p.add_argument("--relabel", default="sample", choices=["sample", "update"])
    p.add_argument("--normalization", default=None, choices=["moments", "robust"],
                   help="SMILING cost normalization (default: the library's)")
    p.add_argument("--no-cap-errors", action="store_true",
                   help="SMILING cost with uncapped denoising errors (the default before 2026-11-30: to rerun "
                        "the results of earlier dates)")
    p.add_argument("--algo", default="smiling", choices=["smiling", "dac", "iqlearn", "bc", "bco"])
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    out = Path(a.out)
    sm = TrainConfig().smiling
    if a.k is not None:
        sm = dataclasses.replace(sm, num_levels=a.k)
    if a.schedule is not None:
        sched = dataclasses.replace(sm.score.schedule, kind=a.schedule)
        sm = dataclasses.replace(sm, score=dataclasses.replace(sm.score, schedule=sched))
    if a.normalization is not None:
        sm = dataclasses.replace(sm, normalization=a.normalization)
    if a.no_cap_errors:
        sm = dataclasses.replace(sm, cap_errors=False)
    cfg = TrainConfig(task=a.task, steps=a.steps, seed=a.seed, eval_episodes=10, algo=a.algo, smiling=sm,
                      relabel=a.relabel)
    summary = train(cfg, out, resume=(out / "config.json").exists(), quiet=a.quiet)
    print(summary)
    meta = load_demos(a.task).metadata
    expert, random = meta["expert_return_mean"], meta["random_return_mean"]
    for r in read_metrics(out):
        if r["eval_return"]:
            ret = float(r["eval_return"])
            wall = float(r["wall_time"]) if r.get("wall_time") else float("nan")
            print(f"step {int(r['step']):>8d}  wall {wall:8.0f}s  eval {ret:7.1f}"
                  f" +- {float(r['eval_return_std']):6.1f}  normalized {(ret - random) / (expert - random):5.2f}")


if __name__ == "__main__":
    main()
