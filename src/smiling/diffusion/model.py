"""Score models fitted by denoising score matching, and the SMILING cost built from two of them.

Training objective (paper Alg. 1 line 1, in noise-prediction form, Remark 1): with x standardized by the
*expert* data's mean and std,

    L(g) = E_{x, u ~ U[0,1), eps ~ N(0, I)} || g(alpha(u) x + sigma(u) eps, u) - eps ||^2.

The minimiser is g*(x_u, u) = -sigma(u) grad log p_u(x_u), so differences of denoising errors estimate
differences of diffusion scores (paper Eq. 2-4).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from smiling.diffusion.network import ScoreNet
from smiling.diffusion.schedules import Schedule, stratified_levels
from smiling.utils.cache import jit_key_of, shared_jit
from smiling.utils.config import at_least, at_least_one, check_field_types
from smiling.utils.io import restore_tree
from smiling.utils.shapes import pad_rows_pow2


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """Score network and training hyperparameters (paper defaults: 1 x 256, 16-d time embedding, lr 5e-3,
    batch 1024, AdamW weight decay 0.01)."""

    schedule: Schedule = Schedule()
    width: int = 256
    depth: int = 1
    time_dim: int = 16
    linear: bool = False
    """Remove all activations (Fig. 5 ablation)."""
    lr: float = 5e-3
    weight_decay: float = 0.01
    batch_size: int = 1024

    def __post_init__(self):
        check_field_types(self, "smiling.score.")
        at_least_one(self, "width", "batch_size", prefix="smiling.score.")
        if self.time_dim < 2 or self.time_dim % 2:  # (sin and cos pairs: 1 left the embedding empty)
            raise ValueError(f"smiling.score.time_dim must be even and >= 2, got {self.time_dim}")
        at_least(self, 0, "depth", prefix="smiling.score.")


class ScoreModel:
    """An eps-prediction network with its standardization and optimizer state.

    ``mean``/``std`` standardize raw states (use the expert data's statistics for both the expert and the
    learner model, so that both live in one space).
    """

    def __init__(self, dim: int, config: ScoreConfig, mean: np.ndarray, std: np.ndarray, seed: int = 0):
        self.dim, self.config = int(dim), config
        self.mean = jnp.asarray(mean, jnp.float32).reshape(dim)
        self.std = jnp.asarray(std, jnp.float32).reshape(dim)
        self.net = ScoreNet(dim, config.width, config.depth, config.time_dim, config.linear)
        self.tx = optax.adamw(config.lr, weight_decay=config.weight_decay)
        # compiled once per (class, dim, config) in a process (`shared_jit`): they read no data of this model.
        # The initial state too, in one compiled call: op by op, flax's initializers compile dozens of programs
        key = jit_key_of(self, self.dim)
        self.key, self.params, self.opt_state = shared_jit(key, self._initial)(jax.random.PRNGKey(seed))
        self._fit = shared_jit(key, self._fit_impl, static_argnums=(4,))
        self._loss = shared_jit(key, self._loss_impl)

    def _initial(self, key):
        key, init_key = jax.random.split(key)
        params = self.net.init(init_key, jnp.zeros((1, self.dim)), jnp.zeros((1,)))
        return key, params, self.tx.init(params)

    @staticmethod
    def standardization(states: np.ndarray, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        states = np.asarray(states, np.float64)
        return states.mean(0).astype(np.float32), (states.std(0) + eps).astype(np.float32)

    def standardize(self, states):
        return (jnp.asarray(states, jnp.float32) - self.mean) / self.std

    # --- training ------------------------------------------------------------------------------------
    def _loss_impl(self, params, x, key):
        k_u, k_eps = jax.random.split(key)
        u = jax.random.uniform(k_u, (x.shape[0],))
        eps = jax.random.normal(k_eps, x.shape)
        alpha, sigma = self.config.schedule.alpha_sigma(u)
        xu = alpha[:, None] * x + sigma[:, None] * eps
        return jnp.mean(jnp.sum((self.net.apply(params, xu, u) - eps) ** 2, axis=-1))

    def _fit_impl(self, params, opt_state, data, n, steps, key):
        def step(carry, k):
            params, opt_state = carry
            k_idx, k_loss = jax.random.split(k)
            idx = jax.random.randint(k_idx, (self.config.batch_size,), 0, n)
            loss, grads = jax.value_and_grad(self._loss_impl)(params, data[idx], k_loss)
            updates, opt_state = self.tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), jax.random.split(key, steps))
        return params, opt_state, losses.mean()

    def fit(self, states: np.ndarray, steps: int) -> float:
        """``steps`` Adam(W) steps on minibatches drawn uniformly from ``states`` (raw); returns mean loss.

        The data is zero-padded to the next power of two (rows past ``len(states)`` are never drawn), so a
        growing data set, like the learner's, recompiles the fused training loop only O(log n) times.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        n = len(states)
        if n < 1:
            raise ValueError("cannot fit a score model on zero states")
        data = self.standardize(pad_rows_pow2(np.asarray(states, np.float32).reshape(n, self.dim)))
        self.key, k = jax.random.split(self.key)
        self.params, self.opt_state, loss = self._fit(self.params, self.opt_state, data, n, int(steps), k)
        return float(loss)

    def loss(self, states: np.ndarray, seed: int = 0) -> float:
        """Denoising loss on ``states`` (raw) with a fixed key: a validation loss comparable across calls."""
        return float(self._loss(self.params, self.standardize(states), jax.random.PRNGKey(seed)))

    def eps_hat(self, states_std, u):
        """Network output on standardized inputs (for tests and analysis)."""
        return self.net.apply(self.params, jnp.asarray(states_std, jnp.float32), jnp.asarray(u, jnp.float32))

    # --- persistence ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return flax.serialization.msgpack_serialize({
            "params": flax.serialization.to_state_dict(self.params),
            "opt_state": flax.serialization.to_state_dict(self.opt_state),
            "mean": np.asarray(self.mean), "std": np.asarray(self.std), "key": np.asarray(self.key)})

    def load_bytes(self, data: bytes) -> None:
        d = flax.serialization.msgpack_restore(data)
        self.params = restore_tree(self.params, d["params"])
        self.opt_state = restore_tree(self.opt_state, d["opt_state"])
        self.mean, self.std = jnp.asarray(d["mean"]), jnp.asarray(d["std"])
        self.key = jnp.asarray(d["key"])


