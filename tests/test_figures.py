"""The paper's figures as one command each: what each budget runs, a tiny paper-budget cell that starts,
checkpoints, resumes and is then redrawn without training, and the reference lines of a run's curve."""

import dataclasses
import json
import re

import matplotlib.axes
import numpy as np
import pytest

import smiling.experiments.grid as grid
from smiling.algos.registry import config_to_dict, run_metadata
from smiling.data import load_demos
from smiling.experiments.figures import make_figure, plan
from smiling.experiments.grid import check_existing, parse_overrides
from smiling.runs import Checkpoints, plot_run
from smiling.utils.io import atomic_write_json
from smiling.utils.provenance import source_commit

CPU_STEPS = {"dmc:ball_in_cup-catch": 100_000, "dmc:cheetah-run": 200_000, "dmc:walker-walk": 200_000}


def test_cpu_budgets_and_the_runs_figures_share(tmp_path):
    p3, p4, p5 = (plan(n, "cpu", tmp_path) for n in (3, 4, 5))
    assert len(p3.specs) == 3 * 5 * 3 and len(p4.specs) == 3 * 4 * 3 and len(p5.specs) == 5 * 3
    for p in (p3, p4, p5):
        assert not p.missing and {s.seed for s in p.specs} == {2, 3, 4}
        assert all(s.config.steps == CPU_STEPS[s.task] and s.config.eval_episodes == 10 for s in p.specs)
    assert {s.label for s in p3.specs} == {"smiling", "dac", "iqlearn", "bc", "bco"}
    assert {s.label for s in p4.specs} == {"smiling+actions", "dac+actions", "iqlearn+actions", "bc"}
    assert all(s.config.smiling.use_actions for s in p4.specs if s.label == "smiling+actions")
    assert {s.label for s in p5.specs} == {"smiling+linear", "dac+linear", "smiling", "dac", "bc"}
    narrowed = plan(3, "cpu", tmp_path, tasks=["dmc:ball_in_cup-catch"], algos=["dac"]).describe().splitlines()
    assert "3 runs (1 task, seeds 2,3,4)" in narrowed[0] and narrowed[1:] == [
        "  dmc:ball_in_cup-catch: 100,000 env steps; dac"]
    # Fig. 5's nonlinear references and BC are Fig. 3's runs: the same directories and configs, trained once
    shared = {s.run_dir: s.config for s in p3.specs}
    for s in p5.specs:
        if "+" not in s.label:
            assert shared[s.run_dir] == s.config


def test_paper_budget_lists_what_it_cannot_run(tmp_path):
    p = plan(3, "paper", tmp_path)
    assert {s.seed for s in p.specs} == {0, 1, 2, 3, 4}
    assert {(s.task, s.config.steps) for s in p.specs} == {("dmc:ball_in_cup-catch", 400_000),
                                                          ("dmc:cheetah-run", 3_000_000)}
    missing = {(t, label) for t, label, _ in p.missing}
    assert ("dmc:humanoid-walk", "smiling") in missing and ("humanoid:h1-crawl", "smiling+dreamer") in missing
    assert all("--demos" in why for _, _, why in p.missing)
    assert "cannot run humanoid:h1-pole (smiling+dreamer, dac+dreamer, iqlearn, bc, bco)" in p.describe()
    with pytest.raises(ValueError, match="no panel"):
        plan(5, "cpu", tmp_path, tasks=["dmc:walker-walk"])
    with pytest.raises(ValueError, match="figure 6"):
        plan(6, "cpu", tmp_path)
    with pytest.raises(ValueError, match="budget 'gpu'"):
        plan(3, "gpu", tmp_path)
    # (each planned the whole figure: 45 runs)
    for kw, message in [({"steps": 0}, "--steps must be >= 1, got 0"), ({"seeds": []}, "--seeds is empty"),
                        ({"tasks": []}, "--tasks is empty"), ({"algos": ()}, "--algos is empty")]:
        with pytest.raises(ValueError, match=message):
            plan(3, "cpu", tmp_path, **kw)


