"""Throughput of the RL core, measured in one run: env steps/s, SAC gradient updates/s, SAC loop steps/s.

    python benchmarks/throughput.py                 # appends a dated section to docs/benchmarks.md
    python benchmarks/throughput.py --no-append     # print only
    python benchmarks/throughput.py --paper-sac     # our SAC against the reference code's (--preset paper-sac)

Numbers drift on shared machines: compare ratios measured in the same run, not absolute values across runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    import jax

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, jax {jax.__version__} "
            f"({jax.default_backend()})")


def report_header(title: str, wall_min: float | None = None) -> list[str]:
    """First lines of a dated docs/benchmarks.md section: title with UTC time, machine, the exact command."""
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    took = f" ({wall_min:.1f} min)" if wall_min is not None else ""
    return [f"### {title}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
            f"- machine: {machine()}", f"- command: `{cmd}`{took}"]


def publish(text: str, append: bool) -> None:
    """Print a section and, if ``append``, add it to the end of docs/benchmarks.md (atomically)."""
    print(text)
    if append:
        from smiling.utils.io import atomic_write_text

        doc = ROOT / "docs" / "benchmarks.md"
        old = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
        atomic_write_text(doc, old.rstrip("\n") + "\n\n" + text)
        print(f"appended to {doc}")


def timed(fn, repeats: int) -> float:
    """Seconds per call of ``fn`` over ``repeats`` calls, after one untimed call (compilation)."""
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def env_steps_per_sec(task: str, steps: int) -> tuple[float, float]:
    """(wrapped TaskEnv steps/s, bare backend steps/s) with uniform random actions."""
    from smiling.envs import make_env

    env = make_env(task)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, env.action_space.shape[0]))
    env.reset(seed=0)
    t = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    wrapped = steps / (time.perf_counter() - t)
    bare = None
    if task.startswith("dmc:"):
        inner = env._env
        inner.reset()
        t = time.perf_counter()
        for a in actions:
            if inner.step(a).last():
                inner.reset()
        bare = steps / (time.perf_counter() - t)
    return wrapped, bare


def sac_updates_per_sec(obs_dim: int, act_dim: int, n: int, rounds: int, config=None) -> float:
    from smiling.rl import SAC, ReplayBuffer, SACConfig

    sac = SAC(obs_dim, act_dim, config or SACConfig())
    state = sac.init(0)
    buf = ReplayBuffer(obs_dim, act_dim, 10_000)
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        buf.add(rng.normal(size=obs_dim), rng.uniform(-1, 1, act_dim), rng.normal(), rng.normal(size=obs_dim), 0)
    state, _ = sac.update(state, buf.sample(rng, sac.config.batch_size, n))  # compile
    t = time.perf_counter()
    for _ in range(rounds):
        state, m = sac.update(state, buf.sample(rng, sac.config.batch_size, n))
    return n * rounds / (time.perf_counter() - t)


def sac_loop_steps_per_sec(task: str, train_steps: int, preset: str | None = None) -> float:
    """Env steps/s of the full training loop (act, step, store, UTD-1 updates), after the random seed steps."""
    from smiling.algos import TrainConfig, train
    from smiling.algos.presets import apply_preset
    from smiling.runs import read_metrics

    tmp = Path(tempfile.mkdtemp())
    try:
        cfg = TrainConfig(task=task, eval_every=10**9, eval_episodes=1, checkpoint_every=10**9)
        if preset:
            cfg = apply_preset(cfg, preset)
        cfg = dataclasses.replace(cfg, steps=1000 + train_steps, seed_steps=1000)
        train(cfg, tmp / "run", quiet=True)
        rows = {int(r["step"]): float(r["wall_time"]) for r in read_metrics(tmp / "run")}
        return train_steps / (rows[1000 + train_steps] - rows[1000])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="dmc:cheetah-run")
    p.add_argument("--env-steps", type=int, default=20_000)
    p.add_argument("--loop-steps", type=int, default=5_000, help="training steps timed in the SAC loop")
    p.add_argument("--no-append", action="store_true")
    p.add_argument("--paper-sac", action="store_true", help="time our SAC against --preset paper-sac instead")
    a = p.parse_args()

    from smiling.envs import make_env

    env = make_env(a.task)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if a.paper_sac:
        return compare_paper_sac(a, obs_dim, act_dim)
    wrapped, bare = env_steps_per_sec(a.task, a.env_steps)
    upd = sac_updates_per_sec(obs_dim, act_dim, n=1000, rounds=3)
    loop = sac_loop_steps_per_sec(a.task, a.loop_steps)

    from smiling.rl import SACConfig

    c = SACConfig()
    lines = [
        *report_header("Throughput"),
        f"- SAC: hidden {list(c.hidden_dims)}, batch {c.batch_size}, UTD {c.utd}, "
        f"{c.num_critics} critics, one process",
        "",
        "| measure | value |",
        "|---|---|",
        f"| {a.task} env steps/s, random actions, `make_env` wrapper | {wrapped:,.0f} |",
    ]
    if bare is not None:
        lines.append(f"| {a.task} env steps/s, random actions, bare dm_control | {bare:,.0f} |")
    lines += [
        f"| SAC gradient updates/s (1000 fused per call) | {upd:,.0f} |",
        f"| SAC training loop env steps/s ({a.loop_steps} steps after 1000 random) | {loop:,.0f} |",
        f"| loop steps/s ÷ updates/s (share of time in updates) | {loop / upd:.2f} |",
        f"| env steps/s ÷ loop steps/s | {wrapped / loop:.0f}× |",
        "",
    ]
    publish("\n".join(lines), not a.no_append)


def compare_paper_sac(a, obs_dim: int, act_dim: int) -> None:
    """Updates/s and loop env steps/s of our SAC and of the reference code's (`--preset paper-sac`), one run."""
    from smiling.algos.presets import apply_preset
    from smiling.algos import TrainConfig

    paper = apply_preset(TrainConfig(), "paper-sac").sac
    ours = TrainConfig().sac
    rows = []
    for name, cfg, preset in (("ours", ours, None), ("paper-sac", paper, "paper-sac")):
        upd = sac_updates_per_sec(obs_dim, act_dim, n=200, rounds=3, config=cfg)
        loop = sac_loop_steps_per_sec(a.task, a.loop_steps, preset)
        rows.append((name, cfg, upd, loop))
    lines = [*report_header("Our SAC vs the reference code's SAC (--preset paper-sac)"),
             f"- {a.task}; loop: {a.loop_steps} env steps after 1000 random ones, one update per env step", "",
             "| SAC | hidden | batch | updates/s | loop env steps/s | ÷ ours (loop) | hours per 100k env steps |",
             "|---|---|---|---|---|---|---|"]
    base = rows[0][3]
    lines += [f"| {n} | {list(c.hidden_dims)} | {c.batch_size} | {u:,.1f} | {lp:,.1f} | {lp / base:.3f} | "
              f"{1e5 / lp / 3600:.1f} |" for n, c, u, lp in rows]
    publish("\n".join(lines) + "\n", not a.no_append)


if __name__ == "__main__":
    main()
