"""Where a dmc:walker-walk policy loses reward: the terms of dm_control's walker reward, averaged over the steps
after the first 100 of each episode (the walker starts lying down and gets up first), with the mean action.

walker-walk pays stand * (5 * move + 1) / 6 per step, with stand = (3 * standing + upright) / 4,
standing = tolerance(torso height, (1.2, inf), margin 0.6), upright = (1 + torso z-axis up) / 2 and
move = tolerance(horizontal speed, (1, inf), margin 0.5, value 0.5 at the margin, linear).

    python benchmarks/walker_reward_terms.py RUN_DIR [--checkpoint STEP] [--episodes 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from dm_control.utils import rewards

from smiling.envs import make_env
from smiling.evaluation import load_acting


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--checkpoint", type=int, default=None)
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--skip", type=int, default=100, help="first steps of each episode left out")
    a = p.parse_args()
    cfg, policy, on_reset, step = load_acting(a.run_dir, a.checkpoint)
    if cfg.task != "dmc:walker-walk":
        raise SystemExit(f"{a.run_dir} is a {cfg.task} run; this script reads dmc:walker-walk's reward terms")
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    print(f"{a.run_dir} at {step} env steps, mean action, steps {a.skip}..{cfg.horizon} of each episode")
    print("| episode | return | reward/step | standing | upright | move | speed (min) | torso height (min) |")
    print("|---|---|---|---|---|---|---|---|")
    for ep in range(a.episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        on_reset()
        rows, total, done = [], 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs))
            total, done = total + r, term or trunc
            ph = env.physics
            h, v = ph.torso_height(), ph.horizontal_velocity()
            rows.append((r, rewards.tolerance(h, bounds=(1.2, float("inf")), margin=0.6), (1 + ph.torso_upright()) / 2,
                         rewards.tolerance(v, bounds=(1, float("inf")), margin=0.5, value_at_margin=0.5,
                                           sigmoid="linear"), v, h))
        t = np.array(rows[a.skip:])
        print(f"| {ep} | {total:.1f} | {t[:, 0].mean():.3f} | {t[:, 1].mean():.3f} | {t[:, 2].mean():.3f} | "
              f"{t[:, 3].mean():.3f} | {t[:, 4].mean():.2f} ({t[:, 4].min():.2f}) | {t[:, 5].mean():.2f} ({t[:, 5].min():.2f}) |")


if __name__ == "__main__":
    main()
