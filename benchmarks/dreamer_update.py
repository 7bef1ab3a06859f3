"""Milliseconds per DreamerV3 training step for a preset and several ``imag_starts`` values (and actor gradients),
measured in one run.

Random replay batches (B x T = batch_size x seq_len) are fed to `Dreamer.update` in calls of ``--fused`` steps;
the first call (compilation) is not timed. Ratios to ``imag_starts=0`` (imagine from every replayed state, the
paper) are the numbers to compare across machines; absolute times drift on shared machines.

    python benchmarks/dreamer_update.py --preset tiny --starts 0,256,128 --repeats 3
    python benchmarks/dreamer_update.py --preset tiny --starts 128 --actor-grads reinforce,backprop
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from smiling.rl.dreamer import Dreamer, DreamerConfig
from smiling.rl.dreamer.agent import random_batches


def time_update(preset, starts, actor_grad, batch_size, seq_len, obs_dim, act_dim, fused, repeats):
    cfg = DreamerConfig(preset=preset, batch_size=batch_size, seq_len=seq_len, imag_starts=starts,
                        actor_grad=actor_grad)
    agent = Dreamer(obs_dim, act_dim, cfg)
    state = agent.init(0)
    data = random_batches(fused, batch_size, seq_len, obs_dim, act_dim)
    state, _ = agent.update(state, data)                       # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = agent.update(state, data)              # returns host floats: blocks until done
        times.append((time.perf_counter() - t0) / fused * 1e3)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--starts", default="0,256,128", help="comma-separated imag_starts values (0 = all)")
    p.add_argument("--actor-grads", default="reinforce", help="comma-separated: reinforce, backprop")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--obs-dim", type=int, default=5, help="5/1: cartpole-swingup; 24/6: walker-walk")
    p.add_argument("--act-dim", type=int, default=1)
    p.add_argument("--fused", type=int, default=8, help="training steps per jitted call")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    base = None
    print(f"preset {a.preset}, batch {a.batch_size} x {a.seq_len}, obs {a.obs_dim}, act {a.act_dim}, "
          f"{a.fused} steps per call, median of {a.repeats} calls")
    for grad in a.actor_grads.split(","):
        for starts in [int(s) for s in a.starts.split(",")]:
            ms = time_update(a.preset, starts, grad, a.batch_size, a.seq_len, a.obs_dim, a.act_dim, a.fused,
                             a.repeats)
            base = base or ms
            n = starts or a.batch_size * a.seq_len
            print(f"{grad:9s} imag_starts {starts:5d} ({n:5d} imagined starts): {ms:7.1f} ms per update, "
                  f"{base / ms:4.2f}x the speed of the first")


if __name__ == "__main__":
    main()
