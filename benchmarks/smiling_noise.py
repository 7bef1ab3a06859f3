"""Which noise schedule, and how many noise levels K, does SMILING's cost need? Measured in one run.

For each schedule, fit an expert score model on a task's bundled demonstrations and a "learner" score model
on uniform-random-policy states (the learner at the start of imitation), then evaluate the Eq. 4 cost on
held-out expert and random states:

* informative fraction: share of noise levels with signal scale alpha(u) > 0.05 (the rest is pure noise);
* separation: (mean cost of random states - mean cost of expert states) / per-sample Monte-Carlo std, i.e. how
  many single-sample standard deviations apart the two populations are (higher = fewer samples needed);
* AUC(K): probability that a K-sample cost estimate ranks a held-out expert state below a held-out random
  state (1 = perfect; K=512 stands in for the exact cost).

    python benchmarks/smiling_noise.py [--task dmc:ball_in_cup-catch] [--no-append]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import publish, report_header  # noqa: E402

SCHEDULES = [("ddpm, T=5000 (reference code)", dict(kind="ddpm", steps=5000)),
             ("ddpm, T=1000", dict(kind="ddpm", steps=1000)),
             ("cosine, T=1000", dict(kind="cosine", steps=1000)),
             ("ou, t_max=5 (paper Eq. 1)", dict(kind="ou", t_max=5.0))]
KS = (1, 4, 8, 32, 512)


def auc(low: np.ndarray, high: np.ndarray) -> float:
    """P(low < high) over all pairs (ties count 1/2)."""
    allv = np.concatenate([low, high])
    ranks = allv.argsort().argsort().astype(np.float64) + 1
    r_high = ranks[len(low):].sum()
    return float((r_high - len(high) * (len(high) + 1) / 2) / (len(low) * len(high)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="dmc:ball_in_cup-catch")
    p.add_argument("--expert-steps", type=int, default=20_000)
    p.add_argument("--learner-steps", type=int, default=10_000)
    p.add_argument("--eval-states", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args()

    import jax

    from smiling.data import load_demos
    from smiling.diffusion import Schedule, ScoreConfig, ScoreModel
    from smiling.diffusion.model import denoising_error_gap_jit
    from smiling.envs import make_env
    from smiling.envs.rollout import rollout

    demos = load_demos(a.task)
    env = make_env(a.task)
    rng = np.random.default_rng(a.seed)
    low, high = env.action_space.low, env.action_space.high
    rand_obs, _, _ = rollout(env, lambda o: rng.uniform(low, high), demos.num_episodes, (a.seed, 7))
    expert = demos.states()
    random_states = rand_obs[:, 1:].reshape(-1, rand_obs.shape[-1]).astype(np.float32)
    pe, pr = rng.permutation(len(expert)), rng.permutation(len(random_states))
    n = a.eval_states
    e_eval, e_fit = expert[pe[:n]], expert[pe[n:]]
    r_eval, r_fit = random_states[pr[:n]], random_states[pr[n:]]
    mean, std = ScoreModel.standardization(e_fit)

    rows = []
    t0 = time.perf_counter()
    for name, kw in SCHEDULES:
        sched = Schedule(**kw)
        cfg = ScoreConfig(schedule=sched)
        g_e = ScoreModel(expert.shape[1], cfg, mean, std, seed=a.seed)
        g_l = ScoreModel(expert.shape[1], cfg, mean, std, seed=a.seed + 1)
        g_e.fit(e_fit, a.expert_steps)
        g_l.fit(r_fit, a.learner_steps)
        key = jax.random.PRNGKey(a.seed)
        _, gaps_e = denoising_error_gap_jit(g_e.net, sched, g_e.params, g_l.params, g_e.standardize(e_eval), key,
                                            max(KS))
        _, gaps_r = denoising_error_gap_jit(g_e.net, sched, g_e.params, g_l.params, g_e.standardize(r_eval), key,
                                            max(KS))
        gaps_e, gaps_r = np.asarray(gaps_e, np.float64), np.asarray(gaps_r, np.float64)
        mc_std = float(np.sqrt(np.concatenate([gaps_e.var(1, ddof=1), gaps_r.var(1, ddof=1)]).mean()))
        sep = (gaps_r.mean() - gaps_e.mean()) / mc_std
        aucs = []
        for k in KS:
            # K stratified levels: one column from each of K equal blocks of the 512 stratified columns
            cols = np.arange(k) * (max(KS) // k) + rng.integers(0, max(KS) // k, k)
            aucs.append(auc(gaps_e[:, cols].mean(1), gaps_r[:, cols].mean(1)))
        rows.append((name, sched.informative_fraction(), g_e.loss(e_eval), g_l.loss(r_eval),
                     gaps_e.mean(), gaps_r.mean(), mc_std, sep, aucs))
        print(rows[-1], flush=True)
    wall = time.perf_counter() - t0

    lines = [*report_header("SMILING noise schedules and K", wall / 60),
             f"- {a.task}: expert = bundled demos ({len(e_fit)} states fitted, {n} held out); learner = uniform "
             f"random policy ({len(r_fit)} states fitted, {n} held out); score nets 1 x 256; "
             f"{a.expert_steps} expert / {a.learner_steps} learner score-matching steps; seed {a.seed}", "",
             "| schedule | informative levels | val. loss expert / learner | cost: expert states | cost: random "
             "states | per-sample MC std | separation | " + " | ".join(f"AUC K={k}" for k in KS) + " |",
             "|---" * (7 + len(KS)) + "|"]
    for name, inf, le, ll, ce, cr, mc, sep, aucs in rows:
        lines.append(f"| {name} | {inf:.0%} | {le:.3f} / {ll:.3f} | {ce:+.3f} | {cr:+.3f} | {mc:.3f} | {sep:.2f} | "
                     + " | ".join(f"{x:.3f}" for x in aucs) + " |")
    publish("\n".join(lines) + "\n", not a.no_append)


if __name__ == "__main__":
    main()
