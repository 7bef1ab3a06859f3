"""Several seeds in one process: SAC gradient steps/s with the seeds' updates batched by `jax.vmap` (one
jitted call updates S independent agents) vs the same S agents updated one after another, measured in one run.

Only the update is measured: env stepping, acting and replay sampling stay per seed either way, so this is an
upper bound on what vmap buys a whole training loop. Each call runs 50 fused gradient steps per agent (the
loop's update_every=50, UTD 1) on random batches of the library's default size.

    python benchmarks/vmap_seeds.py [--seeds 1,2,4,8] [--obs-dim 8] [--act-dim 2] [--rounds 20] [--no-append]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import publish, report_header, timed  # noqa: E402

from smiling.rl import SAC, SACConfig  # noqa: E402


def batches(rng, n: int, b: int, obs_dim: int, act_dim: int, seeds: int | None = None) -> dict:
    lead = (n, b) if seeds is None else (seeds, n, b)
    f = lambda *shape: jnp.asarray(rng.normal(size=lead + shape).astype(np.float32))  # noqa: E731
    return {"obs": f(obs_dim), "action": jnp.clip(f(act_dim), -1, 1), "reward": f(), "next_obs": f(obs_dim),
            "terminated": jnp.zeros(lead, jnp.float32)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="1,2,4,8")
    p.add_argument("--obs-dim", type=int, default=8)  # ball_in_cup-catch
    p.add_argument("--act-dim", type=int, default=2)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args()
    cfg = SACConfig()
    agent = SAC(a.obs_dim, a.act_dim, cfg)
    n, b = 50, cfg.batch_size
    rng = np.random.default_rng(0)
    vupdate = jax.jit(jax.vmap(agent._update_many))
    t0 = time.perf_counter()
    rows = []
    for s in [int(x) for x in a.seeds.split(",")]:
        states = [agent.init(i) for i in range(s)]
        seq_batches = [batches(rng, n, b, a.obs_dim, a.act_dim) for _ in range(s)]
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
        vb = batches(rng, n, b, a.obs_dim, a.act_dim, seeds=s)

        def sequential():
            nonlocal states
            out = [agent._update(st, bt) for st, bt in zip(states, seq_batches)]
            states = [o[0] for o in out]
            jax.block_until_ready(states)

        def vmapped():
            nonlocal stacked
            stacked, _ = vupdate(stacked, vb)
            jax.block_until_ready(stacked)

        t_seq, t_vec = timed(sequential, a.rounds), timed(vmapped, a.rounds)
        rows.append((s, s * n / t_seq, s * n / t_vec))
    lines = report_header("Several seeds in one process: vmapped vs sequential SAC updates",
                          (time.perf_counter() - t0) / 60)
    lines += [f"- SAC defaults (256-256, batch {b}), obs dim {a.obs_dim}, action dim {a.act_dim}, {n} fused steps "
              f"per call, {a.rounds} timed calls; JAX {jax.__version__} on {jax.default_backend()}", "",
              "| seeds S | sequential grad steps/s (all seeds) | vmapped grad steps/s (all seeds) | vmapped / sequential |",
              "|---|---|---|---|"]
    lines += [f"| {s} | {q:.0f} | {v:.0f} | {v / q:.2f}x |" for s, q, v in rows]
    publish("\n".join(lines) + "\n", not a.no_append)


if __name__ == "__main__":
    main()
