"""Experiments: grid expansion and overrides, a tiny 2 tasks x 2 algorithms grid run end-to-end
locally (killed, then resumed without redoing finished runs), 2 algorithms of one task on a local Ray instance,
summary and plot."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smiling.algos import TrainConfig
from smiling.algos.registry import apply_label, run_label, run_metadata
from smiling.data import Demos, save_npz
from smiling.envs import make_env
from smiling.envs.rollout import rollout
from smiling.experiments.grid import (apply_override, apply_overrides, expand, parse_demos, parse_overrides,
                                      parse_seeds, run_grid, run_state)
from smiling.experiments.report import Curve, area_under_curve, collect, mean_se, plot_experiment, summary_table
from smiling.runs import Checkpoints, StopSignals, TrainingStopped, last_metrics_step
from smiling.utils.io import atomic_write_json


def test_seed_lists_and_ranges():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("1-2,7") == [1, 2, 7]
    for bad in ("4-1", "a", "1,1", "-1"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)
    # (were: "expected a list like '0-4'", a hundred million runs planned, the last file kept, a label kept raw)
    with pytest.raises(ValueError, match="seeds must be >= 0"):
        parse_seeds("-1")
    with pytest.raises(ValueError, match="more than 10,000 seeds"):
        parse_seeds("0-100000000")
    with pytest.raises(ValueError, match=r"--demos names dmc:cheetah-run twice \(a.npz and b.npz\)"):
        parse_demos(["dmc:cheetah-run=a.npz", "dmc:cheetah-run=b.npz"])
    with pytest.raises(ValueError, match="variant 'actions' given twice"):
        apply_label(TrainConfig(), "smiling+actions+actions")


def test_overrides_reach_nested_fields_with_their_types():
    cfg = TrainConfig()
    cfg = apply_override(cfg, "smiling.score.schedule.kind", "ddpm")
    cfg = apply_override(cfg, "sac.hidden_dims", "64,64")
    cfg = apply_override(cfg, "eval_every", "500")
    cfg = apply_override(cfg, "tensorboard", "true")
    assert (cfg.smiling.score.schedule.kind, cfg.sac.hidden_dims, cfg.eval_every, cfg.tensorboard) == \
        ("ddpm", (64, 64), 500, True)
    with pytest.raises(ValueError, match="no field 'evl_every'"):
        apply_override(cfg, "evl_every", "5")
    with pytest.raises(ValueError, match="expected int"):
        apply_override(cfg, "steps", "lots")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["steps"])
    with pytest.raises(ValueError, match=r"--set sac\.hiden: SACConfig has no field 'hiden'"):
        apply_override(cfg, "sac.hiden", "5")
    with pytest.raises(ValueError, match=r"--set smiling\.score: name one of its fields \(smiling\.score\.<field>\)"):
        apply_override(cfg, "smiling.score", "5")
    # a group is rebuilt once with all its changes: settings checked together may come in any order
    both = apply_overrides(cfg, parse_overrides(["bc.steps=20", "bc.eval_every=10", "sac.batch_size=32"]))
    assert (both.bc.steps, both.bc.eval_every, both.sac.batch_size, both.eval_every) == (20, 10, 32, 500)


def test_overrides_take_the_declared_type_of_fields_whose_default_is_none():
    """A field that defaults to None was left as text (``sac.target_entropy=-1`` saved as "-1", ``=abc`` failed
    inside the run after the experiment recorded it); ``none`` on an int field was a TypeError."""
    cfg = apply_override(TrainConfig(), "sac.target_entropy", "-1")
    assert cfg.sac.target_entropy == -1.0 and isinstance(cfg.sac.target_entropy, float)
    assert apply_override(cfg, "sac.target_entropy", "none").sac.target_entropy is None
    assert apply_override(cfg, "demos", "d.npz").demos == "d.npz"
    for key, text, message in [("sac.target_entropy", "abc", "expected float"), ("eval_every", "none", "expected int"),
                               ("relabel", "updat", "expected one of sample, update")]:
        with pytest.raises(ValueError, match=rf"--set {re.escape(key)}={text}: {message}"):
            apply_override(cfg, key, text)


def test_labels_set_variants_and_round_trip():
    cfg = apply_label(TrainConfig(), "smiling+actions")
    assert cfg.smiling.use_actions and run_label(cfg) == "smiling+actions"
    cfg = apply_label(TrainConfig(), "dac+linear")
    assert cfg.dac.linear and run_label(cfg) == "dac+linear"
    default = TrainConfig().smiling.normalization
    other = {"moments": "robust", "robust": "moments"}[default]
    cfg = apply_label(TrainConfig(), f"smiling+{other}")
    assert cfg.smiling.normalization == other and run_label(cfg) == f"smiling+{other}"
    assert run_label(apply_label(TrainConfig(), f"smiling+{default}")) == "smiling"  # the default: no suffix
    cfg = apply_label(TrainConfig(), "smiling+uncapped")
    assert not cfg.smiling.cap_errors and run_label(cfg) == "smiling+uncapped"
    assert TrainConfig().smiling.cap_errors and run_label(apply_label(TrainConfig(), "smiling")) == "smiling"
    with pytest.raises(ValueError, match="applies to smiling only"):
        apply_label(TrainConfig(), "dac+robust")
    with pytest.raises(ValueError, match="unknown variant 'wide'"):
        apply_label(TrainConfig(), "dac+wide")
    with pytest.raises(ValueError, match="algorithm 'gail'"):
        expand("x", ["dmc:ball_in_cup-catch"], ["gail"], [0], 100)


def test_a_grid_refuses_a_set_it_would_not_apply_and_a_demos_file_it_cannot_read(tmp_path):
    """--set dac.linear=false beside --algos dac+linear, and --set steps/seed, were overridden silently while
    experiment.json recorded them; a missing --demos file failed every run of its task, one by one."""
    from smiling.data import DemoError
    bic = ["dmc:ball_in_cup-catch"]
    for key, text, algo, message in [("dac.linear", "false", "dac+linear", "contradicts --algos dac+linear, which "
                                      "sets dac.linear to True"),
                                     ("rl", "sac", "sac+dreamer", "which sets rl to 'dreamer'"),
                                     ("steps", "150", "sac", "the grid sets steps itself; use --steps"),
                                     ("seed", "7", "sac", "use --seeds"),
                                     ("task", "dmc:cheetah-run", "sac", "--tasks")]:
        with pytest.raises(ValueError, match=re.escape(f"--set {key}=") + ".*" + re.escape(message)):
            expand(tmp_path, bic, [algo], [0], 100, {key: text})
    assert len(expand(tmp_path, bic, ["dac+linear"], [0], 100, {"dac.linear": "true", "dac.width": "64"})) == 1
    with pytest.raises(DemoError, match="nope.npz: file not found"):
        expand(tmp_path, bic, ["dac"], [0], 100, demos={bic[0]: str(tmp_path / "nope.npz")})
    # another --set in the same --out is named key by key (the whole old dict was printed); a damaged record named
    from smiling.experiments.grid import _write_grid
    _write_grid(tmp_path / "g", bic, ["dac"], [0], 100, {"dac.width": "64", "eval_every": "50"}, {})
    with pytest.raises(ValueError, match=r"other --set values \(dac.width: 64 -> 32; eval_every: 50 -> \(not set\)\)"):
        _write_grid(tmp_path / "g", bic, ["dac"], [1], 100, {"dac.width": "32"}, {})
    # the same values in other words are the same --set (eval_every=050 was refused against eval_every=50)
    _write_grid(tmp_path / "g", bic, ["dac"], [1], 100, {"dac.width": "064", "eval_every": "050"}, {})
    # but a key set to its default is not the key unset (smiling+paper's preset sets num_levels=500 unless --set)
    with pytest.raises(ValueError, match=r"other --set values \(horizon: \(not set\) -> 1000\)"):
        _write_grid(tmp_path / "g", bic, ["dac"], [1], 100, {"dac.width": "64", "eval_every": "50",
                                                              "horizon": str(TrainConfig().horizon)}, {})
    (tmp_path / "g" / "experiment.json").write_text("[1, 2]")  # (a KeyError or AttributeError traceback)
    with pytest.raises(ValueError, match="experiment.json: not an experiment's record"):
        _write_grid(tmp_path / "g", bic, ["dac"], [1], 100, {}, {})
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FileExistsError, match="a-file: a file, not a directory"):  # (was "[Errno 17] File exists")
        expand(tmp_path / "a-file", bic, ["dac"], [0], 100)


def test_dreamer_variant_and_runs_named_by_what_they_are(tmp_path):
    cfg = apply_label(TrainConfig(), "smiling+actions+dreamer")
    assert cfg.rl == "dreamer" and cfg.smiling.use_actions and run_label(cfg) == "smiling+actions+dreamer"
    task = "dmc:ball_in_cup-catch"
    # a --set that makes a variant names the runs after it, so folders, summary and `smiling plot` agree
    specs = expand(tmp_path, [task], ["smiling", "dac"], [0], 100, {"rl": "dreamer"})
    assert [s.label for s in specs] == ["smiling+dreamer", "dac+dreamer"]
    assert specs[0].run_dir.parent.name == "smiling+dreamer" and specs[0].config.rl == "dreamer"
    assert [s.label for s in expand(tmp_path, [task], ["sac", "sac+dreamer"], [0], 100)] == ["sac", "sac+dreamer"]
    default = TrainConfig().smiling.normalization
    with pytest.raises(ValueError, match=f"smiling and smiling\\+{default} are the same runs"):
        expand(tmp_path, [task], ["smiling", f"smiling+{default}"], [0], 100)
    with pytest.raises(ValueError, match="the dreamer backend runs sac, smiling, dac"):
        expand(tmp_path, [task], ["bc+dreamer"], [0], 100)
    with pytest.raises(ValueError, match="--rl dreamer runs sac, smiling, dac; bco runs on no RL backend"):
        expand(tmp_path, [task], ["bco"], [0], 100, {"rl": "dreamer"})
    with pytest.raises(ValueError, match="not in the grid"):
        expand("x", ["dmc:ball_in_cup-catch"], ["sac"], [0], 100, demos={"dmc:cheetah-run": "d.npz"})


def test_progress_reads_the_last_complete_row_of_a_long_metrics_file(tmp_path):
    assert last_metrics_step(tmp_path) == 0  # no metrics.csv yet
    rows = "".join(f"{step},{step / 100:.1f},{'x' * 40}\n" for step in range(0, 500_000, 1000))
    (tmp_path / "metrics.csv").write_text("step,wall_time,pad\n" + rows + "\n")
    assert last_metrics_step(tmp_path) == 499_000
    (tmp_path / "metrics.csv").write_text("step,wall_time,pad\n")
    assert last_metrics_step(tmp_path) == 0


def test_summary_statistics():
    assert area_under_curve([0, 10, 20], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert area_under_curve([0], [0.4]) == 0.4
    m, se = mean_se([1.0, 2.0, 3.0])
    assert (m, se) == (2.0, pytest.approx(1 / np.sqrt(3)))


TINY = ["horizon=50", "seed_steps=50", "update_every=10", "eval_every=50", "eval_episodes=1",
        "checkpoint_every=50", "reward_update_every=50", "sac.hidden_dims=32,32", "sac.batch_size=32",
        "dac.width=32", "dac.steps=10", "dac.batch_size=64"]
TASKS = ["dmc:ball_in_cup-catch", "dmc:point_mass-easy"]
ALGOS = ["sac", "dac"]


@pytest.fixture(scope="module")
def point_mass_demos(tmp_path_factory):
    """State-action demos of a random policy on point_mass (a stand-in expert; 2 episodes of 50 steps)."""
    env = make_env("dmc:point_mass-easy", horizon=50)
    rng = np.random.default_rng(0)
    obs, act, rew = rollout(env, lambda o: rng.uniform(-1, 1, 2), 2, (0,))
    path = tmp_path_factory.mktemp("demos") / "pm.npz"
    save_npz(Demos(obs, act, rew.astype(np.float32), {"task": "dmc:point_mass-easy", "expert_return_mean": 5.0,
                                                    "random_return_mean": 0.0}), path)
    return str(path)


def _grid_cmd(smiling_cmd, out, demos, workers):
    return [*smiling_cmd, "experiment", "--tasks", ",".join(TASKS), "--algos", ",".join(ALGOS), "--seeds", "0",
            "--steps", "100", "--out", str(out), "--workers", str(workers), "--quiet",
            "--demos", f"dmc:point_mass-easy={demos}", "--set", *TINY]


def _done_runs(out):
    return sorted(p.parent.parent for p in out.rglob("latest.json") if run_state(p.parent.parent, 100) == "done")


@pytest.mark.slow
def test_killed_grid_resumes_without_redoing_finished_runs(smiling_cmd, smiling_main, tmp_path, point_mass_demos,
                                                           monkeypatch):
    out = tmp_path / "exp"
    env = {**os.environ, "SMILING_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(_grid_cmd(smiling_cmd, out, point_mass_demos, 1), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while len(_done_runs(out)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _done_runs(out)
    assert 2 <= len(finished) < 4, proc.stderr.read().decode()[-2000:]
    stamps = {p: (p / "checkpoints" / "latest.json").stat().st_mtime_ns for p in finished}

    monkeypatch.setenv("SMILING_CACHE", env["SMILING_CACHE"])
    res = smiling_main(*_grid_cmd([], out, point_mass_demos, 2))  # resumed in this process
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{len(finished)} already finished" in res.stdout
    assert len(_done_runs(out)) == 4
    assert {p: (p / "checkpoints" / "latest.json").stat().st_mtime_ns for p in finished} == stamps
    assert "| dmc:point_mass-easy | dac | 1 | 100 |" in res.stdout
    assert (out / "curves.png").stat().st_size > 0 and (out / "curves.svg").stat().st_size > 0
    grid = json.loads((out / "experiment.json").read_text())
    assert grid["seeds"] == [0] and grid["demos"] == {"dmc:point_mass-easy": point_mass_demos}

    # the plot command filters runs by label and task, on raw or normalized returns
    res = smiling_main("plot", out, "--algos", "dac", "--tasks", TASKS[1], "--out", tmp_path / "fig")
    assert res.returncode == 0, res.stderr
    assert "| sac |" not in res.stdout and "ball_in_cup" not in res.stdout
    assert (tmp_path / "fig.svg").exists()


@pytest.mark.slow
def test_grid_on_a_local_ray_instance(tmp_path, point_mass_demos):
    import ray
    tasks = TASKS[1:]  # one task: the killed-grid test covers two; here the Ray executor is what is tested
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = run_grid(tmp_path / "exp", tasks, ALGOS, [0], 100, parse_overrides(TINY),
                           {"dmc:point_mass-easy": point_mass_demos}, executor="ray", quiet=True)
    finally:
        ray.shutdown()
    assert sorted(r["state"] for r in results) == ["trained"] * 2  # one run per Ray worker, at once
    in_order = [(a, "s0") for _ in tasks for a in ALGOS]
    assert [(r["label"], Path(r["run_dir"]).name) for r in results] == in_order  # grid order, not finish order
    groups = collect(tmp_path / "exp", "raw")
    assert {t: sorted(g) for t, g in groups.items()} == {t: sorted(ALGOS) for t in tasks}
    assert all(len(runs) == 1 for g in groups.values() for runs in g.values())
    table = summary_table(collect(tmp_path / "exp", "normalized"))
    assert table.count("\n") == 1 + 2
    assert all(p.exists() for p in plot_experiment(groups, tmp_path / "c", "raw"))
    # a second pass has nothing left to do
    again = run_grid(tmp_path / "exp", tasks, ALGOS, [0], 100, parse_overrides(TINY),
                     {"dmc:point_mass-easy": point_mass_demos}, executor="ray", quiet=True)
    assert [r["state"] for r in again] == ["skipped"] * 2
    assert [(r["label"], Path(r["run_dir"]).name) for r in again] == in_order
    assert Checkpoints(tmp_path / "exp" / "dmc-point_mass-easy" / "dac" / "s0").latest() is not None


def test_runs_written_before_an_option_existed_load_as_they_ran():
    from smiling.algos.registry import config_from_dict, config_to_dict

    d = config_to_dict(TrainConfig(algo="smiling"))
    del d["smiling"]["normalization"]
    assert config_from_dict(d).smiling.normalization == "moments"
    d["smiling"]["normalization"] = "robust"
    assert config_from_dict(d).smiling.normalization == "robust"
    # runs written before the error cap existed ran without it
    del d["smiling"]["cap_errors"]
    assert not config_from_dict(d).smiling.cap_errors
    d["smiling"]["cap_errors"] = True
    assert config_from_dict(d).smiling.cap_errors


def _written_run(path, seed, evals, references):
    """A run directory as the loop leaves it (config.json, metrics.csv), without training."""
    cfg = TrainConfig(algo="dac", task="dmc:ball_in_cup-catch", seed=seed, steps=max(evals))
    path.mkdir(parents=True)
    atomic_write_json(path / "config.json", {**run_metadata(cfg), "references": references})
    (path / "metrics.csv").write_text("step,episode,eval_return\n" + "".join(
        f"{s},{s // 10},{r}\n" for s, r in evals.items()))


def test_summary_until_a_step_and_with_the_references_config_json_recorded(tmp_path):
    refs = {"expert": 110.0, "random": 10.0}  # not the bundled demos' returns: each run's own must be used
    _written_run(tmp_path / "a", 0, {0: 10.0, 50: 60.0, 100: 110.0}, refs)
    _written_run(tmp_path / "b", 1, {0: 10.0, 50: 60.0, 100: 160.0}, {"expert": 210.0, "random": 10.0})  # its own
    whole = collect(tmp_path)["dmc:ball_in_cup-catch"]["dac"]
    assert sorted(c.values[-1] for c in whole) == [0.75, 1.0]
    half = collect(tmp_path, until=50)["dmc:ball_in_cup-catch"]["dac"]
    assert all(list(c.steps) == [0, 50] and c.best == c.values[-1] for c in half)
    assert "| dmc:ball_in_cup-catch | dac | 2 | 50 | 0.38 ± 0.12 | 0.19 ± 0.06 | 0.38 ± 0.12 |" in summary_table(
        {"dmc:ball_in_cup-catch": {"dac": half}})
    # best: each seed's highest evaluation (0.9 and 0.7), not its last (0.5 and 0.7)
    steps = np.array([0, 50, 100])
    dips = [Curve(steps, np.array([0.0, 0.9, 0.5]), Path("a"), 0.9),
            Curve(steps, np.array([0.0, 0.7, 0.7]), Path("b"), 0.7)]
    row = summary_table({"t": {"dac": dips}}).splitlines()[-1].split(" | ")
    assert (row[4], row[6]) == ("0.60 ± 0.10", "0.80 ± 0.10 |")


def test_bc_is_summarized_by_its_last_evaluation_and_its_best_along_its_gradient_steps(tmp_path):
    cfg = TrainConfig(algo="bc", task="dmc:ball_in_cup-catch", seed=0, steps=100)
    tmp_path.mkdir(exist_ok=True)
    atomic_write_json(tmp_path / "config.json", {**run_metadata(cfg), "references": {"expert": 110.0, "random": 10.0},
                                                 "finished": True})
    (tmp_path / "metrics.csv").write_text("step,eval_return,grad_steps\n0,10.0,0\n0,100.0,2000\n0,60.0,4000\n")
    (curve,) = collect([tmp_path])["dmc:ball_in_cup-catch"]["bc"]
    assert list(curve.steps) == [0] and list(curve.values) == [0.5] and curve.best == 0.9  # a line at its last
    row = summary_table({"t": {"bc": [curve]}}).splitlines()[-1]
    assert row == "| t | bc | 1 | 0 | 0.50 | 0.50 | 0.90 |"


def _env_of_a_worker(name):
    return os.environ.get(name)


def test_grid_workers_allocate_gpu_memory_as_they_need_unless_the_user_says_otherwise(monkeypatch):
    from smiling.experiments import grid

    assert grid.worker_env({}) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    mine = {"XLA_PYTHON_CLIENT_MEM_FRACTION": ".2"}
    assert grid.worker_env({**mine, "HOME": "/x"}) == mine  # the user's own settings, passed on (Ray nodes)
    assert grid.worker_env({"SMILING_PLUGINS": "m:A"}) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                                                           "SMILING_PLUGINS": "m:A"}  # (a Ray worker: the same)
    for v in grid.GPU_MEMORY_VARS:
        monkeypatch.delenv(v, raising=False)
    with grid.process_pool(1) as pool:  # the local executor's workers get it
        assert pool.submit(_env_of_a_worker, "XLA_PYTHON_CLIENT_PREALLOCATE").result() == "false"


def _cpus_of_a_worker(folder: str):
    Path(folder, str(os.getpid())).touch()  # then wait for the other task: each runs in a process of its own
    deadline = time.time() + 120
    while len(os.listdir(folder)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    return os.getpid(), sorted(os.sched_getaffinity(0))


def test_pool_workers_each_keep_to_their_own_share_of_the_cpus(tmp_path):
    from smiling.experiments.grid import cpu_shares, process_pool

    assert cpu_shares(2, [0, 1]) == [[0], [1]]
    assert cpu_shares(2, [4, 0, 1, 5]) == [[0, 1], [4, 5]]
    assert cpu_shares(3, range(8)) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert cpu_shares(1, range(8)) is None and cpu_shares(3, [0, 1]) is None  # one worker, or too few CPUs: no pin
    shares = cpu_shares(2)
    if shares is None:
        pytest.skip("fewer than 2 CPUs here")
    with process_pool(2) as pool:
        seen = dict(f.result() for f in [pool.submit(_cpus_of_a_worker, str(tmp_path)) for _ in range(2)])
    assert len(seen) == 2 and sorted(seen.values()) == sorted(shares)  # two processes, one share each


def _train_until_a_stop_signal(folder: str) -> int | None:
    """Stands in for a run's training loop in a pool worker: stops at the signal (as after its checkpoint)."""
    from smiling.runs import StopSignals

    with StopSignals(message=None) as stop:
        Path(folder, f"busy-{os.getpid()}").touch()
        deadline = time.time() + 120
        while stop.requested is None and time.time() < deadline:
            time.sleep(0.01)
    return stop.requested


