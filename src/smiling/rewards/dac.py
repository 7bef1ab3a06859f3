"""DAC's reward model: a discriminator between expert and learner states (Kostrikov et al. 2019), the GAN-style
baseline of the paper.

* D(x) is a logit; trained with binary cross-entropy, expert = 1, learner = 0, plus a gradient penalty
  ``gp_weight * (||grad_x D(x_hat)|| - 1)^2`` on random interpolates x_hat = a x_e + (1 - a) x_l, a ~ U[0, 1]
  (weight 10, as in DAC and the SMILING reference code).
* Inputs are standardized with the expert's statistics (as SMILING's score models are).
* Learner data: the same reservoir of *all* learner states so far as SMILING's learner score, refitted on the same
  cadence (``steps`` Adam(W) steps per update, warm-started).
* Reward: ``gail``: -log(1 - sigmoid(D)) = softplus(D) (the SMILING reference code's choice), or ``airl``:
  log D - log(1 - D) = D (the original DAC paper). Not normalized.
* Absorbing states: not needed. DAC adds them for environments that end early, so that the reward of ending is
  learned; this library's episodes have a fixed length (time-limit ends are not terminal), so no episode ends
  early unless ``keep_termination=True`` (then the terminal transition is simply not bootstrapped).
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Literal, get_args

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from smiling.diffusion.model import ScoreModel
from smiling.rewards.base import Reservoir, RewardModel, expert_matrix, made_from_hash
from smiling.utils.cache import jit_key_of, shared_jit
from smiling.utils.shapes import pad_rows_pow2
from smiling.utils.config import at_least_one, check_choice, check_field_types
from smiling.utils.io import npz_bytes, restore_tree

RewardForm = Literal["gail", "airl"]
REWARD_FORMS = get_args(RewardForm)


@dataclasses.dataclass(frozen=True)
class DacConfig:
    width: int = 256
    depth: int = 1
    """Hidden layers (reference: one of 256, the same size as the score model)."""
    linear: bool = False
    """Remove all activations (the Fig. 5 ablation)."""
    lr: float = 5e-3
    weight_decay: float = 0.01
    batch_size: int = 512
    """Expert and learner states per step (each)."""
    steps: int = 100
    """Discriminator steps per update (every ``reward_update_every`` env steps)."""
    gp_weight: float = 10.0
    reward: RewardForm = "gail"
    """gail: -log(1 - D) (reference code); airl: log D - log(1 - D) (DAC paper)."""
    memory: int = 100_000
    """Learner states kept (reservoir sample of all states so far)."""
    use_actions: bool = False
    """Discriminate (state, action) pairs instead of states."""

    def __post_init__(self):
        check_field_types(self, "dac.")
        at_least_one(self, "width", "batch_size", "steps", "memory", prefix="dac.")
        check_choice(self.reward, REWARD_FORMS, "dac.reward")
        if self.gp_weight < 0:
            raise ValueError(f"dac.gp_weight must be >= 0, got {self.gp_weight}")


class Discriminator(nn.Module):
    width: int = 256
    depth: int = 1
    linear: bool = False

    @nn.compact
    def __call__(self, x):
        act = (lambda h: h) if self.linear else nn.leaky_relu
        for _ in range(self.depth):
            x = act(nn.Dense(self.width)(x))
        return nn.Dense(1)(x)[..., 0]


def discriminator_loss(net: Discriminator, params, x_e, x_l, key, gp_weight: float):
    """(BCE with expert = 1 and learner = 0, plus the gradient penalty on interpolates; metrics)."""
    d_e, d_l = net.apply(params, x_e), net.apply(params, x_l)
    bce = jnp.mean(jax.nn.softplus(-d_e)) + jnp.mean(jax.nn.softplus(d_l))
    a = jax.random.uniform(key, (x_e.shape[0], 1))
    x_hat = a * x_e + (1 - a) * x_l
    grads = jax.vmap(jax.grad(lambda x: net.apply(params, x)))(x_hat)
    gp = jnp.mean((jnp.linalg.norm(grads + 1e-12, axis=-1) - 1.0) ** 2)
    acc = 0.5 * (jnp.mean(d_e > 0) + jnp.mean(d_l < 0))
    return bce + gp_weight * gp, {"disc_loss": bce, "disc_gp": gp, "disc_accuracy": acc}


class DacReward(RewardModel):
    def __init__(self, expert_features: np.ndarray, config: DacConfig = DacConfig(), seed: int = 0):
        expert_features = expert_matrix(expert_features)
        self.config, self.use_actions = config, config.use_actions
        self.dim = dim = expert_features.shape[1]
        self.made_from = made_from_hash(expert_features, seed)
        self.mean, self.std = ScoreModel.standardization(expert_features)  # the score models' standardization
        self.expert = jnp.asarray(self._standardize(expert_features))
        self.net = Discriminator(config.width, config.depth, config.linear)
        self.tx = optax.adamw(config.lr, weight_decay=config.weight_decay)
        # compiled once per (class, dim, config) in a process (`shared_jit`): the expert data and the
        # standardization are arguments, never read from self inside them
        key = jit_key_of(self, dim)
        self.key, self.params, self.opt_state = shared_jit(key, self._initial)(jax.random.PRNGKey(seed),
                                                                               jnp.zeros((1, dim)))
        self.memory = Reservoir(dim, config.memory, seed=seed + 2)
        self.updates = 0
        self.origin = f"discriminator of {config.width} x {config.depth} units, untrained until the first update"
        self._fit = shared_jit(key, self._fit_impl)
        self._logits = shared_jit(key, self._logits_impl)

    def _logits_impl(self, params, x):
        return self.net.apply(params, x)

    def _initial(self, key, features):
        key, k = jax.random.split(key)
        params = self.net.init(k, features)
        return key, params, self.tx.init(params)

    def _standardize(self, x) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)

    def _fit_impl(self, params, opt_state, expert, learner, n_learner, key):
        cfg = self.config

        def step(carry, k):
            params, opt_state = carry
            k_e, k_l, k_gp = jax.random.split(k, 3)
            x_e = expert[jax.random.randint(k_e, (cfg.batch_size,), 0, expert.shape[0])]
            x_l = learner[jax.random.randint(k_l, (cfg.batch_size,), 0, n_learner)]
            (_, m), grads = jax.value_and_grad(discriminator_loss, argnums=1, has_aux=True)(
                self.net, params, x_e, x_l, k_gp, cfg.gp_weight)
            updates, opt_state = self.tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), m

        (params, opt_state), ms = jax.lax.scan(step, (params, opt_state), jax.random.split(key, cfg.steps))
        return params, opt_state, jax.tree.map(jnp.mean, ms)

    def update(self, learner_features: np.ndarray) -> dict[str, float]:
        self.memory.add(learner_features)
        data = self.memory.sample()
        n = len(data)
        padded = pad_rows_pow2(self._standardize(data))  # few distinct shapes; rows >= n are never drawn
        self.key, k = jax.random.split(self.key)
        self.params, self.opt_state, m = self._fit(self.params, self.opt_state, self.expert, jnp.asarray(padded),
                                                   n, k)
        self.updates += 1
        return {k: float(v) for k, v in m.items()}

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self._logits(self.params, self._standardize(self.checked(features))))

    def reward(self, obs, action, next_obs) -> np.ndarray:
        self.warn_if_untrained()
        d = self.logits(self.features(obs, action, next_obs))
        r = np.logaddexp(0.0, d) if self.config.reward == "gail" else d  # softplus(D) = -log(1 - sigmoid(D))
        return r.astype(np.float32)

    @classmethod
    def default_config(cls) -> DacConfig:
        return DacConfig()

    def state_dict(self) -> dict[str, bytes]:
        return {"discriminator.msgpack": flax.serialization.msgpack_serialize({
                    "params": flax.serialization.to_state_dict(self.params),
                    "opt_state": flax.serialization.to_state_dict(self.opt_state)}),
                "memory.npz": npz_bytes(self.memory.state_dict()),
                "state.json": json.dumps({"updates": self.updates, "key": np.asarray(self.key).tolist()}).encode()}

    def load_state_dict(self, files: dict[str, bytes]) -> None:
        d = flax.serialization.msgpack_restore(files["discriminator.msgpack"])
        self.params = restore_tree(self.params, d["params"])
        self.opt_state = restore_tree(self.opt_state, d["opt_state"])
        with np.load(io.BytesIO(files["memory.npz"]), allow_pickle=False) as z:
            self.memory.load_state_dict({k: z[k] for k in z.files})
        meta = json.loads(files["state.json"])
        self.updates = meta["updates"]
        self.key = jnp.asarray(np.asarray(meta["key"], np.uint32))
