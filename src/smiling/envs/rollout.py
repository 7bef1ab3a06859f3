"""Running a policy for whole episodes, each reset with a seed derived from its index."""

from __future__ import annotations

import numpy as np

from smiling.utils.seeding import derive_seed


def episodes_of(env, policy, episodes: int, seed_parts: tuple[int, ...], on_reset=None):
    """Run ``policy(obs) -> action`` for ``episodes`` whole episodes, yielding each as (obs (T+1, d), actions
    (T, a), rewards (T,) float64); T may differ between episodes (an env kept to its own termination). Episode j
    is reset with ``derive_seed(*seed_parts, j)``, and ``on_reset()`` (if given) is called then, e.g. to clear a
    recurrent policy's state."""
    for j in range(episodes):
        obs, _ = env.reset(seed=derive_seed(*seed_parts, j))
        if on_reset is not None:
            on_reset()
        os_, as_, rs = [obs], [], []
        done = False
        while not done:
            action = np.asarray(policy(obs), np.float32)
            obs, r, term, trunc, _ = env.step(action)
            os_.append(obs)
            as_.append(action)
            rs.append(r)
            done = term or trunc
        yield np.stack(os_), np.stack(as_), np.asarray(rs, np.float64)


def rollout(env, policy, episodes: int, seed_parts: tuple[int, ...], on_reset=None):
    """`episodes_of` stacked into (obs, actions, rewards) arrays shaped (E, T+1, d), (E, T, a), (E, T): the
    episodes must all have the same length (fixed-horizon envs, as demonstrations are)."""
    O, A, R = zip(*episodes_of(env, policy, episodes, seed_parts, on_reset))
    lengths = sorted({len(r) for r in R})
    if len(lengths) > 1:
        raise ValueError(f"{getattr(env, 'task_id', 'env')}: episodes of different lengths {lengths} (the env "
                         f"ended some early: keep_termination); stacked rollouts need episodes of one length")
    return np.stack(O), np.stack(A), np.stack(R)