def _busy_pids(folder: Path, n: int = 1) -> list[int]:
    """The pids of the pool workers running `_train_until_a_stop_signal`, once ``n`` of them are."""
    deadline = time.time() + 120
    while len(list(folder.glob("busy-*"))) < n and time.time() < deadline:
        time.sleep(0.05)
    pids = sorted(int(p.name.split("-")[1]) for p in folder.glob("busy-*"))
    assert len(pids) == n
    return pids


def test_a_stop_signal_to_an_idle_pool_worker_leaves_the_busy_one_to_stop_after_its_checkpoint(tmp_path):
    """SIGTERM to every worker of a pool (Ctrl-C, a preemption) while one of them is idle: the idle one must not
    die of it, or the pool breaks and kills the busy one before its checkpoint. Both then start no more runs.
    The pool shares its grid's stop (as `smiling experiment`'s does): whichever worker takes the signal first, the
    other's own first signal must still stop it gently."""
    from smiling.experiments.grid import process_pool, run_one, stop_value

    with process_pool(2, stop_value()) as pool:
        busy = pool.submit(_train_until_a_stop_signal, str(tmp_path))
        idle_pid = pool.submit(os.getpid).result(timeout=120)
        [busy_pid] = _busy_pids(tmp_path)
        assert busy_pid != idle_pid
        for pid in (idle_pid, busy_pid):
            os.kill(pid, signal.SIGTERM)
        assert busy.result(timeout=120) == signal.SIGTERM  # (BrokenProcessPool when the idle worker died)
        later = [pool.submit(run_one, {}, str(tmp_path / f"run{i}")) for i in range(4)]
        assert [f.result(timeout=120) for f in later] == [
            {"run_dir": str(tmp_path / f"run{i}"), "state": "not started", "signum": signal.SIGTERM} for i in range(4)]


