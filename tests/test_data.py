import dataclasses

import h5py
import numpy as np
import pytest

from smiling.data import (DemoError, Demos, bundled_tasks, describe, load_demos, load_npz, read_d4rl,
                          read_minari, save_npz, write_d4rl, write_minari)


def make_demos(E=3, T=6, d=4, a=2, actions=True, rewards=True, seed=0, task=None):
    rng = np.random.default_rng(seed)
    meta = {"source": "test", "note": "x"}
    if task:
        meta["task"] = task
    return Demos(rng.normal(size=(E, T + 1, d)).astype(np.float32),
                 rng.uniform(-1, 1, (E, T, a)).astype(np.float32) if actions else None,
                 rng.normal(size=(E, T)).astype(np.float32) if rewards else None, meta)


def same_bits(x, y):
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


# --- the container -----------------------------------------------------------------------------------
def test_demos_is_immutable():
    d = make_demos()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.observations = None
    with pytest.raises(ValueError):
        d.observations[0, 0, 0] = 1.0
    with pytest.raises(TypeError):
        d.metadata["task"] = "y"
    src = np.zeros((1, 3, 2), np.float32)
    d2 = Demos(src)
    src[0, 0, 0] = 5  # the container owns a copy
    assert d2.observations[0, 0, 0] == 0


def test_views_and_sizes():
    d = make_demos(E=3, T=6, d=4, a=2)
    assert (d.num_episodes, d.horizon, d.obs_dim, d.action_dim, len(d)) == (3, 6, 4, 2, 3)
    assert d.states().shape == (21, 4)
    s, a = d.state_action_pairs()
    assert s.shape == (18, 4) and a.shape == (18, 2)
    np.testing.assert_array_equal(s[7], d.observations[1, 1])
    np.testing.assert_array_equal(a[7], d.actions[1, 1])
    s0, s1 = d.state_pairs()
    np.testing.assert_array_equal(s1[7], d.observations[1, 2])
    np.testing.assert_allclose(d.returns(), d.rewards.sum(1), rtol=1e-6)


def test_state_only_demos_refuse_action_views():
    d = make_demos(actions=False, task="dmc:cheetah-run")
    assert not d.has_actions and d.action_dim is None
    with pytest.raises(DemoError, match="no actions"):
        d.state_action_pairs()
    assert not make_demos().without_actions().has_actions


def test_demos_from_episodes_of_one_length_or_truncated_and_metadata_made_json(tmp_path):
    rng = np.random.default_rng(0)
    obs = [rng.normal(size=(T + 1, 3)) for T in (5, 4, 6)]
    acts = [rng.uniform(-1, 1, (T, 2)) for T in (5, 4, 6)]
    with pytest.raises(DemoError, match=r"from_episodes: episodes have different lengths \[4, 5, 6\]; pass "
                                        r"truncate=True to cut them to the shortest \(4 steps\), or pad_to=T"):
        Demos.from_episodes(obs, acts)
    d = Demos.from_episodes(obs, acts, truncate=True, metadata={"expert_return_mean": np.float32(2.5)})
    assert d.observations.shape == (3, 5, 3) and d.actions.shape == (3, 4, 2) and d.rewards is None
    assert np.array_equal(d.observations[1], obs[1].astype(np.float32)) and d.metadata["expert_return_mean"] == 2.5
    assert Demos.from_episodes(obs[:1]).horizon == 5 and dict(Demos(obs[0][None], metadata=None).metadata) == {}
    with pytest.raises(DemoError, match="2 episodes of actions for 3 of observations"):
        Demos.from_episodes(obs, acts[:2], truncate=True)
    with pytest.raises(DemoError, match="from_episodes: no episodes"):
        Demos.from_episodes([])
    with pytest.raises(DemoError, match="metadata must be a JSON-able mapping .*object"):
        Demos(obs[0][None], metadata={"policy": object()})
    assert save_npz(d, tmp_path / "mine") == tmp_path / "mine.npz"  # (load_demos tells formats by the suffix)
    assert load_demos(tmp_path / "mine.npz").equals(d)
    # episodes of an env that ends early, held at their last state (truncating cut the goal off every one of them)
    rewards = [np.ones(T) for T in (5, 4, 6)]
    p = Demos.from_episodes(obs, acts, rewards, pad_to=5)
    assert p.observations.shape == (3, 6, 3) and p.actions.shape == (3, 5, 2) and p.horizon == 5
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    assert np.array_equal(p.observations[1], f32(np.concatenate([obs[1], obs[1][-1:]])))   # 4 steps: held once
    assert np.array_equal(p.observations[2], f32(obs[2][:6]))                                # 6 steps: cut to 5
    assert np.array_equal(p.actions[1][4], [0, 0]) and p.rewards[1].tolist() == [1, 1, 1, 1, 0]
    with pytest.raises(DemoError, match="pad_to must be >= 1 and excludes truncate"):
        Demos.from_episodes(obs, pad_to=5, truncate=True)


