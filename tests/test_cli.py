import ctypes.util
import json
import os
import signal
import subprocess
import time

import pytest

from smiling.runs import read_metrics

from conftest import TINY_CLI, comparable


def run(cmd, *args, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def test_tasks(smiling_main):
    r = smiling_main("tasks")
    assert r.returncode == 0
    lines = r.stdout.split()
    assert "dmc:cheetah-run" in lines and "gym:Hopper-v5" in lines
    r = smiling_main("tasks", "--prefix", "dmc")
    assert r.returncode == 0 and all(x.startswith("dmc:") for x in r.stdout.split())


@pytest.mark.slow
def test_train_evaluate_plot(smiling_main, tmp_path):
    out = tmp_path / "run"
    r = smiling_main("train-expert", "--task", "dmc:ball_in_cup-catch", "--steps", "100", "--seed", "3",
            "--out", str(out), "--tensorboard", *TINY_CLI, "--checkpoint-every", "50", "--keep-policies")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["step"] == 100
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == 3
    assert any((out / "tb").iterdir())

    r = smiling_main("evaluate", out, "--episodes", "2", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["episodes"] == 2 and len(res["returns"]) == 2 and res["task"] == "dmc:ball_in_cup-catch"
    assert res["checkpoint_step"] == 100

    # --keep-policies kept the 50-step policy (not its buffer): it can be evaluated on its own
    kept = out / "checkpoints" / "step-000000050"
    assert sorted(f.name for f in kept.iterdir()) == ["agent.msgpack", "loop.json", "policy-kept"]
    r = smiling_main("evaluate", out, "--episodes", "1", "--json", "--checkpoint", "50")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["checkpoint_step"] == 50
    r = smiling_main("evaluate", out, "--checkpoint", "70")
    assert r.returncode == 2 and "no checkpoint at step 70 (checkpoints on disk: 50, 100;" in r.stderr

    r = smiling_main("plot", out, "--out", tmp_path / "c.png")
    assert r.returncode == 0 and (tmp_path / "c.png").stat().st_size > 1000
    # a file given for its run directory, a config.json that is JSON but no run's, --extend-to 0: one line each
    # (were "[Errno 17] File exists", an AttributeError traceback, "steps must be >= 1" naming no flag)
    r = smiling_main("plot", out / "metrics.csv")
    assert r.returncode == 2 and "metrics.csv: a file; give the run (or experiment) directory" in r.stderr
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "metrics.csv").write_bytes((out / "metrics.csv").read_bytes())
    (odd / "config.json").write_text("[1, 2]")
    r = smiling_main("plot", odd)
    assert r.returncode == 2 and "config.json: not a run's config" in r.stderr and "Traceback" not in r.stderr
    r = smiling_main("train-expert", "--resume", out, "--extend-to", "0")
    assert r.returncode == 2 and "--extend-to must be >= 1" in r.stderr

    # rerunning into the same directory without --resume must not clobber it
    r = smiling_main("train-expert", "--steps", "100", "--out", out, *TINY_CLI)
    assert r.returncode == 2 and "--resume" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_video_or_clear_gl_error(smiling_cmd, smiling_main, tmp_path):
    """`evaluate --video` writes a video where an OpenGL backend loads; otherwise, and when MUJOCO_GL names a
    backend that is not installed, it fails with a message that names it and writes nothing. (The evaluations run
    in their own processes: MUJOCO_GL is read when dm_control is first imported.)"""
    out = tmp_path / "run"
    assert smiling_main("train-expert", "--steps", "50", "--out", out, *TINY_CLI).returncode == 0
    video = tmp_path / "ep.mp4"
    r = run(smiling_cmd, "evaluate", str(out), "--episodes", "1", "--video", str(video))
    if ctypes.util.find_library("EGL") or ctypes.util.find_library("OSMesa"):
        assert r.returncode == 0, r.stderr
        assert video.stat().st_size > 1000
        assert "video:" in r.stdout
    else:
        assert r.returncode == 2 and "OpenGL backend" in r.stderr
    if ctypes.util.find_library("OSMesa"):
        return  # OSMesa is installed here: no missing backend to name
    r = run(smiling_cmd, "evaluate", str(out), "--episodes", "1", "--video", str(tmp_path / "v.mp4"),
            env={"MUJOCO_GL": "osmesa"})
    assert r.returncode == 2
    assert "OpenGL backend" in r.stderr and "MUJOCO_GL='osmesa'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.slow
def test_sigkill_and_resume_continue_metrics_without_gaps(smiling_cmd, smiling_main, tmp_path):
    """A run killed in its own process (the console script) resumes, here in this process, to the metrics of an
    uninterrupted run."""
    args = ["train-expert", "--task", "dmc:ball_in_cup-catch", "--steps", "400", "--seed", "1", *TINY_CLI]
    full = tmp_path / "full"
    assert smiling_main(*args, "--out", full).returncode == 0

    cut = tmp_path / "cut"
    proc = subprocess.Popen([*smiling_cmd, *args, "--out", str(cut)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    latest = cut / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["step"] >= 200:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; the test needs a longer run"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = [int(r["step"]) for r in read_metrics(cut)]
    assert before[-1] < 400

    r = smiling_main("train-expert", "--resume", cut, "--quiet")
    assert r.returncode == 0, r.stderr
    steps = [int(r["step"]) for r in read_metrics(cut)]
    assert steps == list(range(0, 401, 50))  # every episode once: no gap, no duplicate
    assert comparable(read_metrics(cut)) == comparable(read_metrics(full))


@pytest.mark.parametrize("args,message", [
    (["train-expert", "--task", "dmc:cheetah-sprint", "--steps", "10"], "unknown task id 'dmc:cheetah-sprint'"),
    (["train-expert", "--steps", "0"], "steps must be >= 1"),
    (["train-expert", "--steps", "ten"], "--steps: invalid literal for int()"),
    (["evaluate", "/nonexistent/run"], "run directory not found"),
    (["train-expert", "--resume", "/nonexistent/run"], "config.json"),
    (["experiment", "--workers", "0"], "workers must be >= 1"),
    (["experiment", "--executor", "slurm"], "unknown executor 'slurm'; choose local or ray"),
    (["experiment", "--seeds", "3-1"], "range '3-1' runs backwards"),
    (["experiment", "--tasks", "dmc:nope"], "unknown task id 'dmc:nope'"),
    (["imitate", "--algo", "sac", "--steps", "10"], "--algo sac learns from the true reward"),
])
def test_bad_inputs_give_one_line_errors(smiling_main, args, message, tmp_path):
    if args[0] == "experiment":  # a grid refused before anything is written
        grid = ["--tasks", "dmc:ball_in_cup-catch", "--algos", "smiling", "--out", str(tmp_path / "exp")]
        r = smiling_main("experiment", *grid, *args[1:])
        assert not (tmp_path / "exp").exists()
    else:
        r = smiling_main(*args, "--quiet") if args[0] == "train-expert" else smiling_main(*args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_evaluate_needs_a_checkpoint(smiling_main, tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text("{broken")
    r = smiling_main("evaluate", d)
    assert r.returncode == 2 and "not valid JSON" in r.stderr


@pytest.mark.parametrize("algo,rl,name", [
    ("sac", "sac", "sac"), ("smiling", "sac", "smiling"), ("sac", "dreamer", "sac-dreamer"),
    ("smiling", "dreamer", "smiling-dreamer"),
])
def test_default_run_dir_is_named_by_the_run_label(algo, rl, name):
    from smiling.algos import TrainConfig
    from smiling.api import default_run_dir

    out = default_run_dir(TrainConfig(task="dmc:cheetah-run", algo=algo, rl=rl, seed=3))
    assert out.startswith(f"runs/dmc-cheetah-run-{name}-s3-"), out