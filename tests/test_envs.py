import numpy as np
import pytest

from smiling.envs import UnknownTaskError, list_tasks, make_env, validate_task_id


@pytest.mark.parametrize("task,obs_dim,act_dim", [
    ("dmc:cheetah-run", 17, 6), ("dmc:ball_in_cup-catch", 8, 2), ("dmc:humanoid-walk", 67, 21),
    ("gym:Hopper-v5", 11, 3)])
def test_shapes_dtypes_and_bounds(task, obs_dim, act_dim):
    env = make_env(task, horizon=20)
    assert env.observation_space.shape == (obs_dim,)
    assert env.action_space.shape == (act_dim,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (obs_dim,)
    obs, r, term, trunc, _ = env.step(np.ones(act_dim))
    assert obs.dtype == np.float32 and obs.shape == (obs_dim,) and isinstance(r, float)
    assert env.observation_space.contains(obs)


def test_dmc_key_order_is_the_spec_order():
    env = make_env("dmc:cheetah-run")
    assert env.obs_keys == [("position", 0, 8), ("velocity", 8, 17)]
    obs, _ = env.reset(seed=3)
    np.testing.assert_allclose(obs[8:], env.physics.data.qvel, rtol=1e-6)


@pytest.mark.parametrize("task", ["dmc:ball_in_cup-catch", "gym:Hopper-v5"])
def test_fixed_horizon_truncates_not_terminates(task):
    env = make_env(task, horizon=37)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for t in range(37):
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        assert not term
        assert trunc == (t == 36)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(np.zeros(env.action_space.shape))


def test_hopper_runs_past_its_own_termination_by_default_and_stops_with_keep_termination():
    # Hopper falls over quickly under large constant actions.
    fall = np.array([1.0, -1.0, 1.0])
    env = make_env("gym:Hopper-v5", horizon=300)
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, term, trunc, _ = env.step(fall)
        steps += 1
        if term or trunc:
            break
    assert steps == 300 and not term
    env = make_env("gym:Hopper-v5", horizon=300, keep_termination=True)
    env.reset(seed=0)
    for steps in range(1, 301):
        _, _, term, trunc, info = env.step(fall)
        if term or trunc:
            break
    assert term and not trunc and steps < 300 and info["backend_terminated"]


@pytest.mark.parametrize("task", ["dmc:cheetah-run", "gym:Hopper-v5"])
def test_seeding_is_deterministic(task):
    def rollout(seed):
        env = make_env(task, horizon=30)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        rng = np.random.default_rng(0)
        for _ in range(30):
            obs, r, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            out.append(np.append(obs, r))
        return np.concatenate(out)

    a, b, c = rollout(5), rollout(5), rollout(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_actions_are_mapped_onto_backend_bounds():
    env = make_env("gym:Pendulum-v1", horizon=5)  # torque bounds are [-2, 2]
    env.reset(seed=0)
    low, high = env._backend_bounds()
    np.testing.assert_array_equal(low, [-2.0])
    np.testing.assert_array_equal(high, [2.0])
    seen = []
    env._backend_step = lambda a: (seen.append(a.copy()), (np.zeros(3), 0.0, False))[1]
    env.step(np.array([0.5]))
    env.step(np.array([-1.0]))
    np.testing.assert_allclose(np.concatenate(seen), [1.0, -2.0])


def test_bad_actions_are_rejected():
    env = make_env("dmc:cheetah-run", horizon=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(6, np.nan))


@pytest.mark.parametrize("bad", ["dmc:cheetah-fly", "dmc:nodomain-run", "gym:NoSuchEnv-v0", "cheetah-run",
                                 "foo:bar", "dmc:"])
def test_unknown_task_ids_fail_with_one_clear_line(bad):
    for fn in (make_env, validate_task_id):
        with pytest.raises(UnknownTaskError) as e:
            fn(bad)
        msg = str(e.value)
        assert bad in msg and "smiling tasks" in msg and "\n" not in msg


def test_discrete_gym_env_is_refused_clearly():
    with pytest.raises(ValueError, match="continuous"):
        make_env("gym:CartPole-v1")


def test_list_tasks_has_both_backends():
    tasks = list_tasks()
    assert "dmc:cheetah-run" in tasks and "dmc:humanoid-walk" in tasks and "gym:Hopper-v5" in tasks