def test_subsample_select_split():
    d = make_demos(E=5, T=6)
    s = d.subsample(episodes=2, horizon=3)
    assert s.observations.shape == (2, 4, 4) and s.actions.shape == (2, 3, 2) and s.rewards.shape == (2, 3)
    np.testing.assert_array_equal(s.observations, d.observations[:2, :4])
    with pytest.raises(DemoError, match="subsample"):
        d.subsample(episodes=6)
    tr, va = d.split(0.4, seed=1)
    assert tr.num_episodes == 3 and va.num_episodes == 2
    rows = {r.tobytes() for r in tr.observations} | {r.tobytes() for r in va.observations}
    assert rows == {r.tobytes() for r in d.observations}
    with pytest.raises(DemoError, match="2 episodes"):
        make_demos(E=1).split()
    with pytest.raises(DemoError, match="out of range"):
        d.select([7])


# --- npz ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("actions,rewards", [(True, True), (False, False), (True, False)])
def test_npz_round_trip_is_bit_exact(tmp_path, actions, rewards):
    d = make_demos(actions=actions, rewards=rewards)
    save_npz(d, tmp_path / "d.npz")
    back = load_npz(tmp_path / "d.npz")
    assert back.equals(d)
    save_npz(back, tmp_path / "e.npz", compress=False)
    assert load_npz(tmp_path / "e.npz").equals(d)
    with np.load(tmp_path / "d.npz", allow_pickle=False) as z:
        assert z["metadata"].dtype.kind == "U"  # JSON text, not an object array


def test_minari_round_trip_is_bit_exact(tmp_path):
    d = make_demos(E=3, T=5)
    write_minari(d, tmp_path / "ds")
    back = read_minari(tmp_path / "ds")
    for name in ("observations", "actions", "rewards"):
        assert same_bits(getattr(back, name), getattr(d, name)), name
    assert back.metadata["source"] == "minari"
    # and back to npz, still bit-exact
    save_npz(back, tmp_path / "d.npz")
    assert same_bits(load_npz(tmp_path / "d.npz").observations, d.observations)


