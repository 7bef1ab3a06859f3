import numpy as np
import pytest

from smiling.rl import ReplayBuffer


def filled(n, capacity, obs_dim=3, act_dim=2):
    buf = ReplayBuffer(obs_dim, act_dim, capacity)
    for i in range(n):
        buf.add(np.full(obs_dim, i), np.full(act_dim, i / 100), float(i), np.full(obs_dim, i + 1), i % 7 == 0)
    return buf


def test_capacity_is_bounded_and_wraps_fifo():
    buf = filled(25, capacity=10)
    assert len(buf) == 10 and buf.ptr == 5
    assert sorted(buf.reward.tolist()) == list(range(15, 25))
    batch = buf.sample(np.random.default_rng(0), 64, 3)
    assert batch["obs"].shape == (3, 64, 3) and batch["action"].shape == (3, 64, 2)
    assert batch["reward"].shape == (3, 64) and batch["terminated"].shape == (3, 64)
    assert batch["reward"].min() >= 15
    # the transitions stay aligned
    np.testing.assert_array_equal(batch["obs"][..., 0], batch["reward"])
    np.testing.assert_array_equal(batch["next_obs"][..., 0], batch["reward"] + 1)


def test_reward_relabelling_at_sample_time():
    buf = filled(50, capacity=100)
    calls = []

    def reward_fn(obs, action, next_obs):
        calls.append(obs.shape)
        return -next_obs.sum(-1)

    batch = buf.sample(np.random.default_rng(1), 16, 4, reward_fn=reward_fn)
    assert calls == [(64, 3)]
    np.testing.assert_allclose(batch["reward"], -batch["next_obs"].sum(-1))
    # the stored rewards are untouched
    assert buf.reward[:50].tolist() == list(range(50))
    # the relabelled rewards follow the current reward function
    batch2 = buf.sample(np.random.default_rng(1), 16, 4, reward_fn=lambda o, a, n: np.zeros(len(o)))
    assert np.all(batch2["reward"] == 0)


def test_bad_reward_fn_outputs_are_caught():
    buf = filled(5, capacity=10)
    with pytest.raises(ValueError, match="shape"):
        buf.sample(np.random.default_rng(0), 4, 2, reward_fn=lambda o, a, n: np.zeros((4,)))
    with pytest.raises(FloatingPointError, match="NaN"):
        buf.sample(np.random.default_rng(0), 4, 2, reward_fn=lambda o, a, n: np.full(len(o), np.nan))


def test_empty_and_invalid():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(3, 2, 10).sample(np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, 2, 0)


def test_state_dict_round_trip():
    buf = filled(13, capacity=10)
    other = ReplayBuffer(3, 2, 10)
    other.load_state_dict(buf.state_dict())
    for k in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(buf, k), getattr(other, k))
    assert (other.size, other.ptr) == (buf.size, buf.ptr)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, 2, 9).load_state_dict(buf.state_dict())  # smaller than the saved one


def test_load_into_a_larger_buffer_keeps_chronological_order():
    buf = filled(13, capacity=10)  # wrapped: holds transitions 3..12, ptr 3
    big = ReplayBuffer(3, 2, 20)
    big.load_state_dict(buf.state_dict())
    assert (big.size, big.ptr) == (10, 10)
    assert big.reward[:10].tolist() == list(range(3, 13))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, 2, 5).load_state_dict(buf.state_dict())


def test_reward_cache_holds_one_value_per_model_version_and_catches_up_on_new_transitions():
    from smiling.rl import RewardCache

    buf = ReplayBuffer(3, 2, 10)
    cache = RewardCache(buf, chunk=4)
    version = {"v": 1.0}
    calls = []

    def reward_fn(obs, action, next_obs):
        calls.append(len(obs))
        return version["v"] * next_obs[:, 0]

    def add(i):
        buf.add(np.full(3, i), np.zeros(2), 0.0, np.full(3, i + 1), False)
        cache.added()

    for i in range(7):
        add(i)
    cache.refresh(reward_fn)
    assert calls == [4, 4]  # chunks of 4, the last one (3 rows) padded to a power of two
    np.testing.assert_allclose(cache.values[:7], np.arange(1, 8))
    version["v"] = 2.0  # the model changes but no refresh: the cache keeps the old version...
    for i in range(7, 13):  # ...and wraps the ring buffer: slots 7, 8, 9, 0, 1, 2 get new transitions
        add(i)
    batch = cache.sample(np.random.default_rng(0), 32, 2, reward_fn)  # catch_up computes the 6 new ones
    np.testing.assert_allclose(batch["reward"], np.where(batch["next_obs"][..., 0] >= 8, 2.0, 1.0)
                               * batch["next_obs"][..., 0])
    cache.refresh(reward_fn)
    np.testing.assert_allclose(cache.values, 2.0 * buf.next_obs[:, 0])
    restored = RewardCache(buf)
    restored.load_state_dict(cache.state_dict(), reward_fn)
    np.testing.assert_array_equal(restored.values, cache.values)
