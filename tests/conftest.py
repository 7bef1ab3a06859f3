import os
import sys
from pathlib import Path

import pytest

from smiling.algos.offpolicy import TrainConfig
from smiling.rl import SACConfig

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


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
