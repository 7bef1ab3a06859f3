"""The epsilon-prediction score network: an MLP on [x_u, time embedding].

Time embedding (learnable, 16-d by default): sinusoidal features of 1000 u -> Dense(2 e) -> LeakyReLU ->
Dense(e). The network maps [x_u, emb(u)] through ``depth`` hidden layers of ``width`` units (LeakyReLU) to
eps_hat in R^d. Paper default: one hidden layer of 256. ``linear=True`` removes every activation (the Fig. 5
ablation), leaving an affine function of [x_u, sinusoidal features].
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


def sinusoidal(u, dim: int):
    """Sinusoidal features of 1000 u (DDPM-style, max period 10^4)."""
    half = dim // 2
    freqs = jnp.exp(-jnp.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    ang = (1000.0 * u)[..., None] * freqs
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)


class ScoreNet(nn.Module):
    out_dim: int
    width: int = 256
    depth: int = 1
    time_dim: int = 16
    linear: bool = False

    @nn.compact
    def __call__(self, x, u):
        act = (lambda h: h) if self.linear else nn.leaky_relu
        emb = act(nn.Dense(2 * self.time_dim)(sinusoidal(u, self.time_dim)))
        emb = nn.Dense(self.time_dim)(emb)
        h = jnp.concatenate([x, emb], axis=-1)
        for _ in range(self.depth):
            h = act(nn.Dense(self.width)(h))
        return nn.Dense(self.out_dim)(h)
