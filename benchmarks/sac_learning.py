"""SAC learning benchmark: train on a task's true reward and print the eval curve.

Same code path as `smiling train-expert` (both call `smiling.algos.train`). Resumable: rerun the same
command and an interrupted run continues from its last checkpoint.

    python benchmarks/sac_learning.py --task dmc:ball_in_cup-catch --steps 100000 --seed 0 --out runs/bench/bic-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from smiling.algos import TrainConfig, train
from smiling.runs import read_metrics


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    out = Path(a.out)
    cfg = TrainConfig(task=a.task, steps=a.steps, seed=a.seed, eval_episodes=10)  # a larger --steps extends
    summary = train(cfg, out, resume=(out / "config.json").exists(), quiet=a.quiet)
    print(summary)
    for r in read_metrics(out):
        if r["eval_return"]:
            print(f"step {int(r['step']):>8d}  wall {float(r['wall_time']):8.0f}s  eval {float(r['eval_return']):7.1f}"
                  f" +- {float(r['eval_return_std']):.1f}")


if __name__ == "__main__":
    main()