def test_a_stop_the_grids_process_alone_got_reaches_its_workers_and_their_own_late_signal_is_gentle(tmp_path):
    """`timeout`, `docker stop` or `kill PID` signal the grid's process only: it tells its workers through a
    shared value, and a running run stops as if the signal had reached its worker; none starts after.
    Ctrl-C or a preemption reaches every process, some later than others: a worker's own first signal, come after
    its grid's stop, must stop it gently too, not act as a second one (which would end it and break the pool)."""
    from smiling.experiments.grid import process_pool, run_one, stop_value

    told = stop_value()
    with process_pool(2, told) as pool:
        busy = pool.submit(_train_until_a_stop_signal, str(tmp_path))
        [pid] = _busy_pids(tmp_path)
        assert not busy.done()
        told.value = signal.SIGINT  # what the grid does when its own handler gets the signal
        assert busy.result(timeout=60) == signal.SIGINT
        os.kill(pid, signal.SIGTERM)  # the same worker's own first signal, late
        time.sleep(0.5)  # (time for it to be handled)
        later = [pool.submit(run_one, {}, str(tmp_path / f"run{i}")) for i in range(2)]
        assert {f.result(timeout=60)["state"] for f in later} == {"not started"}  # (BrokenProcessPool if it died)


def test_a_stop_signal_to_one_worker_alone_stops_the_grid(tmp_path):
    """`kill` of one worker: its request is the grid's stop (shared with the grid's process and the other
    workers), so the other worker's run stops too, and no run starts after (on the old code, the other worker
    trained on and went on starting runs)."""
    from smiling.experiments.grid import process_pool, run_one, stop_value

    told = stop_value()
    with process_pool(2, told) as pool:
        busy = [pool.submit(_train_until_a_stop_signal, str(tmp_path)) for _ in range(2)]
        pids = _busy_pids(tmp_path, 2)
        assert not any(f.done() for f in busy)
        os.kill(pids[0], signal.SIGTERM)
        assert [f.result(timeout=60) for f in busy] == [signal.SIGTERM] * 2
        assert told.value == signal.SIGTERM  # what the grid's process reads: it cancels the runs not started
        later = [pool.submit(run_one, {}, str(tmp_path / f"run{i}")) for i in range(3)]
        assert {f.result(timeout=60)["state"] for f in later} == {"not started"}


