"""A user's own Gymnasium environment, from a module of its own, through the CLI: `gym:<module>:<id>`."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.spaces import Box, Dict, Discrete

from smiling.envs import make_env, module_tasks, validate_task_id
from smiling.runs import read_metrics

MODULE = (Path(__file__).resolve().parents[1] / "examples" / "point_env.py").read_text()
TASK = "gym:user_point_env:Point-v0"  # the example under another name: never imported before
TINY = ["--horizon", "50", "--seed-steps", "50", "--update-every", "10", "--eval-every", "100",
        "--eval-episodes", "1", "--checkpoint-every", "100", "--sac.hidden-dims", "32", "32", "--sac.batch-size", "32",
        "--quiet"]


@pytest.fixture(autouse=True)
def _forget_user_modules():
    """The user modules a test imports in this process, and the Gymnasium ids they register, are dropped after it:
    a later test must not find ``Point-v0`` registered."""
    ids, modules = set(gymnasium.registry), set(sys.modules)
    yield
    for key in set(gymnasium.registry) - ids:
        del gymnasium.registry[key]
    for name in set(sys.modules) - modules:
        if name.startswith(("user_point_env", "broken_env")):
            del sys.modules[name]


@pytest.mark.slow
def test_own_env_module_through_train_expert_demos_imitate_and_a_grid(smiling_cmd, smiling_main, tmp_path,
                                                                     monkeypatch):
    (tmp_path / "user_point_env.py").write_text(MODULE)
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))
    # from the module's folder, as a user would: the console script finds the module there
    r = subprocess.run([*smiling_cmd, "train-expert", "--task", TASK, "--steps", "100", "--out", "expert", *TINY],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    # the rest in this process, from the same folder (its sys.path gains the folder: undone after the test)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def run(*args):
        r = smiling_main(*args)
        assert r.returncode == 0, r.stderr[-2000:]
        return r

    run("demos", "--expert", "expert", "--episodes", "2", "--out", "demos.npz")
    r = run("imitate", "--task", TASK, "--demos", "demos.npz", "--steps", "100", "--out", "smiling", *TINY,
            "--smiling.expert-steps", "20")
    assert json.loads(r.stdout.strip().splitlines()[-1])["step"] == 100
    assert json.loads((tmp_path / "smiling" / "config.json").read_text())["config"]["task"] == TASK
    assert [int(x["step"]) for x in read_metrics(tmp_path / "smiling")][-1] == 100
    # the grid's worker processes import the module too
    r = run("experiment", "--tasks", TASK, "--algos", "dac", "--seeds", "0-1", "--steps", "100", "--out", "grid",
            "--workers", "2", "--quiet", "--demos", f"{TASK}=demos.npz", "--set", "horizon=50", "seed_steps=50",
            "update_every=10", "eval_every=100", "eval_episodes=1", "sac.hidden_dims=32,32", "sac.batch_size=32",
            "dac.width=32", "dac.steps=10")
    assert "runs: 2 trained" in r.stdout and f"| {TASK} | dac | 2 | 100 |" in r.stdout


def test_own_env_errors_name_the_module_or_the_id(smiling_main, tmp_path, monkeypatch):
    (tmp_path / "user_point_env2.py").write_text(MODULE.replace("Point-v0", "Point2-v0"))
    (tmp_path / "broken_env.py").write_text("raise RuntimeError('oops')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the module's folder is added to it: undone after the test
    cases = [("gym:no_such_module_xyz:Point-v0", "importing module 'no_such_module_xyz' failed"),
             ("gym:broken_env:Point-v0", "importing module 'broken_env' failed: RuntimeError: oops"),
             ("gym:user_point_env2:Nope-v0", "registers no Gymnasium id 'Nope-v0' (it registers Point2-v0)"),
             ("gym:Point-v0", "'gym:<module>:<id>'")]
    for task, message in cases:
        with pytest.raises(ValueError) as e:
            validate_task_id(task)
        assert message in str(e.value)
    assert validate_task_id("gym:user_point_env2:Point2-v0") == "gym:user_point_env2:Point2-v0"
    with warnings.catch_warnings(record=True) as caught:  # (asked for rgb frames it does not list, Gymnasium warned)
        warnings.simplefilter("always")
        assert make_env("gym:user_point_env2:Point2-v0", horizon=5).observation_space.shape == (2,)
    assert not [w for w in caught if "render_mode" in str(w.message)]
    # `smiling tasks --module` lists a module's ids in the form a task takes (it listed every registered id)
    assert module_tasks("user_point_env2") == ["gym:user_point_env2:Point2-v0"]
    with pytest.raises(ValueError, match="gym:broken_env: importing module 'broken_env' failed"):
        module_tasks("broken_env")
    (tmp_path / "user_point.py").write_text("")  # (a prefix of user_point_env2: it claimed that module's ids)
    with pytest.raises(ValueError, match="module 'user_point' registers no Gymnasium id"):
        module_tasks("user_point")
    r = smiling_main("tasks", "--module", "user_point_env2")
    assert r.returncode == 0 and r.stdout.split() == ["gym:user_point_env2:Point2-v0"]
    # on the command line: one line on stderr, exit code 2, no traceback and no usage box
    r = smiling_main("train-expert", "--task", cases[2][0], "--steps", "10", "--quiet")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("smiling: error: gym:user_point_env2")
    assert cases[2][1] in r.stderr and "Traceback" not in r.stderr and "╭" not in r.stderr


class Misbehaving(gymnasium.Env):
    """A user's env that breaks the contract in one way (``mode``) from its third step on, or never (``""``)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, mode: str = "", render_mode=None):
        self.mode = mode
        self.observation_space = {"dict-discrete": Dict({"a": Box(-1, 1, (2,)), "b": Discrete(3)}),
                                  "dict-size": Dict({"a": Box(-1, 1, (2,)), "b": Box(-1, 1, (1,))}),
                                  "image": Box(0, 255, (4, 4, 3), np.uint8)}.get(mode, Box(-1, 1, (2,)))
        self.action_space = Box(0, 5, (2, 2)) if mode == "box-2x2" else Box(-1, 1, (2,))
        self.received, self.resets, self.t = [], 0, 0

    def obs(self):
        late = self.t >= 3
        if self.mode == "image":
            return np.zeros((4, 4, 3), np.uint8)
        if self.mode == "dict-size":
            return {"a": np.zeros(2, np.float32), "b": np.zeros(3 if late else 1, np.float32)}
        return {"nan-obs": np.array([np.nan, 0], np.float32), "wrong-size": np.zeros(3, np.float32)
                }.get(self.mode if late else "", np.zeros(2, np.float32))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.resets = 0, self.resets + 1
        return self.obs(), {}

    def step(self, action):
        self.received.append(np.array(action))
        self.t += 1
        reward = {"nan-reward": np.nan, "array-reward": np.zeros(2)}.get(self.mode if self.t >= 3 else "", 1.0)
        ended = self.mode == "ragged" and self.t >= 2 + self.resets % 2  # episodes of 3, 2, 3, ... steps
        out = (self.obs(), reward, ended, False, {})
        return out[:4] if self.mode == "four-values" and self.t >= 3 else out


