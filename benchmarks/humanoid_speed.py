"""Single-threaded env steps/s of the humanoid:h1-* tasks with uniform random actions (one control step = 10
physics steps), next to dmc:cheetah-run for scale, all measured in one run.

    taskset -c 0 python benchmarks/humanoid_speed.py            # appends a dated section to docs/benchmarks.md
    taskset -c 0 python benchmarks/humanoid_speed.py --no-append

Random actions make the robot fall early, so most of these steps are of a robot lying on the floor with
many contacts: the slow case for the contact solver.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import env_steps_per_sec, publish, report_header  # noqa: E402

TASKS = ("humanoid:h1-walk", "humanoid:h1-sit_simple", "humanoid:h1-crawl", "humanoid:h1-pole", "dmc:cheetah-run")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10_000, help="env steps per task (episodes of 1000 steps)")
    p.add_argument("--no-append", action="store_true")
    args = p.parse_args()
    rows = []
    for task in TASKS:
        steps_per_sec, _ = env_steps_per_sec(task, args.steps)
        rows.append(f"| {task} | {steps_per_sec:,.0f} |")
        print(rows[-1], flush=True)
    lines = report_header("Humanoid task speed (random actions, one thread)")
    lines += [f"- {args.steps} steps per task, reset every 1000 steps; wrapped `TaskEnv.step` (action scaling, "
              "reward terms, float32 observation)", "",
              "| task | env steps/s |", "|---|---|", *rows, ""]
    publish("\n".join(lines), append=not args.no_append)


if __name__ == "__main__":
    main()
