"""Demonstrations from a policy (an expert's: `smiling.evaluation.demos_from_run`), with the random-policy return
needed for normalization.

The paper's setting: 5 episodes x 1000 steps with no early termination. `demos_from_run` rolls out an expert's
mean action by default; with ``stochastic=True`` it samples from the policy (the SMILING reference code collects
demos that way).
"""

from __future__ import annotations

import time

import numpy as np

from smiling._version import __version__
from smiling.data.demos import Demos
from smiling.envs import make_env
from smiling.envs.rollout import rollout
from smiling.utils.seeding import derive_seed

DEMO_STREAM, RANDOM_STREAM = 21, 22


def random_policy_returns(task: str, episodes: int = 10, seed: int = 0, horizon: int = 1000) -> np.ndarray:
    """Returns of a uniform random policy on ``task`` (fixed horizon, no early termination)."""
    env = make_env(task, horizon)
    rng = np.random.default_rng(derive_seed(seed, RANDOM_STREAM))
    _, _, R = rollout(env, lambda o: rng.uniform(-1, 1, env.action_space.shape), episodes,
                      (seed, RANDOM_STREAM))
    env.close()
    return R.sum(axis=1)


def generate_demos(policy, task: str, episodes: int = 5, seed: int = 0, random_episodes: int = 10,
                   horizon: int = 1000, on_reset=None, source: dict | None = None) -> Demos:
    """Roll out ``policy(obs) -> action`` (``on_reset()`` called at each episode start) for ``episodes`` episodes of
    ``task`` with no early termination, and measure a uniform random policy's return for normalization. The
    policy sees the task's flat float32 observations and returns actions in [-1, 1] (mapped onto the env's bounds).
    ``source`` goes into the metadata (e.g. the expert run and checkpoint; `smiling.evaluation.demos_from_run`)."""
    if episodes < 1 or random_episodes < 1:
        raise ValueError("episodes and random_episodes must be >= 1")
    env = make_env(task, horizon, keep_termination=False)
    obs_keys = env.obs_keys
    t0 = time.time()
    O, A, R = rollout(env, policy, episodes, (seed, DEMO_STREAM), on_reset=on_reset)
    env.close()
    rets = R.sum(axis=1)
    rand = random_policy_returns(task, random_episodes, seed, horizon)
    meta = {
        "task": task, "obs_keys": obs_keys, "source": "smiling", **(source or {}), "seed": int(seed),
        "expert_return_mean": float(rets.mean()), "expert_return_std": float(rets.std()),
        "random_return_mean": float(rand.mean()), "random_return_std": float(rand.std()),
        "random_episodes": int(random_episodes), "horizon": int(horizon),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smiling_version": __version__,
        "rollout_seconds": round(time.time() - t0, 2),
    }
    return Demos(O, A, R, meta)


def describe(demos: Demos) -> str:
    """A short human-readable summary (what `smiling demos info` prints)."""
    m = dict(demos.metadata)
    lines = [repr(demos)]
    for k in ("source", "expert_run", "stochastic", "created", "smiling_version"):
        if k in m:
            at = m.get("expert_checkpoint_step") if k == "expert_run" else None
            lines.append(f"  {k}: {m[k]}" + (f" (checkpoint at env step {at})" if at is not None else ""))
    if "expert_return_mean" in m:
        lines.append(f"  expert return: {m['expert_return_mean']:.1f} +- {m['expert_return_std']:.1f} "
                     f"(over the {demos.num_episodes} demo episodes)")
    elif demos.rewards is not None:
        r = demos.returns()
        lines.append(f"  episode return: {r.mean():.1f} +- {r.std():.1f}")
    if "random_return_mean" in m:
        lines.append(f"  random-policy return: {m['random_return_mean']:.1f} +- {m['random_return_std']:.1f} "
                     f"(over {m.get('random_episodes', '?')} episodes)")
    if "obs_keys" in m:
        lines.append("  observation keys: " + ", ".join(f"{k}[{a}:{b}]" for k, a, b in m["obs_keys"]))
    return "\n".join(lines)