def misbehaving(mode: str, **kw):
    env_id = f"Misbehaving{mode.title().replace('-', '')}-v0"
    gymnasium.register(env_id, entry_point=Misbehaving, kwargs={"mode": mode})
    return make_env(f"gym:{env_id}", **kw)


@pytest.mark.parametrize("mode,message", [
    ("nan-obs", r"step\(\) returned an observation with NaN or inf \(1 of 2 values\) at episode step 3"),
    ("wrong-size", r"step\(\) returned an observation of 3 values at episode step 3; its observation space has 2"),
    ("dict-size", r"observation key 'b' has 3 values; its space has 1"),
    ("nan-reward", r"step\(\) returned the reward nan at episode step 3: a reward must be a finite scalar"),
    ("array-reward", r"step\(\) returned the reward array\(\[0\., 0\.\]\) at episode step 3"),
    ("four-values", r"the env's step\(\) failed: .*values"),
])
def test_a_user_env_that_breaks_the_contract_is_named_at_the_step_it_does(mode, message):
    """They reached the networks as a shape error (a flax traceback), NaN losses blamed on the action or on no
    one, or (imitation) a run that ended with exit 0 and NaN returns."""
    env = misbehaving(mode, horizon=10)
    env.reset(seed=0)
    for _ in range(2):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=rf"^gym:Misbehaving\w+-v0: {message}"):
        env.step(np.zeros(2, np.float32))


def test_user_env_spaces_a_box_action_of_any_shape_and_episodes_that_end_early():
    with pytest.raises(ValueError, match=r"observation key 'b' is Discrete\(3\); only Box spaces"):
        misbehaving("dict-discrete")
    env = misbehaving("box-2x2", horizon=10)  # a (2, 2) Box in [0, 5]: a flat [-1, 1]^4 action, given back shaped
    assert env.action_space.shape == (4,)
    env.reset(seed=0)
    env.step(np.array([-1, 1, 0, 1], np.float32))
    received = env.unwrapped._env.unwrapped.received[-1]
    assert received.shape == (2, 2) and received.tolist() == [[0.0, 5.0], [2.5, 5.0]]
    from smiling.acting import evaluate
    from smiling.envs.rollout import rollout

    class Still:  # an agent: the zero action
        def act_deterministic(self, params, obs):
            return np.zeros(2, np.float32)

        def begin_episode(self, evaluation=False):
            pass

    ragged = misbehaving("ragged", horizon=10, keep_termination=True)  # (evaluating it was a numpy stacking error)
    assert evaluate(Still(), None, ragged, 3, (0,)).tolist() == [3.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"episodes of different lengths \[2, 3\]"):
        rollout(ragged, lambda obs: np.zeros(2, np.float32), 3, (0,))


def test_user_env_warnings_for_episodes_held_to_the_horizon_and_for_image_observations(recwarn):
    env = misbehaving("ragged", horizon=10)  # its episodes end after 2-3 steps; the default holds them to 10
    for _ in range(2):
        env.reset(seed=0)
        for _ in range(10):
            env.step(np.zeros(2, np.float32))
    held = [str(w.message) for w in recwarn if "holds the last state" in str(w.message)]
    assert len(held) == 1 and "ended an episode at step 3 of 10" in held[0], held  # said once
    recwarn.clear()
    ended = misbehaving("ragged", horizon=10, keep_termination=True)
    ended.reset(seed=0)
    while not ended.step(np.zeros(2, np.float32))[2]:
        pass
    assert not [w for w in recwarn if "holds the last state" in str(w.message)]
    with pytest.warns(UserWarning, match=r"an image observation \(Box\(0, 255, \(4, 4, 3\), uint8\)\) is fed"):
        assert misbehaving("image").observation_space.shape == (48,)
