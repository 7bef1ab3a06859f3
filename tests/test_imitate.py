"""The imitation loop (algo=smiling): smoke, exact resume with a reward model, relabelling, bad inputs."""

import dataclasses
import json

import numpy as np

import pytest

import smiling.algos.offpolicy as loop_mod
from smiling.algos import train
from smiling.data import DemoError
from smiling.diffusion import Schedule, ScoreConfig
from smiling.rewards import SmilingConfig
from smiling.runs import Checkpoints, read_metrics

from conftest import TINY_CLI, comparable, crash_after_row, tiny_config

TINY_SMILING = SmilingConfig(score=ScoreConfig(schedule=Schedule("cosine", 100), width=32, batch_size=128),
                             num_levels=8, expert_steps=200, learner_steps=20, memory=1000, probe=256)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))


def tiny_imitation(**kw):
    return tiny_config(algo="smiling", reward_update_every=50, smiling=TINY_SMILING, **kw)


def test_imitation_run_logs_reward_model_metrics_and_checkpoints_it(tmp_path):
    train(tiny_imitation(steps=100), tmp_path / "r", quiet=True)
    rows = read_metrics(tmp_path / "r")
    assert all(rows[i][c] != "" for i in (1, 2) for c in ("cost_mean", "cost_std", "score_loss_learner"))
    assert rows[-1]["eval_return"] != ""  # the true return is reported
    names = {p.name for p in Checkpoints(tmp_path / "r").latest().iterdir()}
    # the reward model's own files; what the loop keeps (the buffer) is not under its prefix
    assert {n for n in names if n.startswith("reward-")} == {"reward-learner_score.msgpack", "reward-memory.npz",
                                                            "reward-state.json", "reward-made_from.txt"}
    assert json.loads((tmp_path / "r" / "config.json").read_text())["algo"] == "smiling"


@pytest.mark.parametrize("relabel", ["sample", "update"])
def test_interrupted_imitation_resumes_exactly(tmp_path, monkeypatch, relabel):
    cfg = tiny_imitation(steps=200, relabel=relabel)
    train(cfg, tmp_path / "full", quiet=True)
    crash_after_row(cfg, tmp_path / "cut", monkeypatch, 150)
    # resumed with other checkpoints (RESUMABLE_CHANGES): what it learns must not change
    later = dataclasses.replace(cfg, checkpoint_every=50, keep_policies=True)
    train(later, tmp_path / "cut", resume=True, quiet=True)
    assert comparable(read_metrics(tmp_path / "cut")) == comparable(read_metrics(tmp_path / "full"))
    a = (Checkpoints(tmp_path / "full").latest() / "agent.msgpack").read_bytes()
    b = (Checkpoints(tmp_path / "cut").latest() / "agent.msgpack").read_bytes()
    assert a == b
    assert Checkpoints(tmp_path / "cut", keep_policies=True).steps() == [100, 150, 200]
    saved = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert saved["config"]["checkpoint_every"] == 50 and saved["config"]["keep_policies"] is True
    assert "resumed_at" not in saved  # the same code: nothing to record
    assert saved["resumed_with"] == [{"field": "checkpoint_every", "from": 100, "to": 50, "step": 100},
                                     {"field": "keep_policies", "from": False, "to": True, "step": 100}]


def test_sac_updates_use_relabelled_rewards(tmp_path, monkeypatch):
    seen = []
    original = loop_mod.ReplayBuffer.sample

    def spy(self, rng, batch_size, num_batches=1, reward_fn=None):
        seen.append(reward_fn)
        return original(self, rng, batch_size, num_batches, reward_fn)

    monkeypatch.setattr(loop_mod.ReplayBuffer, "sample", spy)
    train(tiny_imitation(steps=100), tmp_path / "im", quiet=True)
    assert seen and all(fn is not None and fn.__self__.__class__.__name__ == "SmilingReward" for fn in seen)
    seen.clear()
    train(tiny_config(steps=100), tmp_path / "sac", quiet=True)
    assert seen and all(fn is None for fn in seen)


def test_cached_relabelling_trains_on_the_reward_model(tmp_path, monkeypatch):
    from smiling.rl import RewardCache

    batches = []
    original = RewardCache.sample

    def spy(self, rng, batch_size, num_batches, reward_fn):
        b = original(self, rng, batch_size, num_batches, reward_fn)
        batches.append(b["reward"])
        return b

    monkeypatch.setattr(RewardCache, "sample", spy)
    train(tiny_imitation(steps=100, relabel="update"), tmp_path / "im", quiet=True)
    assert batches and all(np.all(np.isfinite(r)) and r.std() > 0 for r in batches)
    assert loop_mod.CACHE_FILE in {p.name for p in Checkpoints(tmp_path / "im").latest().iterdir()}


