"""A user's own Gymnasium environment, from a module of its own, through the CLI: `gym:<module>:<id>`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smiling.envs import make_env, validate_task_id
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
    import gymnasium

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
    assert make_env("gym:user_point_env2:Point2-v0", horizon=5).observation_space.shape == (2,)
    # on the command line: one line on stderr, exit code 2, no traceback and no usage box
    r = smiling_main("train-expert", "--task", cases[2][0], "--steps", "10", "--quiet")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("smiling: error: gym:user_point_env2")
    assert cases[2][1] in r.stderr and "Traceback" not in r.stderr and "╭" not in r.stderr