Levels = Literal["stratified", "even"]
LEVELS = get_args(Levels)
"""How the K noise levels of one state are placed (`SmilingConfig.levels`)."""


def noise_levels(key, n: int, k: int, placement: str = "stratified"):
    """(n, k) noise levels in [0, 1): ``stratified`` draws one uniform level in each stratum [j/k, (j+1)/k) per
    state (unbiased for E_u at any k); ``even`` uses the stratum midpoints (j + 1/2)/k for every state, the
    reference code's evenly spaced DDPM steps (deterministic, so the cost has no noise-level variance)."""
    if placement == "even":
        return jnp.broadcast_to((jnp.arange(k, dtype=jnp.float32)[None, :] + 0.5) / k, (n, k))
    if placement != "stratified":
        raise ValueError(f"noise-level placement must be one of {', '.join(LEVELS)}, got {placement!r}")
    return stratified_levels(key, n, k)


def denoising_errors(net: ScoreNet, schedule: Schedule, params_a, params_b, x_std, key, num_levels: int,
                     levels: str = "stratified", cap: bool = False):
    """(B, K) squared denoising errors ||g(x_u, u) - eps||^2 of two networks on the *same* (u, eps) pairs
    (common random numbers); each state gets ``num_levels`` noise levels placed by `noise_levels`.

    ``cap``: each error is bounded by ||eps||^2, what the trivial predictor g = 0 scores on that sample,
    ``min(||g(x_u, u) - eps||^2, ||eps||^2)``. Why: the Bayes-optimal predictor E[eps | x_u] never does worse
    than 0 in conditional expectation (E[||E[eps|x_u] - eps||^2 | x_u] = E[||eps||^2 | x_u] - ||E[eps|x_u]||^2),
    so an error far above ||eps||^2 only says the network extrapolates off its data, not how far the state is
    from it. Uncapped, a network's error on states far from its data grows like their squared distance, so Eq. 4
    ranks states passing through rarely demonstrated regions (a get-up) below lying still off the data
    (docs/results.md). Capped, each network's term lies in [0, ||eps||^2] and the per-state cost in
    [-d, d] on average (d the state dimension): far states saturate, as a bounded discriminator's reward does.
    What it gives up: Eq. 4 is then no longer an unbiased estimate of the DS divergence's differences where either
    network is worse than the zero predictor, or on single samples where the optimal predictor is (both networks
    are capped alike, so on states both model well the bias cancels in the difference).
    """
    B, d = x_std.shape
    k_u, k_eps = jax.random.split(key)
    u = noise_levels(k_u, B, num_levels, levels)                   # (B, K)
    eps = jax.random.normal(k_eps, (B, num_levels, d))
    alpha, sigma = schedule.alpha_sigma(u)
    xu = alpha[..., None] * x_std[:, None, :] + sigma[..., None] * eps
    flat_x, flat_u, flat_eps = xu.reshape(B * num_levels, d), u.reshape(-1), eps.reshape(-1, d)
    err_a = jnp.sum((net.apply(params_a, flat_x, flat_u) - flat_eps) ** 2, -1)
    err_b = jnp.sum((net.apply(params_b, flat_x, flat_u) - flat_eps) ** 2, -1)
    if cap:
        zero = jnp.sum(flat_eps ** 2, -1)
        err_a, err_b = jnp.minimum(err_a, zero), jnp.minimum(err_b, zero)
    return err_a.reshape(B, num_levels), err_b.reshape(B, num_levels)


