"""How an imitation run's reward model scores states, next to the true reward.

Loads the reward model (SMILING or DAC) of RUN_DIR's checkpoint at env step STEP and prints, for each set of
states, the mean and median of the reward the agent would get (after the run's normalization) and its
correlation with the task's true reward:

* the run's demonstrations, the learner's replay buffer (last 20k and all), a uniform random policy;
* each ``--policy RUN:STEP`` (another run's checkpoint, mean action, 2 episodes), e.g. an expert at several
  stages of its training;
* with ``--trace RUN:STEP``, the reward along one episode of that policy, step by step (``--trace demos``: along
  the first demonstrated episode);
* with ``--bin-dim I``, the learner buffer's states binned by observation dimension I (e.g. 14 = walker torso
  height), so one can see whether the reward rises along the way to the expert's states.

For a SMILING run the trace and the bins also show the two terms of the cost (paper Eq. 4, noise-prediction
form): the expert and the learner score model's denoising errors, each averaged over 64 stratified noise
levels with the same noise for both (cost = expert error - learner error; a high cost is a low reward), each
capped at the zero predictor's error when the run caps them (``smiling.cap_errors``). With the per-batch
normalization (``smiling.normalization=batch``) the reward column is the raw -cost.

    python benchmarks/reward_ranking.py runs/bench/smiling-walker-s0 100000 \\
        --policy runs/bench/walker-walk-s2:50000 --policy runs/bench/walker-walk-s2:150000 \\
        --trace runs/bench/walker-walk-s2:150000 --bin-dim 14
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

from smiling.algos.offpolicy import load_reward_state
from smiling.algos.registry import load_config, make_reward_model
from smiling.data import load_demos
from smiling.diffusion.model import denoising_errors_jit
from smiling.envs import make_env
from smiling.envs.rollout import rollout
from smiling.evaluation import load_acting
from smiling.runs import Checkpoints


def load_reward_model(run_dir: Path, step: int):
    cfg = load_config(run_dir)
    rm = make_reward_model(cfg)
    if rm is None:
        raise SystemExit(f"{run_dir}: a {cfg.algo} run has no reward model")
    ckpt = Checkpoints(run_dir).at(step)
    load_reward_state(rm, ckpt)
    return cfg, rm, ckpt


def mean_denoising_errors(rm, states: np.ndarray, levels: int = 64, cap: bool | None = None):
    """Per-state (expert error, learner error) of a SMILING reward model, averaged over ``levels`` levels, capped
    as the run caps them (or as ``cap`` says)."""
    cap = rm.config.cap_errors if cap is None else cap
    err_e, err_l = denoising_errors_jit(rm.expert.net, rm.config.score.schedule, rm.expert.params,
                                        rm.learner.params, rm.expert.standardize(states), jax.random.PRNGKey(0),
                                        levels, "stratified", cap)
    return np.asarray(err_e).mean(1), np.asarray(err_l).mean(1)


def policy_rollout(spec: str, env, episodes: int, seed: int):
    run, _, step = spec.rpartition(":")
    _, policy, on_reset, _ = load_acting(run, int(step))
    return rollout(env, policy, episodes, (seed,), on_reset=on_reset)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("step", type=int)
    p.add_argument("--policy", action="append", default=[], help="RUN:STEP of a policy to roll out (repeatable)")
    p.add_argument("--trace", help="RUN:STEP: print the reward along one episode of this policy")
    p.add_argument("--bin-dim", type=int, help="bin the learner buffer's states by this observation dimension")
    a = p.parse_args()

    cfg, rm, ckpt = load_reward_model(a.run_dir, a.step)
    if cfg.smiling.use_actions if cfg.algo == "smiling" else cfg.dac.use_actions:
        raise SystemExit("this script scores states only; the run scores (state, action) pairs")
    print(f"{a.run_dir} at {a.step} env steps ({cfg.algo} on {cfg.task})")
    smiling = cfg.algo == "smiling"
    split_head = " expert denoising error | learner denoising error |" if smiling else ""
    print("| states | n | reward mean | reward median | true reward mean | correlation with true reward |")
    print("|---|---|---|---|---|---|")

    def reward(states: np.ndarray) -> np.ndarray:  # the reward of arriving in (or, scoring s, being in) states
        return rm.reward(states, None, states)

    def row(name: str, states: np.ndarray, true_r: np.ndarray) -> None:
        r = reward(states)
        corr = np.corrcoef(r, true_r)[0, 1] if r.std() > 0 and true_r.std() > 0 else float("nan")
        print(f"| {name} | {len(r)} | {r.mean():+.3f} | {np.median(r):+.3f} | {true_r.mean():.3f} | {corr:+.2f} |")

    flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
    demos = load_demos(cfg.demos or cfg.task)
    if demos.rewards is not None:
        row("demonstrations", flat(demos.observations[:, 1:]), demos.rewards.reshape(-1))
    buf = np.load(ckpt / "buffer.npz", allow_pickle=False)
    row("learner buffer, last 20k", buf["next_obs"][-20000:], buf["reward"][-20000:])
    row("learner buffer, all", buf["next_obs"], buf["reward"])
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    rng = np.random.default_rng(0)
    O, _, R = rollout(env, lambda o: rng.uniform(-1, 1, env.action_space.shape), 3, (7,))
    row("random policy (3 episodes)", flat(O[:, 1:]), R.reshape(-1))
    for spec in a.policy:
        O, _, R = policy_rollout(spec, env, 2, 8)
        row(f"{spec} (mean action, 2 episodes)", flat(O[:, 1:]), R.reshape(-1))

    if a.trace:
        if a.trace == "demos":
            O, R = demos.observations[:1], demos.rewards[:1]
        else:
            O, _, R = policy_rollout(a.trace, env, 1, 9)
        r = reward(O[0, 1:])
        errs = mean_denoising_errors(rm, O[0, 1:]) if smiling else None
        capped = smiling and rm.config.cap_errors
        if capped:  # what the cap removed: the same models' errors without it
            raw = mean_denoising_errors(rm, O[0, 1:], cap=False)
            split_head += " expert error, uncapped | learner error, uncapped |"
        dim = f" | obs[{a.bin_dim}]" if a.bin_dim is not None else ""
        print(f"\none episode of {a.trace}\n| step{dim} | true reward | imitation reward |{split_head}")
        print("|---|---|---|" + ("---|" if dim else "") + ("---|---|" if smiling else "") + ("---|---|" if capped else ""))
        for t in [*range(0, 60, 5), 100, 300, 600, len(r) - 1]:
            if t < len(r):
                d = f" | {O[0, t + 1, a.bin_dim]:.2f}" if dim else ""
                e = f" {errs[0][t]:.1f} | {errs[1][t]:.1f} |" if smiling else ""
                e += f" {raw[0][t]:.1f} | {raw[1][t]:.1f} |" if capped else ""
                print(f"| {t}{d} | {R[0, t]:.2f} | {r[t]:+.3f} |{e}")

    if a.bin_dim is not None:
        x, r, tr = buf["next_obs"][:, a.bin_dim], reward(buf["next_obs"]), buf["reward"]
        edges = np.linspace(x.min(), x.max(), 9)
        last = np.arange(len(x)) >= len(x) - 20000
        print(f"\nlearner buffer by obs[{a.bin_dim}] (8 equal-width bins)\n| obs[{a.bin_dim}] | n | imitation reward | "
              "true reward |" + (" expert error, median of the last 20k | learner error, same |" if smiling else ""))
        print("|---|---|---|---|" + ("---|---|" if smiling else ""))
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = (x >= lo) & (x <= hi)
            if m.any():
                e = ""
                if smiling and (m & last).any():
                    ea, el = mean_denoising_errors(rm, buf["next_obs"][m & last][:4096])
                    e = f" {np.median(ea):.1f} | {np.median(el):.1f} |"
                elif smiling:
                    e = " | |"
                print(f"| {lo:.2f} to {hi:.2f} | {m.sum()} | {r[m].mean():+.3f} | {tr[m].mean():.3f} |{e}")


if __name__ == "__main__":
    main()
