"""Normalized learning curves over seeds."""

import csv
import shutil

import numpy as np
import pytest

from smiling.algos import load_config, run_label
from smiling.experiments import aggregate, first_reach, normalize, plot_curves
from smiling.utils.io import atomic_write_json


def fake_run(path, evals):
    path.mkdir(parents=True)
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "eval_return", "train_return"])
        for step, ret in evals:
            w.writerow([step, ret, ""])
            w.writerow([step + 500, "", 1.0])  # a training row without evaluation
    return path


def test_normalize_maps_random_to_0_and_expert_to_1():
    np.testing.assert_allclose(normalize([100.0, 900.0, 500.0], expert=900.0, random=100.0), [0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="must exceed"):
        normalize([1.0], expert=10.0, random=10.0)


def test_aggregate_uses_the_steps_all_runs_share(tmp_path):
    a = fake_run(tmp_path / "a", [(0, 100), (10, 500), (20, 900)])
    b = fake_run(tmp_path / "b", [(0, 100), (10, 700)])  # still running: no 20
    g = aggregate([a, b], expert=900.0, random=100.0)
    assert g["steps"].tolist() == [0, 10]
    np.testing.assert_allclose(g["mean"], [0.0, 0.625])
    np.testing.assert_allclose(g["std"], [0.0, 0.125])
    assert first_reach(*g["curves"][0], 0.9) == 20 and first_reach(*g["curves"][1], 0.9) is None
    out = plot_curves({"x": g}, tmp_path / "c.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_aggregate_names_a_run_without_evaluations(tmp_path):
    a = fake_run(tmp_path / "a", [])
    with pytest.raises(ValueError, match="no evaluations"):
        aggregate([a], expert=1.0, random=0.0)


def test_collect_counts_each_seed_once(tmp_path):
    """A backup copy beside a run (s0 and s0.bak) was drawn and tabled as a second seed."""
    from smiling.experiments.report import collect
    for name, seed in (("s0", 0), ("s1", 1)):
        fake_run(tmp_path / name, [(0, 100), (10, 500)])
        atomic_write_json(tmp_path / name / "config.json", {"config": {"algo": "dac", "seed": seed}})
    assert [c.run.name for c in collect(tmp_path, "raw")["dmc:ball_in_cup-catch"]["dac"]] == ["s0", "s1"]
    shutil.copytree(tmp_path / "s0", tmp_path / "s0.bak")
    with pytest.raises(ValueError, match=r"s0 and .*s0\.bak are both dmc:ball_in_cup-catch dac seed 0"):
        collect(tmp_path, "raw")
    shutil.rmtree(tmp_path / "s0.bak")


def test_collect_averages_only_runs_of_one_setting_and_says_which_it_left_out(tmp_path, capsys):
    """Runs of one label at other settings (a horizon-50 grid and a paper-budget run) were averaged as seeds of one
    curve; a run with no metrics.csv yet stopped `smiling plot`, and one with no evaluation was dropped unsaid."""
    from smiling.experiments.report import collect
    for name, seed, horizon in (("s0", 0, 1000), ("s1", 1, 1000), ("short", 2, 50)):
        fake_run(tmp_path / name, [(0, 100), (10, 500)])
        atomic_write_json(tmp_path / name / "config.json",
                          {"config": {"algo": "dac", "seed": seed, "horizon": horizon}})
    with pytest.raises(ValueError, match=r"short and .*s0 are both dmc:ball_in_cup-catch dac but differ in horizon"):
        collect(tmp_path, "raw")
    shutil.rmtree(tmp_path / "short")
    fake_run(tmp_path / "empty", [])
    atomic_write_json(tmp_path / "empty" / "config.json", {"config": {"algo": "dac", "seed": 2}})
    (tmp_path / "bare").mkdir()
    atomic_write_json(tmp_path / "bare" / "config.json", {"config": {"algo": "dac", "seed": 3}})
    assert len(collect(tmp_path, "raw")["dmc:ball_in_cup-catch"]["dac"]) == 2
    assert "left out, no evaluation yet:" in capsys.readouterr().err
    # one damaged config.json (cut, or a field of the wrong type) failed the summary of the whole grid
    for name, text in (("cut", '{"config": {"algo": "da'), ("typed", '{"config": {"algo": "dac", "seed": "x"}}')):
        fake_run(tmp_path / name, [(0, 100), (10, 500)])
        (tmp_path / name / "config.json").write_text(text)
    assert len(collect(tmp_path, "raw")["dmc:ball_in_cup-catch"]["dac"]) == 2
    err = capsys.readouterr().err
    assert "left out, config.json not valid JSON: " in err and "cut" in err
    assert "left out, config.json not loadable here: " in err and "typed" in err and "seed" in err


def test_run_label_names_the_smiling_settings(tmp_path):
    def run(name, algo="smiling", relabel="sample", rl="sac", **smiling):
        sm = {"num_levels": 8, "score": {"schedule": {"kind": "cosine"}}, **smiling}
        (tmp_path / name).mkdir()
        cfg = {"algo": algo, "relabel": relabel, "rl": rl, "smiling": sm}
        atomic_write_json(tmp_path / name / "config.json", {"config": cfg})
        return load_config(tmp_path / name)

    def detailed(cfg):
        return run_label(cfg, detail=True)

    assert detailed(run("dac", algo="dac")) == "dac"
    assert detailed(run("old")) == "smiling K=8, cosine, moments"              # before the option existed
    assert detailed(run("m", normalization="moments")) == "smiling K=8, cosine, moments"
    assert (detailed(run("r", normalization="robust", relabel="update"))
            == "smiling K=8, cosine, robust, cached rewards")
    assert detailed(run("dd", algo="dac", rl="dreamer")) == "dac, dreamer"
    assert detailed(run("sd", normalization="robust", rl="dreamer")) == "smiling K=8, cosine, robust, dreamer"
    assert detailed(run("c", normalization="robust", cap_errors=True)) == "smiling K=8, cosine, robust, capped errors"
    paper = run("p", num_levels=500, score={"schedule": {"kind": "ddpm", "steps": 5000}}, normalization="batch",
                standardize=False, levels="even", score_state="current", memory_kind="fifo", memory=200_000)
    assert detailed(paper) == "smiling K=500, ddpm T=5000, batch, raw states, even levels, scores s, fifo 200k"
