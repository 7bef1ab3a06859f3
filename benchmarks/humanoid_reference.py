"""Returns of three reference policies on the humanoid:h1-* tasks, the yardstick for "progress" of a learner:

- random: uniform actions in [-1, 1];
- zero:   a = 0 (every servo at the middle of its range: not a standing pose);
- stand:  every servo held at the standing keyframe (`HumanoidEnv.stand_action()`), no balance feedback.

For each: return mean ± std over the episodes (fixed 1000-step episodes, no early termination, as in training)
and the mean time until the pelvis first drops below 0.5 m (the robot has fallen or sat down).

    taskset -c 0 python benchmarks/humanoid_reference.py [--episodes 10]

Prints a markdown table; nothing is written.
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

FALLEN_PELVIS_HEIGHT = 0.5


def run(env, policy: str, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(returns, seconds until the pelvis first drops below FALLEN_PELVIS_HEIGHT; the episode length if never)."""
    rng = np.random.default_rng(0)
    hold = env.stand_action()
    dt = env.model.opt.timestep * FRAME_SKIP
    n = env.action_space.shape[0]
    rets, falls = [], []
    for ep in range(episodes):
        env.reset(seed=ep)
        total, fall, done, t = 0.0, None, False, 0
        while not done:
            if policy == "random":
                a = rng.uniform(-1.0, 1.0, n).astype(np.float32)
            else:
                a = hold if policy == "stand" else np.zeros(n, np.float32)
            _, r, term, trunc, _ = env.step(a)
            total, t, done = total + r, t + 1, term or trunc
            if fall is None and env.data.qpos[2] < FALLEN_PELVIS_HEIGHT:
                fall = t
        rets.append(total)
        falls.append((fall if fall is not None else t) * dt)
    return np.array(rets), np.array(falls)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args()
    lines = report_header("Humanoid reference policies")
    lines += [f"- {args.episodes} episodes per policy (env seeds 0..{args.episodes - 1}; random actions from "
              "numpy seed 0)", "",
              "| task | random | zero action | hold standing keyframe | pelvis < 0.5 m after (s): random / zero / stand |",
              "|---|---|---|---|---|"]
    for name in humanoid_task_names():
        env = make_env(f"humanoid:{name}")
        res = {pol: run(env, pol, args.episodes) for pol in ("random", "zero", "stand")}
        cells = [f"{r.mean():.1f} ± {r.std():.1f}" for r, _ in res.values()]
        falls = " / ".join(f"{f.mean():.2f}" for _, f in res.values())
        lines.append(f"| humanoid:{name} | {' | '.join(cells)} | {falls} |")
        print(lines[-1], flush=True)
        env.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
