"""Many gradient steps in one jitted call, as sbx does: the shared pattern of every agent in `smiling.rl`.

An agent defines ``update_one(state, batch) -> (state, metrics)``; `scan_updates` (traced inside ``jax.jit``)
runs it over batches stacked on a leading axis (N, ...) in one ``lax.scan`` and averages the metrics over the
N steps, and `run_update` is the host side: NumPy batches in, the new state and plain-float metrics out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def scan_updates(update_one, state, batches):
    state, metrics = jax.lax.scan(update_one, state, batches)
    return state, jax.tree_util.tree_map(jnp.mean, metrics)


def run_update(jitted, state, batches: dict):
    state, metrics = jitted(state, {k: jnp.asarray(v) for k, v in batches.items()})
    return state, {k: float(v) for k, v in metrics.items()}
