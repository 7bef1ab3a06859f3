"""DreamerV3's networks as small Flax modules, each with its own parameters (composed by `smiling.rl.dreamer.agent`).

World model (RSSM with discrete latents), for a sequence of observations o_t and previous actions a_{t-1}:

    e_t = enc(symlog o_t)                           encoder
    h_t = GRU(h_{t-1}, MLP([z_{t-1}, a_{t-1}]))     deterministic recurrent state
    z_t ~ q(z_t | h_t, e_t)                         posterior: ``stoch`` categoricals of ``classes`` classes
    z_t ~ p(z_t | h_t)                              prior (used in imagination)
    heads on s_t = [h_t, z_t]:  decoder (symlog o_t, squared error), reward (two-hot), continue (Bernoulli)

Actor and critic read the same features s_t. Layers are Dense -> LayerNorm -> SiLU as in DreamerV3; the reward
and critic heads' output layers start at zero so their first predictions are 0.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class Trunk(nn.Module):
    """``layers`` x (Dense(units) -> LayerNorm -> SiLU), then an optional Dense(out) (zero-initialised if asked)."""

    units: int
    layers: int
    out: int | None = None
    zero_out: bool = False

    @nn.compact
    def __call__(self, x):
        for _ in range(self.layers):
            x = nn.silu(nn.LayerNorm()(nn.Dense(self.units)(x)))
        if self.out is not None:
            init = nn.initializers.zeros if self.zero_out else nn.initializers.lecun_normal()
            x = nn.Dense(self.out, kernel_init=init)(x)
        return x


class Cell(nn.Module):
    """One recurrent step: h_t = GRU(h_{t-1}, Trunk([z_{t-1}, a_{t-1}]))."""

    deter: int
    units: int

    @nn.compact
    def __call__(self, h, z_flat, action):
        x = Trunk(self.units, 1)(jnp.concatenate([z_flat, action], -1))
        h, _ = nn.GRUCell(self.deter)(h, x)
        return h


class ActorHead(nn.Module):
    """Gaussian policy: mean = tanh(m), std in [0.1, 1]; env actions are samples clipped to [-1, 1]."""

    units: int
    layers: int
    action_dim: int

    @nn.compact
    def __call__(self, feat):
        out = Trunk(self.units, self.layers, 2 * self.action_dim)(feat)
        m, s = jnp.split(out, 2, -1)
        return jnp.tanh(m), 0.9 * nn.sigmoid(s + 2.0) + 0.1
