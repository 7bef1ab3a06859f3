"""Acting with a trained agent: its policy as a function for `smiling.envs.rollout.rollout`, and evaluation returns.

Below every algorithm: it needs an env, an agent (anything with ``act``, ``act_deterministic`` and
``begin_episode``; `smiling.algos.base.Agent` declares them), the agent's policy parameters and seeds.
"""

from __future__ import annotations

import jax
import numpy as np

from smiling.envs.rollout import episodes_of
from smiling.utils.seeding import derive_seed


def acting(agent, params, stochastic: bool = False, key_seed: int = 0):
    """``(policy(obs) -> action, on_reset())`` for `rollout`: the mean action (SAC: tanh(mu); Dreamer: actor mean
    on the most likely latent), or with ``stochastic`` actions sampled from the policy (Dreamer: latent and action
    both sampled, as DreamerV3 acts) from a JAX key seeded with ``key_seed``. Either way the agent's evaluation
    episode state is used, never the training episode's, so this is safe in the middle of training."""
    if not stochastic:
        return (lambda obs: agent.act_deterministic(params, obs)), (lambda: agent.begin_episode(evaluation=True))
    key = [jax.random.PRNGKey(key_seed)]

    def policy(obs):
        action, key[0] = agent.act(params, obs, key[0], evaluation=True)
        return action

    return policy, (lambda: agent.begin_episode(evaluation=True))


def evaluate(agent, params, env, episodes: int, seed_parts: tuple[int, ...], stochastic: bool = False) -> np.ndarray:
    """Returns of ``episodes`` episodes with the mean action, or sampled actions (`acting`); episode j is seeded
    from ``seed_parts``. Episodes may end early (an env kept to its own termination)."""
    policy, on_reset = acting(agent, params, stochastic, derive_seed(*seed_parts, 0, 1))
    return np.array([r.sum() for _, _, r in episodes_of(env, policy, episodes, seed_parts, on_reset=on_reset)])