def test_a_finished_run_of_an_algorithm_with_its_own_loop_is_done_only_at_its_budget(tmp_path):
    cfg = TrainConfig(algo="bco", task="dmc:ball_in_cup-catch", steps=100)
    tmp_path.mkdir(exist_ok=True)
    atomic_write_json(tmp_path / "config.json", {**run_metadata(cfg), "finished": True})
    assert run_state(tmp_path, 100) == "done" and run_state(tmp_path, 200) == "partial"  # BCO: a larger budget redoes it
    atomic_write_json(tmp_path / "config.json", {**run_metadata(cfg), "finished": True, "x_axis": "grad_steps"})
    assert run_state(tmp_path, 200) == "done"  # BC learns from no env steps: any budget


def test_a_run_without_checkpoints_is_done_when_its_metrics_reach_the_budget(tmp_path):
    atomic_write_json(tmp_path / "config.json", run_metadata(TrainConfig(task="dmc:ball_in_cup-catch", steps=100)))
    (tmp_path / "metrics.csv").write_text("step,eval_return\n0,1.0\n40,2.0\n")
    assert run_state(tmp_path, 100) == "partial"  # killed before its first checkpoint: it starts over
    (tmp_path / "metrics.csv").write_text("step,eval_return\n0,1.0\n40,2.0\n100,3.0\n")
    assert run_state(tmp_path, 100) == "done"  # a copy of a finished run (as docs/ keeps one)
    assert run_state(tmp_path, 200) == "partial"  # (which cannot be extended: the loop refuses, tested in figures)


