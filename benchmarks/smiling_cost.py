"""Cost of SMILING's reward relabelling vs a SAC update round, for several K, measured in one run.

One update round of the loop = `update_every` (50) SAC gradient steps on batches of 256; relabelling that round
evaluates the Eq. 4 cost on 50 x 256 states with K noise levels each, i.e. 2 score networks on 12,800 K inputs.

    python benchmarks/smiling_cost.py [--task dmc:cheetah-run] [--ks 1,4,8,16,64,500] [--no-append]
        [--max-pairs 1048576,8192]

``--max-pairs`` times each K once per chunk size (`smiling.rewards.smiling.MAX_PAIRS`: most (state, noise level)
pairs per jitted call; by default `pairs_per_call` chooses by backend), in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import publish, report_header, timed  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="dmc:cheetah-run")
    p.add_argument("--ks", default="1,4,8,16,64,500")
    p.add_argument("--no-append", action="store_true")
    p.add_argument("--max-pairs", default=None, help="comma-separated chunk sizes (default: the library's)")
    a = p.parse_args()
    import smiling.rewards.smiling as smiling_reward

    chunks = [int(x) for x in a.max_pairs.split(",")] if a.max_pairs else [smiling_reward.pairs_per_call()]

    from smiling.envs import make_env
    from smiling.rewards import SmilingConfig, SmilingReward
    from smiling.rl import SAC, ReplayBuffer

    env = make_env(a.task)
    d, act = env.observation_space.shape[0], env.action_space.shape[0]
    rng = np.random.default_rng(0)
    sac = SAC(d, act)
    state = sac.init(0)
    buf = ReplayBuffer(d, act, 20_000)
    for _ in range(20_000):
        buf.add(rng.normal(size=d), rng.uniform(-1, 1, act), 0.0, rng.normal(size=d), False)
    n, b = 50, sac.config.batch_size
    batches = buf.sample(rng, b, n)

    def sac_round():
        nonlocal state
        state, _ = sac.update(state, batches)

    t_sac = timed(sac_round, 5)
    rows = []
    expert = rng.normal(size=(5000, d)).astype(np.float32)
    for k in [int(x) for x in a.ks.split(",")]:
        model = SmilingReward(expert, SmilingConfig(num_levels=k, expert_steps=1), use_cache=False)
        model.update(rng.normal(size=(1000, d)).astype(np.float32))
        for chunk in chunks:
            smiling_reward.MAX_PAIRS = chunk
            t_cost = timed(lambda: buf.sample(rng, b, n, reward_fn=model.reward), 3 if k >= 100 else 5)
            rows.append((k, chunk, t_cost))
    lines = [*report_header("SMILING cost vs SAC update"),
             f"- {a.task} (state dim {d}); one round = {n} SAC steps at batch {b}; score nets 1 x 256, "
             f"16-d time embedding (paper defaults); {model.config.score.schedule.kind} schedule", "",
             "| K (noise levels per state) | pairs per call (MAX_PAIRS) | relabel one round, ms | SAC round, ms "
             "| relabel ÷ SAC |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {c:,} | {t * 1e3:,.0f} | {t_sac * 1e3:,.0f} | {t / t_sac:.2f} |" for k, c, t in rows]
    publish("\n".join(lines) + "\n", not a.no_append)


if __name__ == "__main__":
    main()
