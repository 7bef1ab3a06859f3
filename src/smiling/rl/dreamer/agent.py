"""DreamerV3 (Hafner et al. 2023) for continuous control, compact, in JAX/Flax: ``init``, ``policy``, ``update``.

One call of `Dreamer.update` runs N training steps inside one jitted ``lax.scan``; each step, on a batch of B
replayed sequences of length T (``obs``, ``prev_action`` that led to each obs, ``reward`` received on arriving at
it, ``cont`` = 0 at a real terminal state, ``is_first``):

1. World model (`smiling.rl.dreamer.networks`): observe the sequence through the RSSM (every sequence starts from a
   zero state), then ``L = L_dec + L_rew + L_cont + 0.5 L_dyn + 0.1 L_rep`` (decoder squared error on symlog o,
   two-hot reward, Bernoulli continue, KL balancing with 1 free nat; `smiling.rl.dreamer.core`).
2. Imagination: from every posterior state (or ``imag_starts`` of them drawn at random; gradient stopped), roll
   the prior forward ``horizon`` steps with actions sampled from the actor; rewards and continues from the heads,
   values from the critic, lambda-returns.
3. Actor: REINFORCE on advantages normalised by ``max(1, S)`` (S = EMA of the 5-95 percentile range of returns)
   plus entropy bonus ``eta H[pi]``, or (``actor_grad="backprop"``, the DreamerV3 code's choice for continuous
   actions) the normalised lambda-returns themselves, differentiated through the imagined trajectory: the
   reparameterised actions, the RSSM (straight-through latents), the reward, continue and critic heads; critic:
   two-hot regression on the lambda-returns plus a regulariser towards the predictions of an EMA ("slow") copy
   of itself. Both weighted by the imagined cumulative discount.

Differences from the paper are listed in docs/dreamer.md.
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

from smiling.rl.dreamer import core
from smiling.rl.dreamer.networks import ActorHead, Cell, Trunk
from smiling.rl.fused import run_update, scan_updates
from smiling.utils.cache import jit_key_of, shared_jit
from smiling.utils.config import check_field_types
from smiling.utils.io import restore_tree

PRESETS = {
    # name: (recurrent units, dense units, MLP layers, latents, classes per latent)
    "tiny": (64, 64, 1, 8, 8),       # tests and quick CPU runs
    "xs": (256, 256, 1, 32, 32),     # the paper's XS
    "small": (512, 512, 2, 32, 32),  # the paper's S
    "medium": (1024, 640, 3, 32, 32),  # the paper's M
}


@dataclasses.dataclass(frozen=True)
class DreamerConfig:
    """DreamerV3 hyperparameters (paper defaults unless noted; see docs/dreamer.md)."""

    preset: str = "tiny"
    """Model size: tiny (tests, CPU), xs, small, medium (the paper's XS, S, M)."""
    batch_size: int = 16
    seq_len: int = 64
    horizon: int = 15
    """Imagination horizon."""
    discount: float = 0.997
    lam: float = 0.95
    entropy: float = 3e-4
    model_lr: float = 1e-4
    actor_lr: float = 3e-5
    critic_lr: float = 3e-5
    adam_eps: float = 1e-8
    model_clip: float = 1000.0
    ac_clip: float = 100.0
    slow_critic_decay: float = 0.98
    slow_critic_reg: float = 1.0
    return_scale_decay: float = 0.99
    bins: int = 255
    train_ratio: int = 512
    """Replayed steps per env step: one training step every batch_size * seq_len / train_ratio env steps."""
    imag_starts: int = 0
    """Imagine from this many posterior states drawn at random (without replacement) from the batch's
    batch_size * seq_len; 0 = all of them (the paper). A CPU knob: actor-critic cost scales with it."""
    actor_grad: str = "reinforce"
    """Actor gradient: reinforce (score function on normalised advantages, the paper's equation) or backprop
    (maximise the normalised lambda-returns by backpropagating through the imagined rollout, the DreamerV3
    code's default for continuous actions; lower variance, one more backward pass through imagination)."""

    ACTOR_GRADS = ("reinforce", "backprop")

    def __post_init__(self):
        """Raise ValueError naming the first bad setting."""
        check_field_types(self, "dreamer.")
        self.sizes()
        if min(self.batch_size, self.seq_len, self.train_ratio, self.horizon) < 1:
            raise ValueError(f"dreamer.batch_size, seq_len, train_ratio and horizon must be >= 1: {self}")
        if self.imag_starts < 0:
            raise ValueError(f"dreamer.imag_starts must be >= 0 (0 = every replayed state), got {self.imag_starts}")
        if self.actor_grad not in self.ACTOR_GRADS:
            raise ValueError(f"unknown dreamer.actor_grad {self.actor_grad!r}; choose from {list(self.ACTOR_GRADS)}")

    def sizes(self) -> tuple[int, int, int, int, int]:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown Dreamer preset {self.preset!r}; choose from {sorted(PRESETS)}")
        return PRESETS[self.preset]


@flax.struct.dataclass
class DreamerState:
    params: Any            # {"enc", "cell", "prior", "post", "dec", "rew", "cont", "actor", "critic"}
    model_opt: Any
    actor_opt: Any
    critic_opt: Any
    slow_critic: Any
    return_scale: jax.Array
    key: jax.Array
    steps: jax.Array


MODEL_PARTS = ("enc", "cell", "prior", "post", "dec", "rew", "cont")


def random_batches(n: int, batch: int, seq_len: int, obs_dim: int, act_dim: int, seed: int = 0) -> dict:
    """N random replay batches in the layout `Dreamer.update` takes (for benchmarks and tests): obs (N,B,T,d),
    prev_action (N,B,T,A) in [-1, 1], reward (N,B,T), cont = 1 and is_first = 0 (the update marks t = 0 first)."""
    rng = np.random.default_rng(seed)
    return {"obs": rng.normal(size=(n, batch, seq_len, obs_dim)).astype(np.float32),
            "prev_action": rng.uniform(-1, 1, (n, batch, seq_len, act_dim)).astype(np.float32),
            "reward": rng.normal(size=(n, batch, seq_len)).astype(np.float32),
            "cont": np.ones((n, batch, seq_len), np.float32), "is_first": np.zeros((n, batch, seq_len), np.float32)}


def _normal_logp(a, mean, std):
    return jnp.sum(-0.5 * ((a - mean) / std) ** 2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi), -1)