def test_minari_package_reads_our_files_and_we_read_its(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    d = make_demos(E=2, T=4)
    write_minari(d, tmp_path / "smiling" / "demos-v0", dataset_id="smiling/demos-v0")
    ds = minari.load_dataset("smiling/demos-v0")
    eps = list(ds.iterate_episodes())
    assert len(eps) == 2
    np.testing.assert_array_equal(eps[1].observations, d.observations[1])
    np.testing.assert_array_equal(eps[1].actions, d.actions[1])

    env = minari.DataCollector(gym.make("Pendulum-v1", max_episode_steps=7))
    for ep in range(2):
        env.reset(seed=ep)
        for _ in range(7):
            env.step(np.array([1.5], np.float32))
    env.create_dataset(dataset_id="test/pendulum-v0", algorithm_name="const")
    got = read_minari("test/pendulum-v0")  # resolved under MINARI_DATASETS_PATH, never downloaded
    assert got.observations.shape == (2, 8, 3) and got.actions.shape == (2, 7, 1)
    np.testing.assert_allclose(got.actions, 0.75)  # [-2, 2] rescaled onto [-1, 1]
    assert got.metadata["actions_rescaled_from"] == [[-2.0], [2.0]]
    theirs = list(minari.load_dataset("test/pendulum-v0").iterate_episodes())[0]
    np.testing.assert_array_equal(got.observations[0], theirs.observations)


def test_d4rl_round_trip_is_bit_exact(tmp_path):
    d = make_demos(E=3, T=5)
    write_d4rl(d, tmp_path / "d.hdf5")
    back = read_d4rl(tmp_path / "d.hdf5")
    for name in ("observations", "actions", "rewards"):
        assert same_bits(getattr(back, name), getattr(d, name)), name
    assert load_demos(tmp_path / "d.hdf5").observations.shape == (3, 6, 4)


def test_d4rl_without_next_observations_drops_the_unknown_last_transition(tmp_path):
    N = 8
    with h5py.File(tmp_path / "d.hdf5", "w") as h:
        h["observations"] = np.arange(N * 2, dtype=np.float32).reshape(N, 2)
        h["actions"] = np.zeros((N, 1), np.float32)
        h["rewards"] = np.ones(N, np.float32)
        h["terminals"] = np.zeros(N, bool)
        h["timeouts"] = np.arange(N) % 4 == 3
    d = read_d4rl(tmp_path / "d.hdf5")
    assert d.observations.shape == (2, 4, 2) and d.actions.shape == (2, 3, 1)
    np.testing.assert_array_equal(d.observations[1, 0], [8, 9])


# --- bad inputs: one clear error naming the file and the problem -------------------------------------
def write_raw(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays,message", [
    (dict(observations=np.full((2, 3, 4), np.nan, np.float32)), "NaN or inf"),
    (dict(observations=np.array([[[0, np.inf]]] * 2, np.float32).repeat(2, 1)), "NaN or inf"),
    (dict(observations=np.zeros((3, 4), np.float32)), "rank 2"),
    (dict(observations=np.zeros((0, 3, 4), np.float32)), "no data"),
    (dict(observations=np.zeros((2, 3, 4), np.float32), actions=np.full((2, 2, 1), 1.5, np.float32)),
     r"\[-1, 1\]"),
    (dict(observations=np.zeros((2, 3, 4), np.float32), actions=np.zeros((2, 3, 1), np.float32)),
     "actions must have shape"),
    (dict(actions=np.zeros((2, 3, 1), np.float32)), "no 'observations'"),
    (dict(observations=np.zeros((2, 3, 4), np.float32), metadata=np.array("{not json")), "not valid JSON"),
    (dict(observations=np.array([[["a", "b"]]])), "numeric"),
    (dict(observations=np.ones((2, 3, 4), np.complex64)), r"numeric \(real numbers\), got dtype complex64"),
    (dict(observations=np.full((2, 3, 4), 1e300)), r"NaN or inf, or values beyond float32's range \(24 values\)"),
    (dict(observations=np.zeros((2, 3, 4)), rewards=np.full((2, 2), -1e40)), "rewards contain NaN or inf"),
])
def test_bad_npz_files(tmp_path, arrays, message):
    path = write_raw(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DemoError, match=message) as e:
        load_npz(path)
    assert str(path) in str(e.value)


