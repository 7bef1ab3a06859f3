"""The reference-code switches of SMILING's reward model and the `paper` / `paper-sac` presets (CLI and grid)."""

import dataclasses
import json
import re

import jax
import numpy as np
import pytest

from smiling.algos import TrainConfig, train
from smiling.algos.presets import PRESET_FIELDS, apply_preset, matches
from smiling.cli import _config_of, parse_args
from smiling.diffusion.model import denoising_errors, noise_levels
from smiling.diffusion.network import ScoreNet
from smiling.diffusion.schedules import Schedule
from smiling.algos.registry import run_label
from smiling.experiments.grid import expand
from smiling.rewards import SmilingConfig, SmilingReward
from smiling.rewards.base import Fifo, Reservoir
from smiling.runs import Checkpoints, read_metrics

from conftest import TINY_CLI, comparable, crash_after_row
from test_imitate import TINY_SMILING, tiny_imitation


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))


def value(cfg, dotted):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def test_presets_set_their_fields_and_flags_given_beside_them_win():
    a = parse_args(["imitate", "--preset", "paper", "paper-sac", "--relabel", "update",
                    "--smiling.num-levels", "64", "--sac.batch-size", "512"])
    cfg = _config_of(a)
    for name in ("paper", "paper-sac"):
        for key, want in PRESET_FIELDS[name].items():
            if key not in ("smiling.num_levels", "sac.batch_size"):
                assert value(cfg, key) == want, key
    assert cfg.relabel == "update" and cfg.smiling.num_levels == 64 and cfg.sac.batch_size == 512
    assert cfg.smiling.score.schedule == Schedule("ddpm", 5000)
    assert _config_of(parse_args(["imitate", "--preset=paper"])) == apply_preset(TrainConfig(algo="smiling"), "paper")
    assert not matches(TrainConfig(), "paper") and not matches(TrainConfig(), "paper-sac")
    with pytest.raises(ValueError, match="unknown preset 'papr'; presets: paper, paper-sac"):
        parse_args(["imitate", "--preset", "papr"])


def test_the_schedule_shortcut_sets_the_kind_alone():
    """``--schedule`` beside the paper preset keeps its T = 5000 (it replaced the whole schedule: T = 1000)."""
    cfg = _config_of(parse_args(["imitate", "--preset", "paper", "--schedule", "cosine", "--num-noise-samples", "8"]))
    assert cfg.smiling.score.schedule == Schedule("cosine", 5000) and cfg.smiling.num_levels == 8
    cfg = _config_of(parse_args(["imitate", "--smiling.score.schedule.steps", "200", "--schedule", "ddpm"]))
    assert cfg.smiling.score.schedule == Schedule("ddpm", 200)
    with pytest.raises(ValueError, match="unknown noise schedule 'cosin'"):
        _config_of(parse_args(["imitate", "--schedule", "cosin"]))


def test_grid_variants_apply_presets_before_overrides(tmp_path):
    task = "dmc:ball_in_cup-catch"
    specs = expand(tmp_path, [task], ["smiling", "smiling+paper", "smiling+paper+paper-sac", "dac+paper-sac"], [0],
                   100, {"relabel": "update", "smiling.expert_steps": "100"})
    assert [s.label for s in specs] == ["smiling", "smiling+paper", "smiling+paper+paper-sac", "dac+paper-sac"]
    paper = specs[1].config
    for key, want in PRESET_FIELDS["paper"].items():
        assert value(paper, key) == (100 if key == "smiling.expert_steps" else want), key
    assert paper.relabel == "update" and specs[0].config.relabel == "update"
    assert not matches(paper, "paper-sac") and matches(specs[2].config, "paper-sac")
    assert specs[3].config.sac.hidden_dims == (1024, 1024)
    # the paper's normalization alone, on our defaults otherwise, is a variant of its own
    cfg = TrainConfig(algo="smiling", smiling=SmilingConfig(normalization="batch"))
    assert run_label(cfg) == "smiling+batch"
    with pytest.raises(ValueError, match="applies to smiling only"):
        expand(tmp_path, [task], ["dac+paper"], [0], 100)


def test_fifo_keeps_the_newest_rows_and_round_trips():
    f = Fifo(1, 5)
    f.add(np.arange(3.0))
    f.add(np.arange(3.0, 7.0))
    assert sorted(f.sample()[:, 0]) == [2, 3, 4, 5, 6] and f.seen == 7
    f.add(np.arange(7.0, 20.0))  # more rows than it holds at once
    assert sorted(f.sample()[:, 0]) == [15, 16, 17, 18, 19] and f.seen == 20
    g = Fifo(1, 5)
    g.load_state_dict(f.state_dict())
    f.add([[20.0]])
    g.add([[20.0]])
    assert np.array_equal(f.sample(), g.sample()) and sorted(g.sample()[:, 0]) == [16, 17, 18, 19, 20]
    with pytest.raises(ValueError, match="capacity 5"):
        Fifo(1, 6).load_state_dict(f.state_dict())
    for memory in (Fifo(2, 5), Reservoir(2, 5)):  # features of another width were cut into rows and kept
        memory.add(np.ones(2))
        for wrong in (np.ones((4, 3)), np.ones(4), np.ones((1, 2, 2))):
            with pytest.raises(ValueError, match=r"must be shaped \(n, 2\), got shape " + re.escape(str(wrong.shape))):
                memory.add(wrong)
        assert memory.size == 1


