import atexit
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

# Compiling, not running, is most of the suite's time: its networks are tiny. XLA's CPU backend at LLVM
# optimization level 0 compiles much faster (measured in docs/benchmarks.md, `make test` rows); the tests compare
# runs made under the same flags, never against numbers computed under others. Set before JAX starts its backend
# and inherited by the CLI subprocesses; a user's own XLA_FLAGS that set the level are left alone.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

from smiling.algos import TrainConfig  # noqa: E402
from smiling.rl import SACConfig
from smiling.utils.cache import enable_compilation_cache

# One persistent XLA compilation cache for the whole session (this process, the pytest-xdist workers and the
# CLI subprocesses): many tests compile the same small networks. A fresh folder per session, so no state leaks
# between sessions; the process that made it (the xdist controller, or the only process) removes it at exit.
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("SMILING_TEST_JAX_CACHE"):
    os.environ["SMILING_JAX_CACHE"] = os.environ["SMILING_TEST_JAX_CACHE"]
else:
    _JAX_CACHE = tempfile.mkdtemp(prefix="smiling-test-jax-")
    os.environ["SMILING_TEST_JAX_CACHE"] = os.environ["SMILING_JAX_CACHE"] = _JAX_CACHE
    atexit.register(shutil.rmtree, _JAX_CACHE, ignore_errors=True)
enable_compilation_cache()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run first (otherwise in file order): with ``make test``'s two xdist workers, a long
    test left to the end would keep one worker busy while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

@contextlib.contextmanager
def sigterm_fails_the_test():
    """A SIGTERM that reaches no handler of the loop fails the test instead of ending pytest; yields the handler."""
    def fail(*_):
        raise AssertionError("SIGTERM reached the test's handler, not the training loop's")

    before = signal.signal(signal.SIGTERM, fail)
    try:
        yield fail
    finally:
        signal.signal(signal.SIGTERM, before)


# Tiny settings that exercise every code path in seconds.
TINY_SAC = SACConfig(hidden_dims=(32, 32), batch_size=32)
TINY_CLI = ["--horizon", "50", "--seed-steps", "50", "--update-every", "10", "--eval-every", "100",
            "--eval-episodes", "1", "--checkpoint-every", "100", "--sac.hidden-dims", "32", "32",
            "--sac.batch-size", "32", "--quiet"]


def tiny_config(**kw) -> TrainConfig:
    base = dict(task="dmc:ball_in_cup-catch", steps=200, seed=0, horizon=50, seed_steps=50, update_every=10,
                eval_every=100, eval_episodes=1, checkpoint_every=100, sac=TINY_SAC)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def smiling_cmd():
    """The CLI as a subprocess command prefix (the console script in the same environment)."""
    exe = Path(sys.executable).with_name("smiling")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "smiling.cli"]


@pytest.fixture
def smiling_main(capsys):
    """The CLI called in this process (`smiling.cli.main`): no subprocess to start (importing JAX and the rest
    costs seconds each time), and agents built alike reuse the jitted functions of earlier tests (`shared_jit`).
    Subprocesses (`smiling_cmd`) stay where a process is killed or must start afresh (MUJOCO_GL). Returns what
    `subprocess.run` would: ``returncode``, ``stdout``, ``stderr``."""
    import subprocess

    from smiling.cli import main

    def call(*args):
        argv = [str(a) for a in args]
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as e:  # argument parsing: usage errors exit 2
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, out, err)

    return call


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")


TIMING_COLUMNS = ("wall_time", "steps_per_sec")


def comparable(rows):
    """Metrics rows without the columns that depend on timing."""
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


class Crash(Exception):
    pass


def crash_after_row(cfg, run_dir, monkeypatch, step: int) -> None:
    """Run ``train(cfg, run_dir)`` and make it crash right after the metrics row of ``step`` is written."""
    import smiling.algos.offpolicy as loop_mod
    from smiling.algos import train

    original = loop_mod.MetricsLogger.log

    def log_then_crash(self, row):
        original(self, row)
        if row["step"] == step:
            raise Crash()

    monkeypatch.setattr(loop_mod.MetricsLogger, "log", log_then_crash)
    with pytest.raises(Crash):
        train(cfg, run_dir, quiet=True)
    monkeypatch.setattr(loop_mod.MetricsLogger, "log", original)


# --- metrics: what updates return reaches metrics.csv -------------------------------------------------------

@pytest.fixture
def returned_metrics(monkeypatch):
    """The keys of every metrics dict an agent's or reward model's ``update`` returns during `train`."""
    import smiling.algos.offpolicy as loop

    returned: set[str] = set()

    def spy(obj, name):
        original = getattr(obj, name)  # bound

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            returned.update((out[1] if isinstance(out, tuple) else out).keys())
            return out

        monkeypatch.setattr(obj, name, wrapper)

    real_train = loop.train

    def train_spying(cfg, run_dir, meta, env, eval_env, agent, reward_model, *rest):
        spy(agent, "update")
        if reward_model is not None:
            spy(reward_model, "update")
        return real_train(cfg, run_dir, meta, env, eval_env, agent, reward_model, *rest)

    monkeypatch.setattr(loop, "train", train_spying)
    return returned


def assert_logged(returned: set[str], run_dir: Path) -> None:
    """Every key in ``returned`` (`returned_metrics`) is a column of RUN_DIR/metrics.csv with a value somewhere."""
    from smiling.runs import read_metrics

    rows = read_metrics(run_dir)
    assert returned, "the spies saw no update"
    assert returned <= set(rows[0]), returned - set(rows[0])
    assert all(any(r[k] != "" for r in rows) for k in returned)