def test_drawing_a_missing_directory_and_a_dry_run_with_no_workers_are_refused(tmp_path):
    missing = tmp_path / "typo"
    with pytest.raises(FileNotFoundError, match=f"figure 5: {re.escape(str(missing))}: no such directory"):
        make_figure(5, out=missing, train=False, quiet=True)  # (it said "no run has evaluations yet")
    with pytest.raises(ValueError, match="workers must be >= 1"):  # as training would (a dry run took it)
        make_figure(5, out=tmp_path, dry_run=True, workers=0, quiet=True)
    assert not missing.exists()


def test_a_finished_run_with_other_settings_is_refused(tmp_path):
    spec = plan(5, "cpu", tmp_path, seeds=[2], algos=["dac"]).specs[0]
    spec.run_dir.mkdir(parents=True)
    other = grid.apply_override(spec.config, "dac.width", "64")
    atomic_write_json(spec.run_dir / "config.json", {**run_metadata(other), "finished": True})
    with pytest.raises(ValueError, match="differs in dac"):
        check_existing([spec])
    # the dry run says so too (it counted the run as finished)
    standing = plan(5, "cpu", tmp_path, seeds=[2], algos=["dac"]).standing()
    assert standing.startswith("so far: 0 finished, 0 part-way, 0 not started, 1 with other settings")
    assert f"{spec.run_dir}: differs in dac" in standing
    # another checkpoint cadence, budget or logging does not make it another run: it counts
    same = dataclasses.replace(spec.config, checkpoint_every=5000, steps=50_000, tensorboard=True)
    atomic_write_json(spec.run_dir / "config.json", {**run_metadata(same), "finished": True})
    check_existing([spec])


def test_a_bc_run_ended_after_a_checkpoint_is_part_way_and_starts_again(tmp_path, monkeypatch):
    """BC checkpoints its gradient steps (no env step to resume from): an unfinished BC run is part-way and
    starts again from the beginning (it read the checkpoint as an off-policy run's and failed)."""
    import smiling.algos.bc as bc
    from smiling.algos.registry import train

    p = plan(4, "cpu", tmp_path, tasks=["dmc:ball_in_cup-catch"], algos=["bc"], seeds=[2],
             overrides=parse_overrides(["bc.steps=20", "bc.eval_every=10", "eval_episodes=1", "horizon=20",
                                        "sac.hidden_dims=32,32"]))
    spec, evaluations = p.specs[0], []

    def evaluate_once_then_end(*a, **k):
        evaluations.append(1)
        if len(evaluations) == 2:
            raise KeyboardInterrupt  # stands in for the end of the process, after the first checkpoint
        return real(*a, **k)

    real = bc.evaluate
    monkeypatch.setattr(bc, "evaluate", evaluate_once_then_end)
    with pytest.raises(KeyboardInterrupt):
        train(spec.config, spec.run_dir, quiet=True)
    assert Checkpoints(spec.run_dir).steps() == [10]  # (BC counts its checkpoints in gradient steps)
    assert grid.run_state(spec.run_dir, spec.config.steps) == "partial" and grid.resume_step(spec.run_dir) is None
    assert p.standing().splitlines() == [
        "so far: 0 finished, 1 part-way, 0 not started",
        f"  {spec.run_dir}: unfinished (it starts again from the beginning)"]


TINY = parse_overrides(["horizon=50", "seed_steps=50", "update_every=10", "eval_every=50", "eval_episodes=1",
                        "checkpoint_every=50", "reward_update_every=50", "sac.hidden_dims=32,32",
                        "sac.batch_size=32", "dac.width=32", "dac.steps=10", "dac.batch_size=64"])


