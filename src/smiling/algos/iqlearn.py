"""IQ-Learn (Garg et al. 2021), inverse soft-Q learning on the SAC actor-critic: the discriminator-free baseline.

The critic Q is trained so that its implicit reward r(s, a) = Q(s, a) - gamma V(s') is high on expert
transitions, with V(s) = E_{a ~ pi}[Q(s, a) - alpha log pi(a | s)] and a chi-squared regularizer:

    L(Q) = -E_expert[r] + value term + 1/(4 c) E_{expert + policy}[r^2]

    value term:  v0:    (1 - gamma) E_{s0 ~ expert initial states}[V(s0)]
                 value: E_{expert + policy}[V(s) - gamma V(s')]

(c = ``chi2_alpha``, 0.5 in the authors' configs.) The actor is SAC's, trained on policy and expert states
against this Q. State-only variant (default, the paper's setting): the expert's action at s is replaced by a
sample of the current policy at s; ``use_actions=True`` uses the demonstrated actions. The env's reward is never
used (batches carry zero rewards).

Settings (following the authors' MuJoCo recipe, reference notes): a fixed temperature (learning it destabilizes
IQ-Learn), a smaller actor learning rate, one critic, V(s') from the target critic.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np

from smiling.algos.base import Algorithm, actions_variant
from smiling.rl.networks import sample_tanh_gaussian
from smiling.rl.sac import SAC, SACConfig
from smiling.utils.config import check_choice, check_field_types

Loss = Literal["value", "v0"]
LOSSES = get_args(Loss)


@dataclasses.dataclass(frozen=True)
class IQLearnConfig:
    loss: Loss = "value"
    """value or v0 (the authors use v0 for Hopper/Walker/Humanoid, value for HalfCheetah/Ant)."""
    chi2_alpha: float = 0.5
    """The chi-squared regularizer is 1/(4 chi2_alpha) E[r^2]."""
    use_actions: bool = False
    """Use the demonstrated actions (state-action variant) instead of the policy's (state-only)."""
    temperature: float = 0.01
    learn_temperature: bool = False
    actor_lr: float = 3e-5
    num_critics: int = 1

    def __post_init__(self):
        check_field_types(self, "iqlearn.")
        check_choice(self.loss, LOSSES, "iqlearn.loss")
        if not self.chi2_alpha > 0 or not self.temperature > 0 or self.num_critics < 1:
            raise ValueError(f"iqlearn.chi2_alpha and temperature must be > 0, num_critics >= 1: {self}")


def iqlearn_sac_config(sac: SACConfig, iq: IQLearnConfig) -> SACConfig:
    """The SAC settings IQ-Learn runs with: ``sac`` with IQ-Learn's temperature, actor lr and critic count."""
    return dataclasses.replace(sac, init_temperature=iq.temperature, learn_temperature=iq.learn_temperature,
                               actor_lr=iq.actor_lr, num_critics=iq.num_critics)


