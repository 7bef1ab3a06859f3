"""Flax modules shared by the RL code: an MLP, a tanh-Gaussian actor and an ensemble of Q critics."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    out_dim: int
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        for h in self.hidden_dims:
            x = nn.Dense(h)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return nn.Dense(self.out_dim)(x)


class Actor(nn.Module):
    """Outputs (mean, log_std) of a Gaussian over pre-tanh actions; log_std is squashed into [-5, 2]."""

    hidden_dims: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden_dims, 2 * self.action_dim)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


def sample_tanh_gaussian(mean, log_std, key):
    """Reparameterised sample ``a = tanh(mean + std * eps)`` and its log-density.

    log pi(a) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2), with the stable identity
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)).
    """
    std = jnp.exp(log_std)
    eps = jax.random.normal(key, mean.shape)
    u = mean + std * eps
    log_prob = jnp.sum(-0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    log_prob -= jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    return jnp.tanh(u), log_prob


class Critic(nn.Module):
    hidden_dims: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs, action):
        return MLP(self.hidden_dims, 1, self.layer_norm)(jnp.concatenate([obs, action], -1))[..., 0]


class CriticEnsemble(nn.Module):
    """``num`` independent critics evaluated in one vectorised call; output shape (num, batch)."""

    hidden_dims: Sequence[int]
    num: int = 2
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs, action):
        ens = nn.vmap(Critic, variable_axes={"params": 0}, split_rngs={"params": True},
                      in_axes=None, out_axes=0, axis_size=self.num)
        return ens(self.hidden_dims, self.layer_norm)(obs, action)
