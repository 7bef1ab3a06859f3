"""Returns of three reference policies on the humanoid:h1-* tasks, the yardstick for "progress" of a learner:

- random: uniform actions in [-1, 1];
- zero:   a = 0 (every servo at the middle of its range: not a standing pose);
- stand:  every servo held at the standing keyframe (`HumanoidEnv.stand_action()`), no balance feedback.

For each: return mean ± std over the episodes (fixed 1000-step episodes, no early termination, as in training)
and the mean time until the pelvis first drops below 0.5 m (the robot has fallen or sat down). With
``--policy RUN:STEP`` (repeatable) a trained run's checkpoint (mean action) is measured the same way on its own
task and env seeds, next to the reference policies of that task.

    taskset -c 0 python benchmarks/humanoid_reference.py [--episodes 10] [--tasks h1-walk,h1-crawl]
        [--policy runs/bench/h1-walk-s0:800000]

Prints markdown tables; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import report_header  # noqa: E402

from smiling.envs import make_env  # noqa: E402
from smiling.envs.h1_model import FRAME_SKIP  # noqa: E402
from smiling.envs.humanoid import humanoid_task_names  # noqa: E402
from smiling.evaluation import load_acting  # noqa: E402

FALLEN_PELVIS_HEIGHT = 0.5


def reference_policy(env, name: str):
    """``act(obs) -> action`` of a reference policy (random draws from numpy seed 0)."""
    rng = np.random.default_rng(0)
    n = env.action_space.shape[0]
    if name == "random":
        return lambda obs: rng.uniform(-1.0, 1.0, n).astype(np.float32)
    action = env.stand_action() if name == "stand" else np.zeros(n, np.float32)
    return lambda obs: action


def run(env, act, episodes: int, on_reset=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Episodes with env seeds 0..episodes-1: (returns, seconds until the pelvis first drops below
    FALLEN_PELVIS_HEIGHT (the episode length if never), return earned in the first second, pelvis x after one
    second minus its start)."""
    dt = env.model.opt.timestep * FRAME_SKIP
    first = int(round(1.0 / dt))
    rets, falls, early, moved = [], [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        if on_reset is not None:
            on_reset()
        total, fall, done, t, x0 = 0.0, None, False, 0, float(env.data.qpos[0])
        while not done:
            obs, r, term, trunc, _ = env.step(np.asarray(act(obs), np.float32))
            total, t, done = total + r, t + 1, term or trunc
            if fall is None and env.data.qpos[2] < FALLEN_PELVIS_HEIGHT:
                fall = t
            if t == first:
                early.append(total)
                moved.append(float(env.data.qpos[0]) - x0)
        rets.append(total)
        falls.append((fall if fall is not None else t) * dt)
    return np.array(rets), np.array(falls), np.array(early), np.array(moved)


def trained_policy(spec: str):
    """(task id, act, on_reset, env step) of ``RUN:STEP``, the checkpoint's mean action."""
    run_dir, _, step = spec.rpartition(":")
    cfg, act, on_reset, at = load_acting(run_dir, int(step))
    return cfg.task, act, on_reset, at


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--tasks", default=",".join(humanoid_task_names()), help="comma-separated h1 task names")
    p.add_argument("--policy", action="append", default=[], help="RUN:STEP of a trained run (repeatable)")
    args = p.parse_args()
    lines = report_header("Humanoid reference policies")
    lines += [f"- {args.episodes} episodes per policy (env seeds 0..{args.episodes - 1}; random actions from "
              "numpy seed 0)", "",
              "| task | random | zero action | hold standing keyframe | pelvis < 0.5 m after (s): random / zero / stand |",
              "|---|---|---|---|---|"]
    for name in args.tasks.split(","):
        env = make_env(f"humanoid:{name}")
        res = {pol: run(env, reference_policy(env, pol), args.episodes) for pol in ("random", "zero", "stand")}
        cells = [f"{r[0].mean():.1f} ± {r[0].std():.1f}" for r in res.values()]
        falls = " / ".join(f"{r[1].mean():.2f}" for r in res.values())
        lines.append(f"| humanoid:{name} | {' | '.join(cells)} | {falls} |")
        print(lines[-1], flush=True)
        env.close()
    if args.policy:
        lines += ["", "| trained policy (mean action) | task | return | pelvis < 0.5 m after (s) | return in the first "
                  "second | pelvis x moved in the first second (m) |", "|---|---|---|---|---|---|"]
    for spec in args.policy:
        task, act, on_reset, at = trained_policy(spec)
        env = make_env(task)
        rets, falls, early, moved = run(env, act, args.episodes, on_reset)
        lines.append(f"| {spec.rpartition(':')[0]} at {at} | {task} | {rets.mean():.1f} ± {rets.std():.1f} | "
                     f"{falls.mean():.2f} (min {falls.min():.2f}, max {falls.max():.2f}) | "
                     f"{early.mean():.1f} ± {early.std():.1f} | {moved.mean():.2f} ± {moved.std():.2f} |")
        print(lines[-1], flush=True)
        env.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