@pytest.mark.slow
def test_paper_budget_starts_checkpoints_resumes_and_redraws_without_training(tmp_path, monkeypatch):
    out = tmp_path / "figs"
    args = dict(budget="paper", out=out, tasks=["dmc:ball_in_cup-catch"], algos=["dac"], seeds=[0],
                overrides=TINY, workers=1, quiet=True)
    first = make_figure(3, steps=50, **args)  # the first checkpoint, at 50 env steps
    run = out / "dmc-ball_in_cup-catch" / "dac" / "s0"
    assert [r["state"] for r in first["results"]] == ["trained"]
    assert json.loads((run / "checkpoints" / "latest.json").read_text())
    larger = {k: v for k, v in args.items() if k in ("tasks", "algos", "seeds", "overrides")}
    assert plan(3, "paper", out, steps=100, **larger).standing().splitlines() == [  # what --dry-run then says
        "so far: 0 finished, 1 part-way, 0 not started",
        f"  {run}: at env step 50 of 100 (its checkpoint at 50)"]
    second = make_figure(3, steps=100, **args)  # a larger budget resumes it from that checkpoint
    assert [r["state"] for r in second["results"]] == ["resumed"]
    assert "| dmc:ball_in_cup-catch | dac | 1 | 100 |" in second["table"]

    def no_training(*a, **k):
        raise AssertionError("a finished figure must not train")

    real_train = grid.train
    monkeypatch.setattr(grid, "train", no_training)
    (out / "figure3.png").unlink()
    third = make_figure(3, steps=100, **args)
    assert [r["state"] for r in third["results"]] == ["skipped"]
    assert (out / "figure3.png").stat().st_size > 0 and (out / "figure3.svg").exists()
    md = (out / "figure3.md").read_text()
    assert "| dmc:ball_in_cup-catch | dac | 1 | 100 |" in md and "humanoid:h1-crawl" not in md
    assert f"`smiling figure 3 --budget paper --steps 100 --seeds 0 --tasks dmc:ball_in_cup-catch --algos dac " \
           f"--set horizon=50" in md and f"--out {out}` from 1 run directories" in md
    # --draw-only: a larger budget is drawn from the run as it is, and nothing trains (train is patched to fail)
    partial = make_figure(3, steps=150, train=False, **{**args, "seeds": [0, 1]})
    assert [r["state"] for r in partial["results"]] == ["not trained"] * 2
    md = (out / "figure3.md").read_text()
    assert "--draw-only` from 1 run directories" in md
    assert f"Not finished yet (1): {run}" in md and f"Not started yet (1): {run.parent / 's1'}" in md
    # a copy of the finished run without its checkpoints (as docs/ keeps one) is drawn as finished
    copy = tmp_path / "copy"
    (copy / run.relative_to(out)).mkdir(parents=True)
    for name in ("config.json", "metrics.csv"):
        (copy / run.relative_to(out) / name).write_bytes((run / name).read_bytes())
    redrawn = make_figure(3, steps=100, train=False, **{**args, "out": copy})
    assert redrawn["table"] == third["table"] and "Not finished" not in (copy / "figure3.md").read_text()
    # ... and so does the figure's command with training on (train is still patched to fail)
    assert [r["state"] for r in make_figure(3, steps=100, **{**args, "out": copy})["results"]] == ["skipped"]
    # a larger budget cannot extend the copy (it has no checkpoint): refused, and its metrics are kept
    monkeypatch.setattr(grid, "train", real_train)
    copied = copy / run.relative_to(out) / "metrics.csv"
    before = copied.read_bytes()
    with pytest.raises(RuntimeError, match="its metrics reach env step 100 but it holds no checkpoint"):
        make_figure(3, steps=150, **{**args, "out": copy})
    assert copied.read_bytes() == before

    # the run records its source commit and the references its curve.png draws
    saved = json.loads((run / "config.json").read_text())
    meta = load_demos("dmc:ball_in_cup-catch").metadata
    assert saved["commit"] == source_commit()
    assert saved["references"] == {"expert": meta["expert_return_mean"], "random": meta["random_return_mean"]}
    levels = []
    original = matplotlib.axes.Axes.axhline
    monkeypatch.setattr(matplotlib.axes.Axes, "axhline",
                        lambda self, y=0, *a, **k: levels.append(y) or original(self, y, *a, **k))
    labels = []  # (and the legend says what the band around the eval returns is)
    monkeypatch.setattr(matplotlib.axes.Axes, "legend",
                        lambda self, *a, **k: labels.extend(self.get_legend_handles_labels()[1]))
    plot_run(run)
    np.testing.assert_allclose(levels, [meta["expert_return_mean"], meta["random_return_mean"]])
    n = saved["config"]["eval_episodes"]
    assert f"eval return (mean action; band: ± std over {n} episodes)" in labels, labels
    assert config_to_dict(first["plan"].specs[0].config)["task"] == "dmc:ball_in_cup-catch"