def _normal_entropy(std):
    return jnp.sum(0.5 * jnp.log(2 * jnp.pi * jnp.e) + jnp.log(std), -1)


class Dreamer:
    def __init__(self, obs_dim: int, action_dim: int, config: DreamerConfig | None = None):
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.config = c = config or DreamerConfig()
        deter, units, layers, stoch, classes = c.sizes()
        self.deter, self.stoch, self.classes = deter, stoch, classes
        self.latent = stoch * classes
        self.nets = {
            "enc": Trunk(units, layers),
            "cell": Cell(deter, units),
            "prior": Trunk(units, 1, self.latent),
            "post": Trunk(units, 1, self.latent),
            "dec": Trunk(units, layers, obs_dim),
            "rew": Trunk(units, layers, c.bins, zero_out=True),
            "cont": Trunk(units, layers, 1),
            "actor": ActorHead(units, layers, action_dim),
            "critic": Trunk(units, layers, c.bins, zero_out=True),
        }
        self.bins = core.twohot_bins(c.bins)
        opt = lambda lr, clip: optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr, eps=c.adam_eps))  # noqa: E731
        self.model_tx = opt(c.model_lr, c.model_clip)
        self.actor_tx = opt(c.actor_lr, c.ac_clip)
        self.critic_tx = opt(c.critic_lr, c.ac_clip)
        key = self.jit_key()
        self._update_jit = shared_jit(key, self._update_many)
        self._policy_jit = shared_jit(key, self._policy, static_argnames="deterministic")

    def jit_key(self) -> tuple:
        """What the jitted functions depend on: agents with one key share them (`shared_jit`), so a second agent
        built alike skips tracing and compiling them."""
        return jit_key_of(self, self.obs_dim, self.action_dim)

    # --- set-up and (de)serialisation ------------------------------------------------------------------
    def init(self, seed: int) -> DreamerState:
        """A fresh state, in one compiled call (run op by op, the initializers would compile many tiny programs)."""
        init = shared_jit(self.jit_key(), self._init_state)
        return init(jax.random.PRNGKey(seed), jax.random.PRNGKey(seed + 1))

    def _init_state(self, key, state_key) -> DreamerState:
        keys = dict(zip(self.nets, jax.random.split(key, len(self.nets) + 1)[1:]))
        obs0, feat = jnp.zeros((1, self.obs_dim)), jnp.zeros((1, self.deter + self.latent))
        h, z = jnp.zeros((1, self.deter)), jnp.zeros((1, self.latent))
        enc = self.nets["enc"].init(keys["enc"], obs0)
        e = self.nets["enc"].apply(enc, obs0)
        inputs = {"cell": (h, z, jnp.zeros((1, self.action_dim))), "prior": (h,),
                  "post": (jnp.concatenate([h, e], -1),), "dec": (feat,), "rew": (feat,), "cont": (feat,),
                  "actor": (feat,), "critic": (feat,)}
        params = {"enc": enc, **{k: self.nets[k].init(keys[k], *args) for k, args in inputs.items()}}
        model = {k: params[k] for k in MODEL_PARTS}
        return DreamerState(params=params, model_opt=self.model_tx.init(model),
                            actor_opt=self.actor_tx.init(params["actor"]),
                            critic_opt=self.critic_tx.init(params["critic"]), slow_critic=params["critic"],
                            return_scale=jnp.zeros(()), key=state_key,
                            steps=jnp.zeros((), jnp.int32))

    def to_bytes(self, state: DreamerState) -> bytes:
        return flax.serialization.to_bytes(state)

    def from_bytes(self, data: bytes) -> DreamerState:
        return restore_tree(self.init(0), data)

    def _apply(self, params, name, *args):
        return self.nets[name].apply(params[name], *args)

    # --- world model -----------------------------------------------------------------------------------
    def _latent_probs(self, logits):
        return core.unimix_probs(logits.reshape(logits.shape[:-1] + (self.stoch, self.classes)))

    def _observe(self, params, obs, prev_action, is_first, key):
        """Posterior states of sequences (B, T, ...): returns h (B,T,deter), z (B,T,latent), post/prior probs."""
        embed = self._apply(params, "enc", core.symlog(obs))
        bsz = obs.shape[0]
        keys = jax.random.split(key, obs.shape[1])

        def step(carry, inp):
            h, z = carry
            e, a, first, k = inp
            keep = 1.0 - first[:, None]
            h = self._apply(params, "cell", h * keep, z * keep, a * keep)
            prior = self._latent_probs(self._apply(params, "prior", h))
            post = self._latent_probs(self._apply(params, "post", jnp.concatenate([h, e], -1)))
            z = core.sample_onehot(k, post).reshape(bsz, self.latent)
            return (h, z), (h, z, post, prior)

        init = (jnp.zeros((bsz, self.deter)), jnp.zeros((bsz, self.latent)))
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        _, out = jax.lax.scan(step, init, (swap(embed), swap(prev_action), swap(is_first), keys))
        return tuple(swap(x) for x in out)

    def _model_loss(self, model_params, params, batch, key):
        params = {**params, **model_params}
        h, z, post, prior = self._observe(params, batch["obs"], batch["prev_action"], batch["is_first"], key)
        feat = jnp.concatenate([h, z], -1)
        dec = jnp.sum((self._apply(params, "dec", feat) - core.symlog(batch["obs"])) ** 2, -1)
        rew = core.twohot_loss(self._apply(params, "rew", feat), batch["reward"], self.bins)
        cont_logit = self._apply(params, "cont", feat)[..., 0]
        cont = optax.sigmoid_binary_cross_entropy(cont_logit, batch["cont"])
        dyn, rep = core.kl_balance(post, prior)
        loss = jnp.mean(dec + rew + cont + 0.5 * dyn + 0.1 * rep)
        metrics = {"model_loss": loss, "dec_loss": dec.mean(), "reward_loss": rew.mean(), "cont_loss": cont.mean(),
                   "kl_dyn": dyn.mean(), "kl_rep": rep.mean()}
        return loss, (metrics, jax.lax.stop_gradient(h), jax.lax.stop_gradient(z))

    # --- behaviour -------------------------------------------------------------------------------------
    def _imagine(self, params, h, z, key, straight_through: bool = False):
        """Roll the prior ``horizon`` steps from states (N, ...): features (H+1, N, F) and actions (H, N, A).
        ``straight_through``: latents carry straight-through gradients (for backprop actor gradients)."""
        def step(carry, k):
            h, z = carry
            k1, k2 = jax.random.split(k)
            feat = jnp.concatenate([h, z], -1)
            mean, std = self._apply(params, "actor", feat)
            action = mean + std * jax.random.normal(k1, mean.shape)
            h = self._apply(params, "cell", h, z, jnp.clip(action, -1.0, 1.0))
            prior = self._latent_probs(self._apply(params, "prior", h))
            if straight_through:
                z = core.sample_onehot(k2, prior).reshape(h.shape[0], self.latent)
            else:
                idx = jax.random.categorical(k2, jnp.log(prior))
                z = jax.nn.one_hot(idx, self.classes).reshape(h.shape[0], self.latent)
            return (h, z), (feat, action)

        (h, z), (feats, actions) = jax.lax.scan(step, (h, z), jax.random.split(key, self.config.horizon))
        feats = jnp.concatenate([feats, jnp.concatenate([h, z], -1)[None]], 0)
        return feats, actions

    def _starts(self, h, z, key):
        """Imagination start states (N, ...): all B*T posterior states, or ``imag_starts`` drawn at random."""
        h, z = h.reshape(-1, self.deter), z.reshape(-1, self.latent)
        n = self.config.imag_starts
        if 0 < n < h.shape[0]:
            idx = jax.random.permutation(key, h.shape[0])[:n]
            h, z = h[idx], z[idx]
        return h, z

    def _rollout(self, params, h, z, key, straight_through: bool = False):
        """Imagine from start states and score the rollout: features (H+1, N, F), actions (H, N, A), lambda-returns
        (H, N), critic values (H+1, N), weights = cumulative imagined discount (H, N, gradient stopped) and the
        predicted rewards (H, N)."""
        c = self.config
        feats, actions = self._imagine(params, h, z, key, straight_through)
        reward = core.twohot_mean(self._apply(params, "rew", feats[1:]), self.bins)
        cont = jax.nn.sigmoid(self._apply(params, "cont", feats[1:])[..., 0])
        value = core.twohot_mean(self._apply(params, "critic", feats), self.bins)
        returns = core.lambda_returns(reward, value, cont, c.discount, c.lam)
        weight = jnp.cumprod(jnp.concatenate([jnp.ones_like(cont[:1]), c.discount * cont[:-1]], 0), 0)
        return feats, actions, returns, value, jax.lax.stop_gradient(weight), reward

    def _behaviour(self, state: DreamerState, params, h, z, key):
        c = self.config
        k_start, k_img = jax.random.split(key)
        h, z = self._starts(h, z, k_start)
        sg = jax.lax.stop_gradient

        if c.actor_grad == "backprop":
            def actor_loss(actor_params):
                # only the actor's parameters are differentiated; the gradient reaches them through every
                # imagined action (reparameterised) and what follows it in the rollout
                feats, actions, returns, value, weight, reward = self._rollout(
                    {**params, "actor": actor_params}, h, z, k_img, straight_through=True)
                scale = core.update_return_scale(state.return_scale, sg(returns), c.return_scale_decay)
                _, std = self.nets["actor"].apply(actor_params, sg(feats[:-1]))
                ent = _normal_entropy(std)
                adv = core.normalise_advantage(returns - sg(value[:-1]), scale)   # the baseline adds no gradient
                loss = jnp.mean(weight * -(adv + c.entropy * ent))
                return loss, (ent.mean(), scale, sg((feats, actions, returns, value, weight, reward)))

            (a_loss, (ent, scale, rollout)), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
                params["actor"])
            feats, actions, returns, value, weight, reward = rollout
        else:
            feats, actions, returns, value, weight, reward = sg(self._rollout(params, h, z, k_img))
            scale = core.update_return_scale(state.return_scale, returns, c.return_scale_decay)
            adv = core.normalise_advantage(returns - value[:-1], scale)

            def actor_loss(actor_params):
                mean, std = self.nets["actor"].apply(actor_params, feats[:-1])
                logp = _normal_logp(actions, mean, std)
                ent = _normal_entropy(std)
                return jnp.mean(weight * -(adv * logp + c.entropy * ent)), ent.mean()

            (a_loss, ent), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(params["actor"])

        slow = core.twohot_mean(self.nets["critic"].apply(state.slow_critic, feats[:-1]), self.bins)

        def critic_loss(critic_params):
            logits = self.nets["critic"].apply(critic_params, feats[:-1])
            loss = core.twohot_loss(logits, returns, self.bins) + c.slow_critic_reg * core.twohot_loss(
                logits, slow, self.bins)
            return jnp.mean(weight * loss)

        c_loss, c_grads = jax.value_and_grad(critic_loss)(params["critic"])
        metrics = {"actor_loss": a_loss, "critic_loss": c_loss, "entropy": ent, "return_scale": scale,
                   "imag_return": returns.mean(), "imag_reward": reward.mean()}
        return a_grads, c_grads, scale, metrics

    # --- updates ---------------------------------------------------------------------------------------
    def batches(self, source, rng: np.random.Generator, env_steps: int, reward_fn=None) -> dict[str, np.ndarray]:
        """Sequences for one `update` call after ``env_steps`` env steps: ``train_ratio`` replayed steps per env
        step, in batches of ``batch_size`` x ``seq_len`` (at least one); ``source`` must be the replay buffer."""
        c = self.config
        n = max(1, round(env_steps * c.train_ratio / (c.batch_size * c.seq_len)))
        return source.sample_sequences(rng, c.batch_size, c.seq_len, n, reward_fn)

    def update(self, state: DreamerState, batches: dict[str, np.ndarray]) -> tuple[DreamerState, dict[str, float]]:
        """Run N training steps on batches stacked as (N, B, T, ...); returns the new state and mean metrics."""
        return run_update(self._update_jit, state, batches)

    def _update_many(self, state: DreamerState, batches):
        return scan_updates(self._update_one, state, batches)

    def _update_one(self, state: DreamerState, batch):
        key, k_obs, k_img = jax.random.split(state.key, 3)
        batch = {**batch, "is_first": batch["is_first"].at[:, 0].set(1.0)}
        params = state.params
        model = {k: params[k] for k in MODEL_PARTS}
        (_, (m_metrics, h, z)), grads = jax.value_and_grad(self._model_loss, has_aux=True)(model, params, batch, k_obs)
        updates, model_opt = self.model_tx.update(grads, state.model_opt, model)
        model = optax.apply_updates(model, updates)
        params = {**params, **model}
        a_grads, c_grads, scale, b_metrics = self._behaviour(state, params, h, z, k_img)
        a_upd, actor_opt = self.actor_tx.update(a_grads, state.actor_opt, params["actor"])
        c_upd, critic_opt = self.critic_tx.update(c_grads, state.critic_opt, params["critic"])
        params = {**params, "actor": optax.apply_updates(params["actor"], a_upd),
                  "critic": optax.apply_updates(params["critic"], c_upd)}
        d = self.config.slow_critic_decay
        slow = jax.tree_util.tree_map(lambda s, f: d * s + (1 - d) * f, state.slow_critic, params["critic"])
        new = DreamerState(params=params, model_opt=model_opt, actor_opt=actor_opt, critic_opt=critic_opt,
                           slow_critic=slow, return_scale=scale, key=key, steps=state.steps + 1)
        return new, {**m_metrics, **b_metrics}

    # --- acting ----------------------------------------------------------------------------------------
    def initial_carry(self, n: int = 1):
        """Recurrent state of the policy for ``n`` envs: (h, z, previous action), all zeros."""
        return (jnp.zeros((n, self.deter)), jnp.zeros((n, self.latent)), jnp.zeros((n, self.action_dim)))

    def _policy(self, params, carry, obs, is_first, key, deterministic: bool):
        h, z, prev = carry
        keep = 1.0 - is_first[:, None]
        h = self._apply(params, "cell", h * keep, z * keep, prev * keep)
        e = self._apply(params, "enc", core.symlog(obs))
        post = self._latent_probs(self._apply(params, "post", jnp.concatenate([h, e], -1)))
        k1, k2 = jax.random.split(key)
        idx = jnp.argmax(post, -1) if deterministic else jax.random.categorical(k1, jnp.log(post))
        z = jax.nn.one_hot(idx, self.classes).reshape(h.shape[0], self.latent)
        mean, std = self._apply(params, "actor", jnp.concatenate([h, z], -1))
        action = mean if deterministic else mean + std * jax.random.normal(k2, mean.shape)
        action = jnp.clip(action, -1.0, 1.0)
        return action, (h, z, action)

    def policy(self, state_or_params, carry, obs: np.ndarray, is_first: np.ndarray, key: jax.Array,
               deterministic: bool = False):
        """Actions (n, A) in [-1, 1] for observations (n, d) and the new carry; ``is_first`` marks episode starts."""
        params = state_or_params.params if isinstance(state_or_params, DreamerState) else state_or_params
        obs = jnp.asarray(obs, jnp.float32).reshape(-1, self.obs_dim)
        first = jnp.asarray(is_first, jnp.float32).reshape(-1)
        action, carry = self._policy_jit(params, carry, obs, first, key, deterministic=deterministic)
        return np.asarray(action), carry

    # --- the SAC-like interface of the training loop: one env, recurrent state kept here ----------------
    def policy_params(self, state: DreamerState):
        return state.params

    def begin_episode(self, evaluation: bool = False) -> None:
        """Forget the recurrent state of the training episode, or with ``evaluation`` of the evaluation episode
        (`act_deterministic`, `act(..., evaluation=True)`): the next action starts an episode."""
        if evaluation:
            self._eval = None
        else:
            self._train = None

    def _continue(self, slot: str, state_or_params, obs, key, deterministic: bool) -> np.ndarray:
        """Action for one observation, continuing the episode whose carry is stored in ``slot``."""
        carry = getattr(self, slot, None)
        first = carry is None
        action, carry = self.policy(state_or_params, self.initial_carry(1) if first else carry, obs,
                                    np.array([float(first)]), key, deterministic=deterministic)
        setattr(self, slot, carry)
        return action[0]

    def act(self, state_or_params, obs: np.ndarray, key: jax.Array,
            evaluation: bool = False) -> tuple[np.ndarray, jax.Array]:
        """Sampled action for one observation, continuing the training episode begun by `begin_episode` (or with
        ``evaluation`` the evaluation episode, so evaluating never touches the training episode's state)."""
        key, sub = jax.random.split(key)
        slot = "_eval" if evaluation else "_train"
        return self._continue(slot, state_or_params, obs, sub, deterministic=False), key

    def act_deterministic(self, state_or_params, obs: np.ndarray) -> np.ndarray:
        """Actor mean on the posterior's most likely latent, continuing the evaluation episode."""
        return self._continue("_eval", state_or_params, obs, jax.random.PRNGKey(0), deterministic=True)