def test_even_levels_are_the_same_midpoints_for_every_state():
    u = np.asarray(noise_levels(jax.random.PRNGKey(0), 3, 4, "even"))
    assert np.allclose(u, [[0.125, 0.375, 0.625, 0.875]] * 3)
    with pytest.raises(ValueError, match="placement"):
        noise_levels(jax.random.PRNGKey(0), 3, 4, "random")


def test_capped_errors_never_exceed_the_zero_predictors():
    net = ScoreNet(3, width=16)
    params = net.init(jax.random.PRNGKey(0), np.zeros((1, 3)), np.zeros((1,)))
    wild = jax.tree_util.tree_map(lambda p: p * 50.0, params)  # a network far worse than predicting 0
    zero = jax.tree_util.tree_map(np.zeros_like, params)       # the zero predictor itself: error ||eps||^2
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    args = (net, Schedule("cosine"), wild, zero, x, jax.random.PRNGKey(1), 8)
    raw_a, eps_sq = (np.asarray(e) for e in denoising_errors(*args))
    cap_a, cap_zero = (np.asarray(e) for e in denoising_errors(*args, cap=True))
    assert np.array_equal(cap_zero, eps_sq)                   # the zero predictor sits exactly at the cap
    assert np.allclose(cap_a, np.minimum(raw_a, eps_sq))      # each sample's error is min(error, ||eps||^2)
    assert (raw_a > cap_a + 1e-3).mean() > 0.9 and raw_a.mean() > 30 * cap_a.mean()
    assert abs(eps_sq.mean() - 3) < 0.5                       # so the capped term averages at most d


def test_reference_switches_in_the_reward_model():
    rng = np.random.default_rng(0)
    expert = (rng.normal(size=(500, 2)) * [10.0, 0.1] + [50.0, 0.0]).astype(np.float32)
    raw = SmilingReward(expert, SmilingConfig(**{**TINY_SMILING.__dict__, "standardize": False,
                                                 "score_state": "current", "normalization": "batch"}))
    assert np.allclose(raw.expert.mean, 0) and np.allclose(raw.expert.std, 1)
    obs, nxt = expert[:4], expert[4:8]
    assert np.array_equal(raw.features(obs, None, nxt), obs)
    assert np.array_equal(SmilingReward(expert, TINY_SMILING).features(obs, None, nxt), nxt)
    m = raw.update(expert[:300])
    assert "cost_mean" not in m and raw.norm == (0.0, 1.0)  # batch normalization keeps no statistics
    r = raw.reward(expert[:64], None, expert[:64]).reshape(2, 32)
    z = raw.normalize_batch(r)
    assert np.allclose(z.mean(axis=1), 0, atol=1e-6) and np.allclose(z.std(axis=1), 0.1, atol=1e-4)
    assert np.array_equal(np.argsort(z[0]), np.argsort(r[0]))  # each batch keeps its order
    same = SmilingReward(expert, TINY_SMILING)
    assert same.normalize_batch(r) is r


def test_reference_switches_resume_exactly(tmp_path, monkeypatch):
    sm = SmilingConfig(**{**TINY_SMILING.__dict__, "standardize": False, "levels": "even",
                          "score_state": "current", "normalization": "batch", "memory_kind": "fifo",
                          "memory": 120, "cap_errors": True})
    cfg = dataclasses.replace(tiny_imitation(steps=200, relabel="update"), smiling=sm)
    train(cfg, tmp_path / "full", quiet=True)
    crash_after_row(cfg, tmp_path / "cut", monkeypatch, 150)
    train(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert comparable(read_metrics(tmp_path / "cut")) == comparable(read_metrics(tmp_path / "full"))
    a = (Checkpoints(tmp_path / "full").latest() / "agent.msgpack").read_bytes()
    assert a == (Checkpoints(tmp_path / "cut").latest() / "agent.msgpack").read_bytes()


@pytest.mark.slow
def test_paper_preset_runs_from_the_cli(smiling_main, tmp_path, monkeypatch):
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "paper"
    r = smiling_main("imitate", "--preset", "paper", "--relabel", "update", "--task", "dmc:ball_in_cup-catch",
                     "--steps", "300", "--out", out, "--smiling.expert-steps", "50", "--reward-update-every", "100",
                     *TINY_CLI)
    assert r.returncode == 0, r.stderr
    saved = json.loads((out / "config.json").read_text())["config"]
    for key, want in PRESET_FIELDS["paper"].items():
        got = saved
        for part in key.split("."):
            got = got[part]
        if key == "smiling.score.schedule":
            want = {"kind": "ddpm", "steps": 5000, "beta_min": 1e-4, "beta_max": 0.02, "t_max": 5.0}
        assert got == {"smiling.expert_steps": 50, "reward_update_every": 100}.get(key, want), key
    assert saved["relabel"] == "update"
    rows = read_metrics(out)
    assert any(r["score_loss_learner"] != "" for r in rows)  # the reward model was updated
    assert np.isfinite(float(rows[-1]["critic_loss"]))           # and SAC trained on its per-batch rewards
    # (the same preset as a grid variant: test_grid_variants_apply_presets_before_overrides)
    r = smiling_main("imitate", "--preset", "paper,nope", "--steps", "10")
    assert r.returncode == 2 and "unknown preset 'nope'" in r.stderr and "Traceback" not in r.stderr
