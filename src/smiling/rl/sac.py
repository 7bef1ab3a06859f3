"""Soft actor-critic in JAX, with many gradient steps fused into one jitted call.

Per gradient step, on a batch (s, a, r, s', d) with d = 1 for real terminal states only:

* critics:     L_Q = sum_i mean (Q_i(s, a) - y)^2,
               y = r + gamma (1 - d) [min_i Qbar_i(s', a') - alpha log pi(a'|s')],  a' ~ pi(.|s')
* actor:       L_pi = mean [alpha log pi(a|s) - min_i Q_i(s, a)],  a ~ pi(.|s) (reparameterised)
* temperature: L_alpha = -mean [log_alpha (log pi(a|s) + H_target)],  H_target = -|A| by default
* targets:     Qbar <- (1 - tau) Qbar + tau Q

`SAC.update` takes batches stacked as (N, B, ...) and runs the N steps inside one `jax.lax.scan`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from smiling.rl.fused import run_update, scan_updates
from smiling.rl.networks import Actor, CriticEnsemble, sample_tanh_gaussian
from smiling.utils.cache import jit_key_of, shared_jit
from smiling.utils.config import check_field_types
from smiling.utils.io import restore_tree


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (defaults learn DeepMind Control tasks from states; see docs/benchmarks.md)."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    critic_layer_norm: bool = True
    """LayerNorm after each hidden layer of the critics (steadier Q targets)."""
    num_critics: int = 2
    """Number of critics; the TD target uses their minimum."""
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temp_lr: float = 3e-4
    batch_size: int = 256
    discount: float = 0.99
    tau: float = 0.005
    """Polyak rate of the target critics, applied every gradient step."""
    init_temperature: float = 0.1
    target_entropy: float | None = None
    """Target policy entropy; None means -|A|."""
    utd: int = 1
    """Gradient updates per environment step (update-to-data ratio)."""
    learn_temperature: bool = True
    """Learn the temperature towards target_entropy; False keeps it at init_temperature."""

    def __post_init__(self):
        check_field_types(self, "sac.")
        if self.utd < 1 or self.batch_size < 1 or not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ValueError(f"sac.utd and sac.batch_size must be >= 1 and sac.hidden_dims positive widths: {self}")


@flax.struct.dataclass
class Opt:
    params: Any
    opt_state: Any


@flax.struct.dataclass
class SACState:
    actor: Opt
    critic: Opt
    target_critic: Any
    temp: Opt
    key: jax.Array
    steps: jax.Array


class SAC:
    """Jitted SAC for flat observations and actions in [-1, 1]."""

    def __init__(self, obs_dim: int, action_dim: int, config: SACConfig | None = None):
        self.config = cfg = config or SACConfig()
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.target_entropy = float(-action_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_net = Actor(tuple(cfg.hidden_dims), action_dim)
        self.critic_net = CriticEnsemble(tuple(cfg.hidden_dims), cfg.num_critics, cfg.critic_layer_norm)
        self.actor_tx = optax.adam(cfg.actor_lr)
        self.critic_tx = optax.adam(cfg.critic_lr)
        self.temp_tx = optax.adam(cfg.temp_lr)
        key = self.jit_key()
        self._update = shared_jit(key, self._update_many, donate_argnums=0)
        self._act_sample = shared_jit(key, self._sample_action)
        self._act_mean = shared_jit(key, self._mean_action)

    def jit_key(self) -> tuple:
        """What the jitted functions depend on: agents with one key share them (`shared_jit`), so a second agent
        built alike (the next run of a grid worker, a resumed run, an evaluation) skips tracing and compiling.
        A subclass whose losses read attributes of its own extends the key with them."""
        return jit_key_of(self, self.obs_dim, self.action_dim)

    # --- state ---------------------------------------------------------------------------------------
    def init(self, seed: int) -> SACState:
        """A fresh state: the networks' initial parameters and empty optimizer states. One compiled call (run op
        by op, the initializers would compile dozens of tiny programs, a second or more of every run's start)."""
        return shared_jit(self.jit_key(), self._init_state)(jax.random.PRNGKey(seed))

    def _init_state(self, key) -> SACState:
        key, k_actor, k_critic = jax.random.split(key, 3)
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.action_dim), jnp.float32)
        actor_params = self.actor_net.init(k_actor, obs)
        critic_params = self.critic_net.init(k_critic, obs, act)
        log_alpha = jnp.asarray(np.log(self.config.init_temperature), jnp.float32)
        return SACState(
            actor=Opt(actor_params, self.actor_tx.init(actor_params)),
            critic=Opt(critic_params, self.critic_tx.init(critic_params)),
            target_critic=jax.tree_util.tree_map(jnp.copy, critic_params),  # no aliasing: state is donated
            temp=Opt(log_alpha, self.temp_tx.init(log_alpha)),
            key=key,
            steps=jnp.zeros((), jnp.int32),
        )

    def to_bytes(self, state: SACState) -> bytes:
        return flax.serialization.to_bytes(state)

    def from_bytes(self, data: bytes) -> SACState:
        return restore_tree(self.init(0), data)

    # --- acting --------------------------------------------------------------------------------------
    def _sample_action(self, actor_params, obs, key):
        key, sub = jax.random.split(key)
        mean, log_std = self.actor_net.apply(actor_params, obs)
        action, _ = sample_tanh_gaussian(mean, log_std, sub)
        return action, key

    def _mean_action(self, actor_params, obs):
        mean, _ = self.actor_net.apply(actor_params, obs)
        return jnp.tanh(mean)

    def policy_params(self, state: SACState):
        """What `act` and `act_deterministic` need of a state (the actor's parameters)."""
        return state.actor.params

    def begin_episode(self, evaluation: bool = False) -> None:
        """SAC's policy has no memory, so there is nothing to reset (a recurrent agent resets its state here)."""

    def act(self, state_or_params, obs: np.ndarray, key: jax.Array,
            evaluation: bool = False) -> tuple[np.ndarray, jax.Array]:
        """Stochastic action for one observation (or a batch); returns (action, next key). ``evaluation`` only
        matters to recurrent agents (which episode state to continue)."""
        params = state_or_params.actor.params if isinstance(state_or_params, SACState) else state_or_params
        action, key = self._act_sample(params, jnp.asarray(obs, jnp.float32), key)
        return np.asarray(action), key

    def act_deterministic(self, state_or_params, obs: np.ndarray) -> np.ndarray:
        """The mean action tanh(mu(s)), used for evaluation."""
        params = state_or_params.actor.params if isinstance(state_or_params, SACState) else state_or_params
        return np.asarray(self._act_mean(params, jnp.asarray(obs, jnp.float32)))

    # --- learning ------------------------------------------------------------------------------------
    def batches(self, source, rng: np.random.Generator, env_steps: int, reward_fn=None) -> dict[str, np.ndarray]:
        """``env_steps * utd`` batches of ``batch_size`` transitions from ``source`` (a replay buffer or its reward
        cache), rewards from ``reward_fn`` (None: stored), for one `update` call."""
        return source.sample(rng, self.config.batch_size, env_steps * self.config.utd, reward_fn)

    def update(self, state: SACState, batches: dict[str, np.ndarray]) -> tuple[SACState, dict[str, float]]:
        """Run N gradient steps on batches shaped (N, B, ...); returns the new state and mean metrics."""
        return run_update(self._update, state, batches)

    def _update_many(self, state: SACState, batches):
        return scan_updates(self._update_one, state, batches)

    def _update_one(self, state: SACState, batch):
        cfg = self.config
        key, k_next, k_pi = jax.random.split(state.key, 3)
        alpha = jnp.exp(state.temp.params)

        # critic
        (critic_loss, aux), grads = jax.value_and_grad(self._critic_loss, has_aux=True)(
            state.critic.params, state, batch, alpha, k_next)
        updates, critic_opt = self.critic_tx.update(grads, state.critic.opt_state, state.critic.params)
        critic_params = optax.apply_updates(state.critic.params, updates)

        # actor
        obs = self._actor_obs(batch)

        def actor_loss_fn(params):
            m, ls = self.actor_net.apply(params, obs)
            a, logp = sample_tanh_gaussian(m, ls, k_pi)
            q = self.critic_net.apply(critic_params, obs, a).min(axis=0)
            return (alpha * logp - q).mean(), logp

        (actor_loss, logp), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(state.actor.params)
        updates, actor_opt = self.actor_tx.update(grads, state.actor.opt_state, state.actor.params)
        actor_params = optax.apply_updates(state.actor.params, updates)

        # temperature
        logp = jax.lax.stop_gradient(logp)

        def temp_loss_fn(log_alpha):
            return -(log_alpha * (logp + self.target_entropy)).mean()

        temp_loss, grads = jax.value_and_grad(temp_loss_fn)(state.temp.params)
        if cfg.learn_temperature:
            updates, temp_opt = self.temp_tx.update(grads, state.temp.opt_state, state.temp.params)
            log_alpha = optax.apply_updates(state.temp.params, updates)
        else:
            log_alpha, temp_opt = state.temp.params, state.temp.opt_state

        target_critic = optax.incremental_update(critic_params, state.target_critic, cfg.tau)
        new_state = SACState(
            actor=Opt(actor_params, actor_opt),
            critic=Opt(critic_params, critic_opt),
            target_critic=target_critic,
            temp=Opt(log_alpha, temp_opt),
            key=key,
            steps=state.steps + 1,
        )
        metrics = {"critic_loss": critic_loss, "actor_loss": actor_loss, "temp_loss": temp_loss,
                   "alpha": alpha, "entropy": -logp.mean(), **aux}
        return new_state, metrics

    # --- the pieces a subclass may replace (IQ-Learn replaces both) ----------------------------------
    def _critic_loss(self, params, state: SACState, batch, alpha, key):
        """Soft TD loss, summed over the critics: (loss, metrics with q_mean)."""
        mean, log_std = self.actor_net.apply(state.actor.params, batch["next_obs"])
        next_action, next_logp = sample_tanh_gaussian(mean, log_std, key)
        next_q = self.critic_net.apply(state.target_critic, batch["next_obs"], next_action).min(axis=0)
        target = batch["reward"] + self.config.discount * (1.0 - batch["terminated"]) * (next_q - alpha * next_logp)
        target = jax.lax.stop_gradient(target)
        q = self.critic_net.apply(params, batch["obs"], batch["action"])
        return ((q - target[None]) ** 2).mean(axis=1).sum(), {"q_mean": q.mean()}

    def _actor_obs(self, batch):
        """States the actor and temperature are updated on."""
        return batch["obs"]