def test_copy_figure_runs_copies_finished_runs_only(tmp_path):
    src, dst = tmp_path / "runs", tmp_path / "copy"
    for seed, last in ((0, 100), (1, 40)):
        run = src / "dmc-ball_in_cup-catch" / "sac" / f"s{seed}"
        run.mkdir(parents=True)
        atomic_write_json(run / "config.json", run_metadata(TrainConfig(task="dmc:ball_in_cup-catch", steps=100)))
        (run / "metrics.csv").write_text(f"step,eval_return\n0,1.0\n{last},2.0\n")
        (run / "checkpoints").mkdir()
    script = Path(__file__).parents[1] / "benchmarks" / "copy_figure_runs.sh"
    done = subprocess.run(["bash", str(script), f"{src}/", str(dst)], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHON": sys.executable})
    assert "copied 1 finished runs" in done.stdout and "left out" in done.stderr and "s1: not finished" in done.stderr
    copied = dst / "dmc-ball_in_cup-catch" / "sac"
    assert sorted(p.name for p in copied.iterdir()) == ["s0"]
    assert sorted(p.name for p in (copied / "s0").iterdir()) == ["config.json", "metrics.csv"]
    assert (copied / "s0" / "metrics.csv").read_text() == (src / "dmc-ball_in_cup-catch/sac/s0/metrics.csv").read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_grid_starts_no_more_runs_and_says_what_is_left(tmp_path, monkeypatch, capsys, workers):
    """Seed 0's run gets SIGTERM and stops after its checkpoint: the grid starts no more runs and says what is left;
    its progress bar counts the stopped run up to its last metrics row, not whole.
    Threads stand in for the pool's processes and a stand-in `train` for training (what is tested is the grid's
    bookkeeping; tests/test_runs.py tests the loop's stop, test_a_stop_signal_to_an_idle_pool_worker... a real
    pool's workers)."""
    import concurrent.futures as cf
    import threading

    import smiling.experiments.grid as grid

    started, got, seed_1_running = [], [], threading.Event()

    def fake_train(cfg, path, resume=False, quiet=False):
        started.append(cfg.seed)
        if cfg.seed == 1:
            seed_1_running.set()
        if cfg.seed == 0:
            if workers == 2:  # both workers busy when the signal comes
                assert seed_1_running.wait(10)
            atomic_write_json(path / "config.json", run_metadata(cfg))  # a run begun (stopped past its start)
            (path / "metrics.csv").write_text("step,return\n50,1.0\n")  # ... and stopped at step 50
            signal.raise_signal(signal.SIGTERM)  # handled in the main thread, whichever thread raises it
            workers_handler.requested = signal.SIGTERM  # (its loop passes it on to its worker's handler)
            raise TrainingStopped("stopped by SIGTERM at step 50 after a checkpoint", signal.SIGTERM)
        time.sleep(0.3)
        return {"step": cfg.steps}

    monkeypatch.setattr(grid, "train", fake_train)
    monkeypatch.setattr(grid, "process_pool", lambda n, stop=None: cf.ThreadPoolExecutor(n))
    workers_handler = StopSignals(message=None)  # (not installed) the threads' stand-in for a pool worker's
    monkeypatch.setattr(grid, "_worker_signals", workers_handler)
    # stands in for the real loop's handler with one worker (no pool, no grid handler); never the end of pytest
    before = signal.signal(signal.SIGTERM, lambda *_: got.append(1))
    mine = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(TrainingStopped, match=rf"SIGTERM \(of 4 runs to do: 1 checkpointed mid-way, "
                                                  rf"{4 - workers} not started, 0 failed\): rerun the same command"):
            run_grid(tmp_path / "exp", ["dmc:point_mass-easy"], ["sac"], [0, 1, 2, 3], 100, parse_overrides(TINY),
                     workers=workers)
        bar = capsys.readouterr().err.split("\r")[-1]  # its last drawing
        done = 50 + (100 if workers == 2 else 0)  # seed 0 at step 50 (and seed 1 trained, beside it)
        assert f" {done}/400 " in bar and f"runs={workers - 1}/4" in bar, bar
        assert sorted(started) == list(range(workers))  # on two workers seed 1 had started beside seed 0
        assert got == ([1] if workers == 1 else [])  # with a pool, the grid's own handler took it
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


def test_the_progress_bar_moves_while_a_run_trains_in_the_grids_own_process(tmp_path, monkeypatch, capsys):
    """With one worker the run trains in the grid's own process: a thread polls its metrics, so the bar moves while
    it trains (it stood still until the run ended, hours for a figure's run)."""
    import threading

    import smiling.experiments.grid as grid

    polled, read = threading.Event(), grid.last_metrics_step

    def last_metrics_step(run_dir):
        step = read(run_dir)
        if step == 50 and threading.current_thread() is not threading.main_thread():
            polled.set()  # the poller read the row: it draws it before it stops
        return step

    def fake_train(cfg, path, resume=False, quiet=False):
        (path / "metrics.csv").write_text("step,return\n50,1.0\n")
        assert polled.wait(10)  # polled while it trains
        return {"step": cfg.steps}

    monkeypatch.setattr(grid, "train", fake_train)
    monkeypatch.setattr(grid, "last_metrics_step", last_metrics_step)
    monkeypatch.setattr(grid, "POLL_S", 0.05)
    run_grid(tmp_path / "exp", ["dmc:point_mass-easy"], ["sac"], [0], 100, parse_overrides(TINY), workers=1)
    drawings = capsys.readouterr().err.split("\r")
    assert any(" 50/100 " in d and "running=1" in d for d in drawings), drawings
    assert " 100/100 " in drawings[-1] and "runs=1/1" in drawings[-1], drawings[-1]


def test_the_progress_bar_counts_as_running_only_the_runs_a_worker_has(tmp_path, monkeypatch, capsys):
    """Two workers, four runs: the bar says 2 running, not 4 (it counted the runs waiting for a worker too: a
    figure's grid showed "running=18" on two cores for hours). Threads stand in for the pool's processes."""
    import concurrent.futures as cf

    import smiling.experiments.grid as grid

    def fake_train(cfg, path, resume=False, quiet=False):
        time.sleep(0.2)
        return {"step": cfg.steps}

    monkeypatch.setattr(grid, "train", fake_train)
    monkeypatch.setattr(grid, "process_pool", lambda n, stop=None: cf.ThreadPoolExecutor(n))
    monkeypatch.setattr(grid, "POLL_S", 0.02)
    run_grid(tmp_path / "exp", ["dmc:point_mass-easy"], ["sac"], [0, 1, 2, 3], 100, parse_overrides(TINY), workers=2)
    drawings = capsys.readouterr().err.split("\r")
    running = [int(m.group(1)) for d in drawings for m in [re.search(r"running=(\d+)", d)] if m]
    assert max(running) == 2 and running[-1] == 0, running
    assert "runs=4/4" in drawings[-1], drawings[-1]


def test_the_progress_bars_rate_counts_the_steps_taken_since_it_started(tmp_path, monkeypatch, capsys):
    """A run resumed at 99,000 of 100,000 steps: the bar starts there, and its steps/s (hence its time left) come
    from the 1,000 steps taken since (it divided all 100,000 by the time: a figure's grid, resumed, showed 8 times
    its real rate and an 8 times too short time left)."""
    import smiling.experiments.grid as grid

    grid_args = (tmp_path / "exp", ["dmc:point_mass-easy"], ["sac"], [0], 100_000, parse_overrides(TINY))
    spec, = expand(*grid_args)
    spec.run_dir.mkdir(parents=True)
    atomic_write_json(spec.run_dir / "config.json", run_metadata(spec.config))
    (spec.run_dir / "metrics.csv").write_text("step,return\n99000,1.0\n")

    def fake_train(cfg, path, resume=False, quiet=False):
        time.sleep(0.5)
        return {"step": cfg.steps}

    monkeypatch.setattr(grid, "train", fake_train)
    run_grid(*grid_args, workers=1)
    last = capsys.readouterr().err.split("\r")[-1]
    rate, unit = re.search(r"([\d.]+)(step/s|s/step)", last).groups()
    steps_per_s = float(rate) if unit == "step/s" else 1 / float(rate)
    assert " 100000/100000 " in last and steps_per_s <= 1_000 / 0.5, last  # (all 100,000: 200,000 / s)


def test_a_poller_that_fails_stops_polling_and_the_run_goes_on(monkeypatch):
    """Drawing fails in the poller (stderr gone): it stops, and the run it watched is not disturbed; the grid's next
    drawing, in the main thread, meets the same error (its bar is drawn without tqdm's lock, which a dead poller
    would hold)."""
    import smiling.experiments.grid as grid

    monkeypatch.setattr(grid, "POLL_S", 0.01)
    calls = []

    def progress(running):
        calls.append(running)
        raise BrokenPipeError("stderr is gone")

    with grid._polled(progress, "r"):
        time.sleep(0.1)
    assert calls == [["r"]]
    with grid._polled(progress, "r", poll=False):  # quiet: nothing polls
        time.sleep(0.05)
    assert calls == [["r"]]
