"""Noise schedules. Each maps a noise level u in [0, 1) to the forward-process marginal

    x_u = alpha(u) * s + sigma(u) * eps,   eps ~ N(0, I),

so that the score of q_u(x_u | s) is -eps / sigma(u) and a network trained to predict eps (DDPM's
"noise prediction") gives the score up to the factor -1/sigma (paper Remark 1). Noise levels are drawn as
u ~ U[0, 1); with K samples per state they are stratified, u_k = (k + U_k) / K.

* ``ddpm``: linear betas from 1e-4 to 0.02 over T discrete steps (t = floor(u T)), alpha = sqrt(abar_t),
  sigma = sqrt(1 - abar_t). The reference code uses T = 5000, where abar_t ~ 0 for t > ~2000: most levels
  are pure noise and carry no information about s.
* ``cosine``: abar(u) = cos^2(((u + s)/(1 + s)) pi/2) / cos^2((s/(1 + s)) pi/2), s = 0.008 (Nichol & Dhariwal),
  clipped to [1e-5, 1].
* ``ou``: the paper's Ornstein-Uhlenbeck process (Eq. 1), t = u * t_max, alpha = e^{-t},
  sigma = sqrt(1 - e^{-2t}).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from smiling.utils.config import check_field_types

SCHEDULES = ("ddpm", "cosine", "ou")


@dataclasses.dataclass(frozen=True)
class Schedule:
    kind: str = "cosine"
    """ddpm, cosine or ou. Default cosine: more of its levels keep signal than ddpm's (alpha near 0 at many of
    DDPM's late steps), and it separated expert from random states best per sample (`benchmarks/smiling_noise.py`,
    docs/benchmarks.md)."""
    steps: int = 1000
    """Discretisation steps T (ddpm and cosine)."""
    beta_min: float = 1e-4
    beta_max: float = 0.02
    t_max: float = 5.0
    """Largest OU time (ou): e^{-t_max} is the signal left at the end."""

    def __post_init__(self):
        check_field_types(self, "smiling.score.schedule.")
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown noise schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}")
        if self.steps < 1 or self.t_max <= 0 or not 0 < self.beta_min <= self.beta_max < 1:
            raise ValueError(f"invalid schedule parameters: {self}")

    def _abar_table(self) -> np.ndarray:
        if self.kind == "ddpm":
            betas = np.linspace(self.beta_min, self.beta_max, self.steps, dtype=np.float64)
            return np.cumprod(1.0 - betas)
        s = 0.008
        u = (np.arange(self.steps, dtype=np.float64) + 1) / self.steps
        f = np.cos((u + s) / (1 + s) * np.pi / 2) ** 2 / np.cos(s / (1 + s) * np.pi / 2) ** 2
        return np.clip(f, 1e-5, 1.0)

    def alpha_sigma(self, u):
        """(alpha, sigma) at noise levels u in [0, 1) (any shape; works under jit)."""
        if self.kind == "ou":
            t = u * self.t_max
            return jnp.exp(-t), jnp.sqrt(-jnp.expm1(-2.0 * t))
        table = jnp.asarray(self._abar_table(), jnp.float32)
        idx = jnp.clip(jnp.floor(u * self.steps).astype(jnp.int32), 0, self.steps - 1)
        abar = table[idx]
        return jnp.sqrt(abar), jnp.sqrt(1.0 - abar)

    def informative_fraction(self, threshold: float = 0.05) -> float:
        """Share of noise levels whose signal scale alpha exceeds ``threshold`` (a measure of wasted samples)."""
        u = (np.arange(10_000) + 0.5) / 10_000
        alpha, _ = self.alpha_sigma(jnp.asarray(u, jnp.float32))
        return float(np.mean(np.asarray(alpha) > threshold))


def stratified_levels(key, n: int, k: int):
    """(n, k) noise levels: row i holds one uniform draw in each stratum [j/k, (j+1)/k), j = 0..k-1.

    The in-stratum draw is capped at 1 - 2^-10 so that float32 rounding of j + U never reaches j + 1
    (exact for k <= 8192).
    """
    import jax

    if not 1 <= k <= 8192:
        raise ValueError(f"number of noise levels must be in [1, 8192], got {k}")
    w = jnp.minimum(jax.random.uniform(key, (n, k)), 1.0 - 2.0**-10)
    return (jnp.arange(k, dtype=jnp.float32)[None, :] + w) / k
