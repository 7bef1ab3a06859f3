"""Running a policy for whole episodes, each reset with a seed derived from its index."""

from __future__ import annotations

import numpy as np

from smiling.utils.seeding import derive_seed


def rollout(env, policy, episodes: int, seed_parts: tuple[int, ...], on_reset=None):
    """Run ``policy(obs) -> action`` for ``episodes`` full episodes; returns (obs, actions, rewards) arrays
    shaped (E, T+1, d), (E, T, a), (E, T), rewards in float64. Episode j is reset with
    ``derive_seed(*seed_parts, j)``, and ``on_reset()`` (if given) is called then, e.g. to clear a recurrent
    policy's state. Episodes must all have the same length (fixed-horizon envs)."""
    O, A, R = [], [], []
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
        O.append(np.stack(os_))
        A.append(np.stack(as_))
        R.append(np.asarray(rs, np.float64))
    return np.stack(O), np.stack(A), np.stack(R)