def test_an_archive_member_that_is_not_a_npy_array_is_refused(tmp_path):
    """np.load hands back the raw bytes of a member that is not a .npy file (it was an AttributeError)."""
    import zipfile
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as z:
        z.writestr("observations.npy", b"not an array")
    with pytest.raises(DemoError, match="observations is not a .npy array inside the archive") as e:
        load_npz(tmp_path / "raw.npz")
    assert "raw.npz" in str(e.value)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = write_raw(tmp_path / "obj.npz", observations=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(DemoError, match="without pickle") as e:
        load_npz(path)
    assert str(path) in str(e.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DemoError, match="file not found"):
        load_npz(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip")
    with pytest.raises(DemoError, match="not a readable .npz") as e:
        load_npz(tmp_path / "junk.npz")
    assert "junk.npz" in str(e.value)
    with pytest.raises(DemoError, match="no Minari dataset"):
        read_minari(tmp_path / "nodir")
    with pytest.raises(DemoError, match="unknown demonstration format"):
        (tmp_path / "x.txt").write_text("hi")
        load_demos(tmp_path / "x.txt")


def test_dimension_must_match_the_task(tmp_path):
    save_npz(make_demos(d=5), tmp_path / "d.npz")
    with pytest.raises(DemoError, match=r"observation dimension 5 does not match task 'dmc:cheetah-run' "
                                        r"\(observation size 17\)"):
        load_npz(tmp_path / "d.npz", task="dmc:cheetah-run")
    save_npz(make_demos(d=17, a=2), tmp_path / "a.npz")  # (a state-only run trained on, a state-action one died)
    with pytest.raises(DemoError, match=r"action dimension 2 does not match task 'dmc:cheetah-run' "
                                        r"\(action size 6\)"):
        load_npz(tmp_path / "a.npz", task="dmc:cheetah-run")
    assert load_npz(tmp_path / "a.npz").action_dim == 2  # (no task: nothing to match)
    save_npz(make_demos(d=17, task="dmc:walker-walk"), tmp_path / "w.npz")
    with pytest.raises(DemoError, match="for task 'dmc:walker-walk', not 'dmc:cheetah-run'"):
        load_npz(tmp_path / "w.npz", task="dmc:cheetah-run")


def test_unequal_episode_lengths(tmp_path):
    with h5py.File(tmp_path / "d.hdf5", "w") as h:
        h["observations"] = np.zeros((7, 2), np.float32)
        h["next_observations"] = np.zeros((7, 2), np.float32)
        h["actions"] = np.zeros((7, 1), np.float32)
        h["terminals"] = np.array([0, 0, 1, 0, 0, 0, 0], bool)
        h["timeouts"] = np.array([0, 0, 0, 0, 0, 0, 1], bool)
    with pytest.raises(DemoError, match=r"different lengths \[3, 4\].*truncate=True") as e:
        read_d4rl(tmp_path / "d.hdf5")
    assert "d.hdf5" in str(e.value)
    assert read_d4rl(tmp_path / "d.hdf5", truncate=True).observations.shape == (2, 4, 2)


def test_unknown_bundled_task():
    with pytest.raises(DemoError, match="no bundled demonstrations for 'dmc:acrobot-swingup'"):
        load_demos("dmc:acrobot-swingup")


# --- bundled demos -----------------------------------------------------------------------------------
@pytest.mark.parametrize("task", bundled_tasks())
def test_bundled_demos_load_by_task_id(task):
    d = load_demos(task)
    m = d.metadata
    assert d.task == task and d.num_episodes == 5 and d.horizon == 1000 and d.has_actions
    assert d.observations.dtype == np.float32
    for k in ("expert_return_mean", "expert_return_std", "random_return_mean", "random_return_std",
              "stochastic", "expert_run", "created", "smiling_version", "obs_keys"):
        assert k in m, k
    assert m["random_episodes"] >= 10
    assert m["expert_return_mean"] > m["random_return_mean"]
    np.testing.assert_allclose(d.returns().mean(), m["expert_return_mean"], rtol=1e-4)
    assert "expert return" in describe(d)


def test_the_dmc_expert_tasks_are_bundled():
    assert {"dmc:ball_in_cup-catch", "dmc:cheetah-run", "dmc:walker-walk"} <= set(bundled_tasks())


# --- generation from an expert run -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_expert(tmp_path_factory):
    from smiling.algos import train

    from conftest import tiny_config

    run = tmp_path_factory.mktemp("expert") / "run"
    train(tiny_config(steps=100), run, quiet=True)
    return run


def test_demos_from_run_shapes_metadata_and_determinism(tiny_expert):
    from smiling.evaluation import demos_from_run

    d = demos_from_run(tiny_expert, episodes=2, random_episodes=10)
    assert d.observations.shape == (2, 51, 8) and d.actions.shape == (2, 50, 2) and d.rewards.shape == (2, 50)
    m = d.metadata
    assert m["task"] == "dmc:ball_in_cup-catch" and m["stochastic"] is False and m["random_episodes"] == 10
    assert m["expert_checkpoint_step"] == 100
    assert f"expert_run: {tiny_expert} (checkpoint at env step 100)" in describe(d)
    np.testing.assert_allclose(m["expert_return_mean"], d.returns().mean(), rtol=1e-5)
    assert demos_from_run(tiny_expert, episodes=2, random_episodes=10).observations.tobytes() == \
        d.observations.tobytes()
    s = demos_from_run(tiny_expert, episodes=2, stochastic=True, random_episodes=10)
    assert s.metadata["stochastic"] is True and s.actions.tobytes() != d.actions.tobytes()


def test_generate_demos_takes_any_policy():
    from smiling.data import generate_demos

    d = generate_demos(lambda obs: np.zeros(2, np.float32), "dmc:ball_in_cup-catch", episodes=1, random_episodes=2,
                       horizon=20, source={"note": "zero actions"})
    assert d.observations.shape == (1, 21, 8) and not d.actions.any() and d.metadata["note"] == "zero actions"
    assert "expert_run" not in d.metadata


def test_demos_cli(tiny_expert, tmp_path, smiling_main):
    out = tmp_path / "d.npz"
    r = smiling_main("demos", "--expert", tiny_expert, "--episodes", "2", "--out", out, "--random-episodes", "10")
    assert r.returncode == 0, r.stderr
    assert load_npz(out, task="dmc:ball_in_cup-catch").num_episodes == 2
    r = smiling_main("demos", "--expert", tiny_expert, "--episodes", "1", "--out", out)
    assert r.returncode == 2 and "--force" in r.stderr  # an existing file is not overwritten silently
    assert load_npz(out).num_episodes == 2
    r = smiling_main("demos", "info", out)
    assert r.returncode == 0 and "2 episodes x 50 steps" in r.stdout and "random-policy return" in r.stdout
    bad = tmp_path / "bad.npz"
    np.savez(bad, observations=np.full((1, 3, 8), np.nan, np.float32))
    r = smiling_main("demos", "info", bad)
    assert r.returncode == 2 and f"{bad}: observations contain NaN" in r.stderr and "Traceback" not in r.stderr


def test_a_gym_task_with_and_without_its_module_is_one_task():
    """Demos made for gym:pointmass:PointMass-v0 were refused for gym:PointMass-v0 (the same env once the module
    is imported)."""
    from smiling.data.files import _same_task
    assert _same_task("gym:pointmass:PointMass-v0", "gym:PointMass-v0")
    assert _same_task("gym:PointMass-v0", "gym:other:PointMass-v0") and _same_task("dmc:cheetah-run", "dmc:cheetah-run")
    assert not _same_task("gym:pointmass:PointMass-v0", "gym:PointMass-v1")
    assert not _same_task("gym:pointmass:PointMass-v0", "gym:othermod:PointMass-v0")  # (two modules: two envs)
    assert not _same_task("dmc:cheetah-run", "gym:cheetah-run") and not _same_task("dmc:walker-walk", "dmc:walker-run")