@pytest.mark.slow
@pytest.mark.parametrize("number,label,task", [(4, "dac+actions", "dmc:ball_in_cup-catch"),
                                               (5, "dac+linear", "dmc:cheetah-run")])
def test_figures_4_and_5_at_the_paper_budget_start_checkpoint_and_resume(tmp_path, number, label, task):
    args = dict(budget="paper", out=tmp_path, tasks=[task], algos=[label], seeds=[0], overrides=TINY, workers=1,
                quiet=True)
    assert [r["state"] for r in make_figure(number, steps=50, **args)["results"]] == ["trained"]
    run = tmp_path / task.replace(":", "-") / label / "s0"
    assert json.loads((run / "checkpoints" / "latest.json").read_text())
    again = make_figure(number, steps=100, **args)
    assert [r["state"] for r in again["results"]] == ["resumed"] and f"| {task} | {label} | 1 | 100 |" in again["table"]
    assert (tmp_path / f"figure{number}.png").exists()
    if number == 4:  # the paper budget's humanoid cells are listed as not runnable, with the reason
        assert "humanoid:h1-crawl (smiling+actions+dreamer" in plan(4, "paper", tmp_path).describe()


def test_the_figure_command_plans_from_the_cli(smiling_main, tmp_path):
    res = smiling_main("figure", "5", "--dry-run", "--algos", "smiling+linear,dac+linear", "--out", tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines()[:2] == [
        "Fig. 5: linear score functions and discriminators on cheetah-run, cpu budget: 6 runs (1 task, seeds 2,3,4), "
        "1.20M env steps in all", "  dmc:cheetah-run: 200,000 env steps; smiling+linear, dac+linear"]
    assert res.stdout.splitlines()[-1] == "so far: 0 finished, 0 part-way, 6 not started"
    res = smiling_main("figure", "5", "--draw-only", "--out", tmp_path)
    assert res.returncode == 2 and "figure 5: no run has evaluations yet" in res.stderr


def test_the_per_seed_and_wall_time_scripts_read_a_figures_runs(tmp_path, monkeypatch, capsys):
    """benchmarks/per_seed.py and run_wall_times.py, which docs/results.md cites, on two runs made up here."""
    import runpy
    import sys
    from pathlib import Path

    from smiling.algos import TrainConfig

    for seed, returns in ((2, "0,100,500,900,950"), (3, "0,900,400,960,970")):
        run = tmp_path / "dmc-ball_in_cup-catch" / "smiling" / f"s{seed}"
        run.mkdir(parents=True)
        meta = run_metadata(TrainConfig(algo="smiling", task="dmc:ball_in_cup-catch", steps=40_000, seed=seed))
        atomic_write_json(run / "config.json", {**meta, "references": {"expert": 1000.0, "random": 0.0}})
        rows = [f"{10_000 * i},{r},{60.0 * (i + 1) * seed}" for i, r in enumerate(returns.split(","))]
        (run / "metrics.csv").write_text("step,eval_return,wall_time\n" + "\n".join(rows) + "\n")
    scripts = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.setattr(sys, "argv", ["per_seed.py", str(tmp_path), "--threshold", "0.9"])
    runpy.run_path(str(scripts / "per_seed.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "dmc:ball_in_cup-catch smiling: 2 runs, mean final 0.96" in out
    assert "s2: final 0.95, AUC 0.49, best 0.95, first >= 0.9: 30k, stays >= 0.9 from: 30k" in out
    assert "s3: final 0.97, AUC 0.69, best 0.97, first >= 0.9: 10k, stays >= 0.9 from: 30k" in out
    assert "mean: 0k 0.00 10k 0.50 20k 0.45 30k 0.93 40k 0.96" in out
    monkeypatch.setattr(sys, "argv", ["run_wall_times.py", str(tmp_path)])
    runpy.run_path(str(scripts / "run_wall_times.py"), run_name="__main__")
    assert "| dmc-ball_in_cup-catch | smiling | 40,000 | 2 | 10–15 (s2 10, s3 15) |" in capsys.readouterr().out