@pytest.mark.slow
def test_state_action_imitation_needs_actions(tmp_path):
    from smiling.data import load_demos, save_npz

    state_only = load_demos("dmc:ball_in_cup-catch").without_actions()
    save_npz(state_only, tmp_path / "so.npz")
    with_actions = dataclasses.replace(TINY_SMILING, use_actions=True)
    cfg = dataclasses.replace(tiny_imitation(steps=50, demos=str(tmp_path / "so.npz")), smiling=with_actions)
    with pytest.raises(DemoError, match=r"so\.npz: state-only demonstrations \(no actions\); smiling\+actions needs"):
        train(cfg, tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()  # refused before the run directory was made
    with pytest.raises(DemoError, match=r"so\.npz: state-only demonstrations \(no actions\); bc needs"):
        train(dataclasses.replace(cfg, algo="bc"), tmp_path / "bc" / "r", quiet=True)
    assert not (tmp_path / "bc").exists()
    train(dataclasses.replace(tiny_imitation(steps=50), smiling=with_actions), tmp_path / "ok", quiet=True)


def test_resume_refuses_demos_changed_since_the_run_started(tmp_path):
    from smiling.data import load_demos, save_npz

    demos = load_demos("dmc:ball_in_cup-catch")
    save_npz(demos.select([0, 1]), tmp_path / "d.npz")
    cfg = tiny_imitation(steps=200, demos=str(tmp_path / "d.npz"))
    train(dataclasses.replace(cfg, steps=100), tmp_path / "r", quiet=True)
    save_npz(demos.select([2, 3]), tmp_path / "d.npz")  # the same path, other episodes
    before = (tmp_path / "r" / "config.json").read_text()
    with pytest.raises(ValueError, match="made from other demonstrations than the run's config names now"):
        train(cfg, tmp_path / "r", resume=True, quiet=True)
    assert (tmp_path / "r" / "config.json").read_text() == before  # refused before anything changed
    save_npz(demos.select([0, 1]), tmp_path / "d.npz")  # put back: it resumes
    train(cfg, tmp_path / "r", resume=True, quiet=True)
    assert read_metrics(tmp_path / "r")[-1]["step"] == "200"


def test_demos_of_another_task_are_refused(tmp_path):
    with pytest.raises(DemoError, match="not 'dmc:cheetah-run'"):
        train(tiny_imitation(task="dmc:cheetah-run", steps=50, demos="dmc:ball_in_cup-catch"), tmp_path / "r",
              quiet=True)


@pytest.mark.slow
def test_imitate_cli(smiling_main, tmp_path, monkeypatch):
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))
    r = smiling_main("imitate", "--task", "dmc:ball_in_cup-catch", "--steps", "100", "--out", tmp_path / "im",
                     "--reward-update-every", "50", "--num-noise-samples", "8", "--schedule", "cosine",
                     "--smiling.expert-steps", "200", "--smiling.learner-steps", "20", "--smiling.score.width", "32",
                     *TINY_CLI)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "im" / "config.json").read_text())["config"]
    assert cfg["algo"] == "smiling" and cfg["smiling"]["num_levels"] == 8
    assert cfg["smiling"]["score"]["schedule"]["kind"] == "cosine"
    r = smiling_main("imitate", "--algo", "sac", "--steps", "10", "--quiet")
    assert r.returncode == 2 and "train-expert" in r.stderr
    r = smiling_main("imitate", "--schedule", "linear9", "--steps", "10", "--quiet")
    assert r.returncode == 2 and "'linear9'" in r.stderr and "Traceback" not in r.stderr


def test_metrics_header_is_migrated_when_columns_grow(tmp_path):
    from smiling.runs import MetricsLogger

    (tmp_path / "metrics.csv").write_text("step,episode\r\n0,0\r\n")
    log = MetricsLogger(tmp_path, ["step", "episode", "cost_mean"])
    log.log({"step": 50, "episode": 1, "cost_mean": 2.5})
    log.close()
    rows = read_metrics(tmp_path)
    assert rows == [{"step": "0", "episode": "0", "cost_mean": ""}, {"step": "50", "episode": "1", "cost_mean": "2.5"}]


@pytest.mark.parametrize("field,value", [("num_levels", 0), ("num_levels", 9000), ("expert_steps", 0),
                                         ("memory", 0), ("reward_std", 0.0)])
def test_bad_smiling_settings_are_refused_on_construction(field, value):
    with pytest.raises(ValueError, match=f"smiling.{field}"):
        dataclasses.replace(TINY_SMILING, **{field: value})
