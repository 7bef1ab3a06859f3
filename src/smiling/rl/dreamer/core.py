"""The closed-form pieces of DreamerV3 (Hafner et al. 2023), each a pure JAX function.

* ``symlog(x) = sign(x) log(1 + |x|)`` and its inverse ``symexp(x) = sign(x) (exp(|x|) - 1)``: squash targets of
  unknown scale (observations, rewards, returns) so one set of hyperparameters fits every task.
* Two-hot regression: a scalar ``y`` is represented on fixed bins ``b_1 < ... < b_K`` (equally spaced in symlog
  space, ``b = linspace(-20, 20, 255)``) by weight on its two neighbouring bins,
  ``w_k = (b_{k+1} - y) / (b_{k+1} - b_k)``, ``w_{k+1} = 1 - w_k`` (all weight on the end bin outside the range);
  a head predicts softmax logits over the bins, is trained by cross-entropy against the two-hot target of
  ``symlog(y)``, and predicts ``symexp(sum_k p_k b_k)``.
* Categorical latents with 1 % uniform mix ("unimix"): ``p = 0.99 softmax(l) + 0.01 / C``; sampled one-hot with
  straight-through gradients ``z = onehot + p - sg(p)``.
* KL balancing with free bits: ``L_dyn = max(1, KL[sg(q) || p])``, ``L_rep = max(1, KL[q || sg(p)])`` with KL summed
  over the latent variables of a step, weighted 0.5 and 0.1 in the world-model loss.
* lambda-returns ``R_t = r_t + gamma c_t ((1 - lambda) v_{t+1} + lambda R_{t+1})``, ``R_H = v_H``.
* Return normalisation by percentiles: ``S = EMA(Per(R, 95) - Per(R, 5))`` (decay 0.99) and advantages divided by
  ``max(1, S)``, so small returns are not blown up and large ones are scaled down.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

UNIMIX = 0.01
FREE_NATS = 1.0


def symlog(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x):
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def twohot_bins(num: int = 255, low: float = -20.0, high: float = 20.0):
    """Bin centres in symlog space."""
    return jnp.linspace(low, high, num)


def twohot(y, bins):
    """Two-hot encoding of ``y`` (already in the bins' space) on ``bins``: shape ``y.shape + (K,)``, rows sum to 1."""
    y = jnp.clip(y, bins[0], bins[-1])
    k = jnp.clip(jnp.searchsorted(bins, y, side="right") - 1, 0, bins.shape[0] - 2)
    lo, hi = bins[k], bins[k + 1]
    w_hi = (y - lo) / (hi - lo)
    n = bins.shape[0]
    return jax.nn.one_hot(k, n) * (1.0 - w_hi)[..., None] + jax.nn.one_hot(k + 1, n) * w_hi[..., None]


def twohot_mean(logits, bins):
    """Prediction of a two-hot head, back in the original space: ``symexp(sum_k softmax(logits)_k b_k)``."""
    return symexp(jnp.sum(jax.nn.softmax(logits, -1) * bins, -1))


def twohot_loss(logits, target, bins):
    """Cross-entropy of a two-hot head against ``twohot(symlog(target))``."""
    return -jnp.sum(twohot(symlog(target), bins) * jax.nn.log_softmax(logits, -1), -1)


def unimix_probs(logits, mix: float = UNIMIX):
    return (1.0 - mix) * jax.nn.softmax(logits, -1) + mix / logits.shape[-1]


def sample_onehot(key, probs):
    """One-hot sample of categorical ``probs`` (..., C) with straight-through gradients."""
    idx = jax.random.categorical(key, jnp.log(probs))
    onehot = jax.nn.one_hot(idx, probs.shape[-1], dtype=probs.dtype)
    return onehot + probs - jax.lax.stop_gradient(probs)


def categorical_kl(p, q):
    """KL[p || q] of categorical distributions over the last axis, summed over the second-to-last (the latents)."""
    return jnp.sum(p * (jnp.log(p) - jnp.log(q)), axis=(-2, -1))


def kl_balance(post, prior, free: float = FREE_NATS):
    """(dynamics loss, representation loss): KL with the stop-gradient on one side each, clipped below at ``free``."""
    sg = jax.lax.stop_gradient
    dyn = jnp.maximum(free, categorical_kl(sg(post), prior))
    rep = jnp.maximum(free, categorical_kl(post, sg(prior)))
    return dyn, rep


def lambda_returns(rewards, values, continues, discount: float, lam: float):
    """lambda-returns along the leading (time) axis.

    ``rewards[t]`` and ``continues[t]`` are received on the step from state t to t + 1 (length H); ``values`` has
    length H + 1 (the last one bootstraps). Returns length H.
    """
    def step(nxt, inp):
        r, c, v_next = inp
        ret = r + discount * c * ((1.0 - lam) * v_next + lam * nxt)
        return ret, ret

    _, rets = jax.lax.scan(step, values[-1], (rewards, continues, values[1:]), reverse=True)
    return rets


def update_return_scale(scale, returns, decay: float = 0.99):
    """EMA of the 5th-to-95th percentile range of ``returns``."""
    spread = jnp.percentile(returns, 95) - jnp.percentile(returns, 5)
    return decay * scale + (1.0 - decay) * spread


def normalise_advantage(advantage, scale):
    return advantage / jnp.maximum(1.0, scale)