class IQLearnAgent(SAC):
    """SAC with IQ-Learn's critic loss; it trains on the learner's transitions beside the expert's (``expert``,
    needed only to train)."""

    def __init__(self, obs_dim: int, action_dim: int, sac: SACConfig, iq: IQLearnConfig,
                 expert: ExpertSampler | None = None):
        self.iq, self.expert = iq, expert  # (before SAC's __init__, which jits the losses that read ``iq``)
        super().__init__(obs_dim, action_dim, iqlearn_sac_config(sac, iq))

    def jit_key(self) -> tuple:
        return *super().jit_key(), repr(self.iq)

    def batches(self, source, rng: np.random.Generator, env_steps: int, reward_fn=None) -> dict[str, np.ndarray]:
        """SAC's batches with their rewards zeroed (the env's reward is never used), and as many expert batches
        under ``expert_*`` keys."""
        if self.expert is None:
            raise ValueError("IQ-Learn trains on expert transitions: build the agent with the demonstrations")
        batch = super().batches(source, rng, env_steps, reward_fn)
        batch["reward"] = np.zeros_like(batch["reward"])
        batch.update(self.expert.sample(rng, self.config.batch_size, env_steps * self.config.utd))
        return batch

    def _value(self, critic_params, actor_params, obs, alpha, key):
        """Soft value per critic, (num_critics, B): Q(s, a) - alpha log pi(a | s), a ~ pi(s)."""
        m, ls = self.actor_net.apply(actor_params, obs)
        a, logp = sample_tanh_gaussian(m, ls, key)
        return self.critic_net.apply(critic_params, obs, a) - alpha * logp[None]

    def _critic_loss(self, params, state, batch, alpha, key):
        k_a, k_next, k_v = jax.random.split(key, 3)
        actor = jax.lax.stop_gradient(state.actor.params)
        b = batch["obs"].shape[0]
        if self.iq.use_actions:
            a_e = batch["expert_action"]
        else:
            m, ls = self.actor_net.apply(actor, batch["expert_obs"])
            a_e = jax.lax.stop_gradient(sample_tanh_gaussian(m, ls, k_a)[0])
        obs = jnp.concatenate([batch["obs"], batch["expert_obs"]])
        act = jnp.concatenate([batch["action"], a_e])
        nxt = jnp.concatenate([batch["next_obs"], batch["expert_next_obs"]])
        not_done = 1.0 - jnp.concatenate([batch["terminated"], batch["expert_terminated"]])
        gamma = self.config.discount
        q = self.critic_net.apply(params, obs, act)                                   # (C, 2B)
        v_next = jax.lax.stop_gradient(self._value(state.target_critic, actor, nxt, alpha, k_next))
        r = q - gamma * not_done[None] * v_next                                        # implicit reward
        expert_term = -r[:, b:].mean(axis=1)
        if self.iq.loss == "v0":
            value_term = (1 - gamma) * self._value(params, actor, batch["expert_init_obs"], alpha, k_v).mean(axis=1)
        else:
            v = self._value(params, actor, obs, alpha, k_v)
            value_term = (v - gamma * not_done[None] * v_next).mean(axis=1)
        chi2 = (r**2).mean(axis=1) / (4 * self.iq.chi2_alpha)
        loss = (expert_term + value_term + chi2).sum()
        return loss, {"q_mean": q.mean(), "iq_reward_expert": r[:, b:].mean(), "iq_reward_policy": r[:, :b].mean()}

    def _actor_obs(self, batch):
        return jnp.concatenate([batch["obs"], batch["expert_obs"]])


class ExpertSampler:
    """Uniform minibatches of expert transitions, shaped like the replay buffer's, under ``expert_*`` keys."""

    def __init__(self, demos, use_actions: bool):
        s, s_next = demos.state_pairs()
        self.obs, self.next_obs = s.astype(np.float32), s_next.astype(np.float32)
        if use_actions:
            self.action = demos.state_action_pairs()[1].astype(np.float32)  # DemoError without actions
        else:
            self.action = np.zeros((len(s), demos.action_dim or 1), np.float32)
        self.init_obs = np.asarray(demos.observations[:, 0], np.float32)

    def sample(self, rng: np.random.Generator, batch_size: int, num_batches: int) -> dict[str, np.ndarray]:
        idx = rng.integers(0, len(self.obs), size=(num_batches, batch_size))
        init = rng.integers(0, len(self.init_obs), size=(num_batches, batch_size))
        return {"expert_obs": self.obs[idx], "expert_next_obs": self.next_obs[idx], "expert_action": self.action[idx],
                "expert_terminated": np.zeros((num_batches, batch_size), np.float32),
                "expert_init_obs": self.init_obs[init]}


ALGORITHM = Algorithm(
    "iqlearn", "IQ-Learn: inverse soft-Q learning, no reward model (the discriminator-free baseline); --iqlearn.*",
    config=IQLearnConfig, variants=(actions_variant("iqlearn"),),
    agent=lambda cfg, obs_dim, act_dim, demos: IQLearnAgent(
        obs_dim, act_dim, cfg.sac, cfg.iqlearn, None if demos is None else ExpertSampler(demos, cfg.iqlearn.use_actions)))
