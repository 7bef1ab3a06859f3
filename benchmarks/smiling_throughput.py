"""SMILING loop vs plain SAC loop: env steps/s of the whole training loop, measured in one run.

Both loops use the same SAC (networks, batch, UTD 1, 50 fused updates every 50 steps) on the same task; the
SMILING loop also relabels every sampled batch with the Eq. 4 cost at K noise levels per state and refits the
learner score model every 1000 env steps. Timed from env step 2000 (everything compiled, reward model
updated once) to 2000 + --loop-steps.

    python benchmarks/smiling_throughput.py [--task dmc:ball_in_cup-catch] [--ks 4,8,16,64] [--no-append]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import publish, report_header  # noqa: E402


def loop_steps_per_sec(task: str, steps: int, algo: str = "sac", k: int | None = None) -> float:
    from smiling.algos import TrainConfig, train
    from smiling.runs import read_metrics

    cfg = TrainConfig(task=task, steps=2000 + steps, seed_steps=1000, eval_every=10**9, eval_episodes=1,
                      checkpoint_every=10**9, horizon=1000, algo=algo)
    if k is not None:
        cfg = dataclasses.replace(cfg, smiling=dataclasses.replace(cfg.smiling, num_levels=k))
    tmp = Path(tempfile.mkdtemp())
    try:
        train(cfg, tmp / "run", quiet=True)
        rows = {int(r["step"]): float(r["wall_time"]) for r in read_metrics(tmp / "run")}
        return steps / (rows[2000 + steps] - rows[2000])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="dmc:ball_in_cup-catch")
    p.add_argument("--ks", default="4,8,16,64")
    p.add_argument("--loop-steps", type=int, default=3000)
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args()
    if a.loop_steps % 1000:
        raise SystemExit("--loop-steps must be a multiple of 1000 (the episode length)")

    from smiling.algos import TrainConfig

    t0 = time.perf_counter()
    sac = loop_steps_per_sec(a.task, a.loop_steps)
    rows = [(k, loop_steps_per_sec(a.task, a.loop_steps, "smiling", k)) for k in map(int, a.ks.split(","))]
    sac_after = loop_steps_per_sec(a.task, a.loop_steps)  # drift check: the machine must be idle
    wall = time.perf_counter() - t0
    sm = TrainConfig().smiling
    lines = [*report_header("SMILING loop vs SAC loop", wall / 60),
             f"- {a.task}; env steps 2000 to {2000 + a.loop_steps} of each loop; SAC defaults; SMILING defaults "
             f"except K (schedule {sm.score.schedule.kind} T={sm.score.schedule.steps}, "
             f"score nets {sm.score.depth} x {sm.score.width}, learner refit {sm.learner_steps} steps / 1000 env steps)",
             f"- plain SAC loop measured before and after the SMILING loops: {sac:.1f} and {sac_after:.1f} env steps/s; "
             f"ratios below use their mean", "",
             "| loop | env steps/s | ÷ plain SAC |", "|---|---|---|",
             f"| plain SAC | {(sac + sac_after) / 2:.1f} | 1.00 |"]
    ref = (sac + sac_after) / 2
    lines += [f"| SMILING, K = {k} | {s:.1f} | {s / ref:.2f} |" for k, s in rows]
    publish("\n".join(lines) + "\n", not a.no_append)


if __name__ == "__main__":
    main()
