"""IQ-Learn: its critic loss on hand-made data, the loop with --algo iqlearn, evaluation of its runs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smiling.algos.iqlearn import IQLearnAgent, IQLearnConfig
from smiling.algos import train
from smiling.rl import SACConfig
from smiling.runs import read_metrics

from conftest import TINY_CLI, comparable, crash_after_row, tiny_config


def batches(rng, n, b, expert_action, policy_action):
    obs = rng.normal(size=(n, b, 2)).astype(np.float32)
    e_obs = rng.normal(size=(n, b, 2)).astype(np.float32)
    z = np.zeros((n, b), np.float32)
    return {"obs": obs, "action": np.full((n, b, 1), policy_action, np.float32), "reward": z,
            "next_obs": rng.normal(size=(n, b, 2)).astype(np.float32), "terminated": z,
            "expert_obs": e_obs, "expert_action": np.full((n, b, 1), expert_action, np.float32),
            "expert_next_obs": rng.normal(size=(n, b, 2)).astype(np.float32), "expert_terminated": z,
            "expert_init_obs": rng.normal(size=(n, b, 2)).astype(np.float32)}


@pytest.mark.parametrize("loss", ["value", "v0"])
def test_implicit_reward_ranks_expert_actions_above_the_learners(loss):
    agent = IQLearnAgent(2, 1, SACConfig(hidden_dims=(32, 32), critic_lr=1e-3),
                         IQLearnConfig(loss=loss, use_actions=True, actor_lr=0.0))  # critic only
    state = agent.init(0)
    rng = np.random.default_rng(0)
    for _ in range(6):
        state, m = agent.update(state, batches(rng, 100, 64, expert_action=0.8, policy_action=-0.8))
    assert m["iq_reward_expert"] > m["iq_reward_policy"] + 0.5
    s = jnp.asarray(rng.normal(size=(256, 2)), jnp.float32)
    q_e = agent.critic_net.apply(state.critic.params, s, jnp.full((256, 1), 0.8))
    q_p = agent.critic_net.apply(state.critic.params, s, jnp.full((256, 1), -0.8))
    assert float((q_e - q_p).mean()) > 0.5


def test_state_only_variant_ignores_the_demonstrated_actions():
    agent = IQLearnAgent(2, 1, SACConfig(hidden_dims=(16,)), IQLearnConfig())
    state = agent.init(0)
    rng = np.random.default_rng(0)
    b1 = {k: jnp.asarray(v[0]) for k, v in batches(rng, 1, 32, 0.5, 0.0).items()}
    b2 = {**b1, "expert_action": -b1["expert_action"]}
    alpha = jnp.exp(state.temp.params)
    key = jax.random.PRNGKey(0)
    l1, _ = agent._critic_loss(state.critic.params, state, b1, alpha, key)
    l2, _ = agent._critic_loss(state.critic.params, state, b2, alpha, key)
    assert float(l1) == float(l2)
    agent_sa = IQLearnAgent(2, 1, SACConfig(hidden_dims=(16,)), IQLearnConfig(use_actions=True))
    # agents built alike share one jitted update (`shared_jit`); these two differ only in the IQ-Learn config, which
    # the subclass adds to the key: each gets its own, or the second would train with the first one's loss
    assert IQLearnAgent(2, 1, SACConfig(hidden_dims=(16,)), IQLearnConfig())._update is agent._update
    assert agent_sa._update is not agent._update
    l1, _ = agent_sa._critic_loss(state.critic.params, state, b1, alpha, key)
    l2, _ = agent_sa._critic_loss(state.critic.params, state, b2, alpha, key)
    assert float(l1) != float(l2)


def test_iqlearn_keeps_its_temperature_fixed_and_uses_one_critic():
    agent = IQLearnAgent(2, 1, SACConfig(hidden_dims=(16,)), IQLearnConfig(temperature=0.02))
    state = agent.init(0)
    state, m = agent.update(state, batches(np.random.default_rng(0), 5, 16, 0.1, 0.2))
    assert abs(m["alpha"] - 0.02) < 1e-7 and abs(float(jnp.exp(state.temp.params)) - 0.02) < 1e-7
    assert agent.config.num_critics == 1
    with pytest.raises(ValueError, match="'gail'"):
        IQLearnAgent(2, 1, SACConfig(), IQLearnConfig(loss="gail"))


def test_iqlearn_run_resumes_exactly_and_never_sees_the_env_reward(tmp_path, monkeypatch):
    import smiling.algos.iqlearn as iq_mod

    seen = []
    original = iq_mod.IQLearnAgent.update

    def spy(self, state, batch):
        seen.append(float(np.abs(batch["reward"]).max()))
        return original(self, state, batch)

    monkeypatch.setattr(iq_mod.IQLearnAgent, "update", spy)
    cfg = tiny_config(algo="iqlearn", steps=200)
    train(cfg, tmp_path / "full", quiet=True)
    assert seen and max(seen) == 0.0
    rows = read_metrics(tmp_path / "full")
    assert rows[-1]["iq_reward_expert"] != ""
    crash_after_row(cfg, tmp_path / "cut", monkeypatch, 150)
    train(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert comparable(read_metrics(tmp_path / "cut")) == comparable(read_metrics(tmp_path / "full"))


def test_iqlearn_cli_and_evaluate(smiling_main, tmp_path):
    out = tmp_path / "iq"
    r = smiling_main("imitate", "--algo", "iqlearn", "--task", "dmc:ball_in_cup-catch", "--steps", "100", "--out",
                     out, "--iqlearn.loss", "v0", *TINY_CLI)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["config"]["iqlearn"]["loss"] == "v0"
    from smiling.evaluation import evaluate_run

    assert evaluate_run(out, episodes=1)["episodes"] == 1