def denoising_error_gap(net: ScoreNet, schedule: Schedule, params_a, params_b, x_std, key, num_levels: int,
                        levels: str = "stratified", cap: bool = False):
    """Per-state Monte-Carlo estimate of E_{u, eps}[ ||g_a(x_u, u) - eps||^2 - ||g_b(x_u, u) - eps||^2 ] from
    `denoising_errors`. Returns (B,) estimates and the (B, K) per-sample gaps. Paper Eq. 4 is this with
    a = expert, b = learner.
    """
    err_a, err_b = denoising_errors(net, schedule, params_a, params_b, x_std, key, num_levels, levels, cap)
    gaps = err_a - err_b
    return gaps.mean(axis=1), gaps


denoising_error_gap_jit = jax.jit(denoising_error_gap, static_argnums=(0, 1, 6, 7, 8))
"""`denoising_error_gap` compiled once per (network, schedule, K, placement, cap)."""

denoising_errors_jit = jax.jit(denoising_errors, static_argnums=(0, 1, 6, 7, 8))


def ds_divergence(model_a: ScoreModel, model_b: ScoreModel, states_b: np.ndarray, num_levels: int = 64,
                  seed: int = 0, chunk: int = 4096) -> tuple[float, float]:
    """Estimated DS divergence of the distribution of ``states_b`` from that of ``model_a``'s data:

        E_{s ~ B} E_{u, eps} [ ||g_A - eps||^2 - ||g_B - eps||^2 ]   (Eq. 2 in noise-prediction units),

    with its standard error over states. Both models must share one standardization and architecture.
    """
    if model_a.net != model_b.net or model_a.config.schedule != model_b.config.schedule:
        raise ValueError("both score models must share one network architecture and schedule")
    x = model_a.standardize(states_b)
    key = jax.random.PRNGKey(seed)
    per_state = []
    for i in range(0, x.shape[0], chunk):
        key, k = jax.random.split(key)
        est, _ = denoising_error_gap_jit(model_a.net, model_a.config.schedule, model_a.params, model_b.params, x[i:i + chunk], k,
                          num_levels)
        per_state.append(np.asarray(est, np.float64))
    v = np.concatenate(per_state)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def estimate_ds_divergence(expert_states: np.ndarray, learner_states: np.ndarray,
                           config: ScoreConfig = ScoreConfig(), steps: int = 5000, num_levels: int = 64,
                           holdout: float = 0.2, seed: int = 0) -> dict:
    """Fit score models to both state sets and estimate the DS divergence of the learner's states from the
    expert's (see `ds_divergence`), on learner states held out from the learner model's fit.

    Both models standardize with the expert statistics. Returns a dict with ``ds_divergence``, ``stderr``,
    the final training losses and the sizes used.
    """
    a = np.asarray(expert_states, np.float32)
    b = np.asarray(learner_states, np.float32)
    for name, x in (("expert", a), ("learner", b)):
        if x.ndim != 2 or len(x) < 10:
            raise ValueError(f"{name} states must be (n >= 10, dim), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} states contain NaN or inf")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"expert states have dimension {a.shape[1]}, learner states {b.shape[1]}")
    perm = np.random.default_rng(seed).permutation(len(b))
    n_eval = max(1, int(round(holdout * len(b))))
    b_eval, b_fit = b[perm[:n_eval]], b[perm[n_eval:]]
    mean, std = ScoreModel.standardization(a)
    model_a = ScoreModel(a.shape[1], config, mean, std, seed=seed)
    model_b = ScoreModel(a.shape[1], config, mean, std, seed=seed + 1)
    loss_a = model_a.fit(a, steps)
    loss_b = model_b.fit(b_fit, steps)
    div, se = ds_divergence(model_a, model_b, b_eval, num_levels=num_levels, seed=seed)
    return {"ds_divergence": div, "stderr": se, "expert_states": len(a), "learner_fit_states": len(b_fit),
            "learner_eval_states": len(b_eval), "num_levels": num_levels, "steps": steps,
            "schedule": config.schedule.kind, "expert_score_loss": loss_a, "learner_score_loss": loss_b}
