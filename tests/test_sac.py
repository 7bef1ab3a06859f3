import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smiling.rl import SAC, SACConfig
from smiling.rl.networks import sample_tanh_gaussian
from smiling.utils.cache import shared_jit


def fixed_batch(n_batches, batch, obs_dim=4, act_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(batch, obs_dim)).astype(np.float32)
    b = {"obs": obs, "action": rng.uniform(-1, 1, (batch, act_dim)).astype(np.float32),
         "reward": obs[:, 0].copy(), "next_obs": rng.normal(size=(batch, obs_dim)).astype(np.float32),
         "terminated": np.zeros(batch, np.float32)}
    return {k: np.broadcast_to(v, (n_batches, *v.shape)).copy() for k, v in b.items()}


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    mean, log_std = jnp.array([[0.3, -0.5]]), jnp.array([[-0.2, 0.1]])
    a, logp = sample_tanh_gaussian(mean, log_std, jax.random.PRNGKey(0))
    u = np.arctanh(np.asarray(a, np.float64))
    std = np.exp(np.asarray(log_std, np.float64))
    normal = -0.5 * ((u - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    expected = (normal - np.log(1 - np.tanh(u) ** 2)).sum()
    np.testing.assert_allclose(float(logp[0]), expected, rtol=1e-4)


def test_actions_in_bounds_and_deterministic_mean():
    sac = SAC(4, 2, SACConfig(hidden_dims=(16,)))
    st = sac.init(0)
    obs = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32) * 100
    a, _ = sac.act(st, obs, jax.random.PRNGKey(1))
    assert a.shape == (100, 2) and np.all(np.abs(a) <= 1)
    np.testing.assert_array_equal(sac.act_deterministic(st, obs), sac.act_deterministic(st.actor.params, obs))


def test_update_is_finite_and_critic_loss_decreases_on_a_fixed_batch():
    sac = SAC(4, 2, SACConfig(hidden_dims=(64, 64), batch_size=64))
    st = sac.init(0)
    batch = fixed_batch(50, 64)
    st, first = sac.update(st, batch)
    for _ in range(5):
        st, last = sac.update(st, batch)
    assert all(np.isfinite(v) for v in last.values())
    assert last["critic_loss"] < 0.5 * first["critic_loss"]
    assert int(st.steps) == 300


def test_temperature_moves_towards_target_entropy():
    # entropy far above the target -|A| -> alpha must shrink
    sac = SAC(4, 2, SACConfig(hidden_dims=(16,), init_temperature=1.0, temp_lr=1e-2))
    st = sac.init(0)
    st, m = sac.update(st, fixed_batch(100, 32))
    assert float(jnp.exp(st.temp.params)) < 1.0


def test_serialization_round_trip_is_exact():
    sac = SAC(4, 2, SACConfig(hidden_dims=(16,), batch_size=8))
    st, _ = sac.update(sac.init(3), fixed_batch(3, 8))
    restored = sac.from_bytes(sac.to_bytes(st))
    for x, y in zip(jax.tree_util.tree_leaves(st), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # continuing from the restored state gives the same result
    b = fixed_batch(2, 8, seed=1)
    s1, m1 = sac.update(st, b)
    s2, m2 = sac.update(restored, b)
    assert m1 == m2


def test_agents_built_alike_share_their_jitted_functions():
    cfg = SACConfig(hidden_dims=(16,), batch_size=8)
    first = SAC(4, 2, cfg)
    assert SAC(4, 2, cfg)._update is first._update and SAC(4, 2, cfg)._act_mean is first._act_mean
    for other in (SAC(5, 2, cfg), SAC(4, 2, SACConfig(hidden_dims=(16,), batch_size=8, discount=0.9))):
        assert other._update is not first._update and other._act_sample is not first._act_sample


def test_shared_jit_refuses_functions_it_cannot_name():
    def local(x):
        return x

    for fn in (lambda x: x, local):  # two closures under one key would share the first one's jit
        with pytest.raises(ValueError, match="named method or module-level function"):
            shared_jit(("test",), fn)
    assert shared_jit(("test",), jnp.negative) is shared_jit(("test",), jnp.negative)  # (a jax ufunc: no __qualname__)
    assert shared_jit(("test",), fixed_batch) is shared_jit(("test",), fixed_batch)


def test_same_seed_same_updates():
    def run():
        sac = SAC(4, 2, SACConfig(hidden_dims=(16,), batch_size=8))
        st, m = sac.update(sac.init(7), fixed_batch(4, 8))
        return m

    assert run() == run()


@pytest.mark.parametrize("n", [1, 7])
def test_number_of_fused_updates_is_the_leading_axis(n):
    sac = SAC(4, 2, SACConfig(hidden_dims=(16,), batch_size=8))
    st, _ = sac.update(sac.init(0), fixed_batch(n, 8))
    assert int(st.steps) == n
