import dataclasses
import json
import pickle
import shutil
import signal
import threading
import warnings

import numpy as np
import pytest

from smiling.algos import load_config, train
from smiling.algos.registry import config_from_dict, config_to_dict
from smiling.runs import Checkpoints, StopSignals, TrainingStopped, last_metrics_step, read_metrics, truncate_metrics
from smiling.utils.io import atomic_save_npz, atomic_write_json, load_npz, read_json

from conftest import TINY_CLI, TINY_SAC, comparable, crash_after_row, sigterm_fails_the_test, tiny_config

def agent_bytes(run_dir):
    return (Checkpoints(run_dir).latest() / "agent.msgpack").read_bytes()


def test_run_directory_layout_and_config_round_trip(tmp_path):
    cfg = tiny_config(steps=100)
    summary = train(cfg, tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    assert summary["step"] == 100
    for name in ("config.json", "metrics.csv", "curve.png", "checkpoints/latest.json"):
        assert (run / name).exists(), name
    assert load_config(run) == cfg
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == [0, 50, 100]
    assert rows[0]["eval_return"] != "" and rows[-1]["eval_return"] != ""
    latest = Checkpoints(run).latest()
    assert json.loads((latest / "loop.json").read_text())["step"] == 100
    assert set(p.name for p in latest.iterdir()) == {"agent.msgpack", "buffer.npz", "loop.json"}


def test_same_seed_same_curve(tmp_path):
    train(tiny_config(), tmp_path / "a", quiet=True)
    train(tiny_config(), tmp_path / "b", quiet=True)
    train(tiny_config(seed=1), tmp_path / "c", quiet=True)
    assert comparable(read_metrics(tmp_path / "a")) == comparable(read_metrics(tmp_path / "b"))
    assert agent_bytes(tmp_path / "a") == agent_bytes(tmp_path / "b")
    assert comparable(read_metrics(tmp_path / "a")) != comparable(read_metrics(tmp_path / "c"))


def test_sampled_evaluation_changes_only_the_eval_columns(tmp_path):
    kw = dict(task="dmc:cartpole-swingup", steps=100, eval_every=50, eval_episodes=2)
    train(tiny_config(**kw), tmp_path / "mean", quiet=True)
    train(tiny_config(eval_stochastic=True, **kw), tmp_path / "sampled", quiet=True)
    mean, sampled = read_metrics(tmp_path / "mean"), read_metrics(tmp_path / "sampled")
    evals = ("eval_return", "eval_return_std")
    # the evaluation policy must not disturb training: same training rows, same agent
    assert [{k: v for k, v in r.items() if k not in evals} for r in comparable(mean)] == \
        [{k: v for k, v in r.items() if k not in evals} for r in comparable(sampled)]
    assert agent_bytes(tmp_path / "mean") == agent_bytes(tmp_path / "sampled")
    assert [r["eval_return"] for r in mean] != [r["eval_return"] for r in sampled]
    assert all(r["eval_return"] != "" for r in sampled if r["step"] in ("0", "50", "100"))


@pytest.fixture(scope="module")
def full_250(tmp_path_factory):
    """An uninterrupted run of ``tiny_config(steps=250)``, for the interrupted ones to be compared with."""
    run_dir = tmp_path_factory.mktemp("full") / "run"
    train(tiny_config(steps=250), run_dir, quiet=True)
    return run_dir


def test_interrupted_run_resumes_exactly(tmp_path, monkeypatch, full_250):
    cfg = tiny_config(steps=250)
    # Crash right after the row of step 150 is written: the checkpoint is at step 100, so the rows of
    # steps 150 must be dropped and redone on resume.
    crash_after_row(cfg, tmp_path / "cut", monkeypatch, 150)
    assert [int(r["step"]) for r in read_metrics(tmp_path / "cut")][-1] == 150
    assert json.loads((Checkpoints(tmp_path / "cut").latest() / "loop.json").read_text())["step"] == 100

    train(cfg, tmp_path / "cut", resume=True, quiet=True)
    full, cut = read_metrics(full_250), read_metrics(tmp_path / "cut")
    assert [int(r["step"]) for r in cut] == [0, 50, 100, 150, 200, 250]
    assert comparable(cut) == comparable(full)
    assert agent_bytes(tmp_path / "cut") == agent_bytes(full_250)
    # wall time keeps growing across the resume
    walls = [float(r["wall_time"]) for r in cut]
    assert walls == sorted(walls)


def signal_after_row(monkeypatch, step: int, *signals) -> None:
    """Make the loop receive ``signals`` (delivered at once: this is the main thread) right after it writes the
    metrics row of ``step``."""
    import smiling.algos.offpolicy as loop_mod

    original = loop_mod.MetricsLogger.log

    def log_then_signal(self, row):
        original(self, row)
        if row["step"] == step:
            for s in signals:
                signal.raise_signal(s)

    monkeypatch.setattr(loop_mod.MetricsLogger, "log", log_then_signal)


def test_sigterm_checkpoints_at_the_episode_end_and_the_run_resumes_exactly(tmp_path, monkeypatch, full_250):
    assert threading.current_thread() is threading.main_thread(), "only the main thread receives signals"
    cfg = tiny_config(steps=250)
    with sigterm_fails_the_test() as before:
        signal_after_row(monkeypatch, 150, signal.SIGTERM)  # between the checkpoints of steps 100 and 200
        with pytest.raises(TrainingStopped, match="SIGTERM at step 150 .*--resume") as stopped:
            train(cfg, tmp_path / "cut", quiet=True)
        assert signal.getsignal(signal.SIGTERM) is before  # the loop gives the handler back
    assert stopped.value.signum == signal.SIGTERM
    loop = json.loads((Checkpoints(tmp_path / "cut").latest() / "loop.json").read_text())
    assert (loop["step"], loop["next_ckpt"]) == (150, 200)  # the stop's checkpoint keeps the cadence
    assert [int(r["step"]) for r in read_metrics(tmp_path / "cut")] == [0, 50, 100, 150]  # nothing to redo
    back = pickle.loads(pickle.dumps(stopped.value))  # as a grid's worker process sends it
    assert (type(back), str(back), back.signum) == (TrainingStopped, str(stopped.value), signal.SIGTERM)

    monkeypatch.undo()
    train(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert comparable(read_metrics(tmp_path / "cut")) == comparable(read_metrics(full_250))  # run unchanged
    assert agent_bytes(tmp_path / "cut") == agent_bytes(full_250)


def test_a_signal_while_the_reward_model_is_built_stops_before_training(tmp_path, monkeypatch):
    """The expert's score model can take minutes to fit: a SIGTERM then lets the build finish and stops the run before
    it writes anything (a grid counts it not started); the same command then starts it."""
    import smiling.algos.registry as registry
    from smiling.experiments.grid import run_grid

    real_build = registry.make_reward_model

    def build_then_signal(*args):
        model = real_build(*args)
        signal.raise_signal(signal.SIGTERM)  # handled in this (main) thread at once
        return model

    monkeypatch.setattr(registry, "make_reward_model", build_then_signal)
    cfg = tiny_config(algo="dac", steps=100)
    with sigterm_fails_the_test() as before:
        with pytest.raises(TrainingStopped, match="SIGTERM before training, with nothing written: run the same "
                                                  "command again") as stopped:
            train(cfg, tmp_path / "r", quiet=True)
        assert stopped.value.signum == signal.SIGTERM and not (tmp_path / "r").exists()
        assert signal.getsignal(signal.SIGTERM) is before
        with pytest.raises(TrainingStopped, match=r"\(of 1 runs to do: 0 checkpointed mid-way, 1 not started, "):
            run_grid(tmp_path / "exp", [cfg.task], ["dac"], [0], 100, {"horizon": "50", "seed_steps": "50"},
                     workers=1, quiet=True)
    monkeypatch.undo()
    train(cfg, tmp_path / "r", quiet=True)  # the same command starts it
    assert [int(r["step"]) for r in read_metrics(tmp_path / "r")][-1] == 100


def test_a_run_directory_is_trained_by_one_process_at_a_time(tmp_path):
    from smiling.runs import run_lock

    cfg = tiny_config(steps=100)
    with run_lock(tmp_path / "r"):  # as another process training it would hold it (flock: per open file)
        with pytest.raises(RuntimeError, match=r"r is being trained by process \d+ on .* right now"):
            train(cfg, tmp_path / "r", quiet=True)
        assert not (tmp_path / "r" / "config.json").exists()  # refused before writing anything of the run
    train(cfg, tmp_path / "r", quiet=True)  # released: it trains
    assert [int(r["step"]) for r in read_metrics(tmp_path / "r")][-1] == 100


def test_an_ignored_signal_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a job started with `&`
    try:
        with StopSignals() as stop:
            signal.raise_signal(signal.SIGINT)
            assert stop.requested is None
            signal.raise_signal(signal.SIGTERM)
            assert stop.requested == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_stop_inside_another_shares_its_request_and_a_second_signal_acts_at_once():
    """A run's loop inside a grid worker's own handler (which keeps the worker alive between runs): the first
    SIGTERM is the request of both (the worker then starts no more runs), the second ends the process at once."""
    ended = []

    def end_of_the_process(signum, frame):  # stands in for it
        ended.append(signum)

    before = signal.signal(signal.SIGTERM, end_of_the_process)
    try:
        with StopSignals(message=None) as worker, StopSignals() as loop:
            signal.raise_signal(signal.SIGTERM)
            assert loop.requested == worker.requested == signal.SIGTERM and ended == []
            signal.raise_signal(signal.SIGTERM)
            assert ended == [signal.SIGTERM]  # not taken as the worker's first request
        assert signal.getsignal(signal.SIGTERM) is end_of_the_process
        with StopSignals(message=None) as worker:
            signal.raise_signal(signal.SIGTERM)  # between two runs, or while one is set up
            with StopSignals() as loop:
                assert loop.requested == signal.SIGTERM  # the run's loop takes it over: it stops at its checkpoint
        assert ended == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is end_of_the_process
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_stopped_demo_says_to_run_it_again(tmp_path, monkeypatch, capsys):
    import smiling.cli as cli

    def stopped(*a, **k):
        raise TrainingStopped("stopped by SIGINT at step 5000 after a checkpoint: continue with --resume X",
                              signal.SIGINT)

    monkeypatch.setattr(cli, "train", stopped)
    assert cli.main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert "demo stopped by SIGINT at a checkpoint or before training, losing nothing: run the same command (make " \
           "demo) again" in err
    assert "--resume" not in err


def test_a_signal_in_the_last_episode_finishes_the_run_then_stops(tmp_path, monkeypatch):
    signal_after_row(monkeypatch, 100, signal.SIGTERM)
    with sigterm_fails_the_test(), pytest.raises(TrainingStopped, match="at step 100, the run's last .finished"):
        train(tiny_config(steps=100), tmp_path / "r", quiet=True)  # (in a grid: start no next run)
    assert [int(r["step"]) for r in read_metrics(tmp_path / "r")] == [0, 50, 100]
    assert (tmp_path / "r" / "curve.png").exists()


def test_the_cli_says_how_to_continue_a_stopped_run(tmp_path, monkeypatch, capsys):
    from smiling.cli import main

    signal_after_row(monkeypatch, 150, signal.SIGTERM)
    out = tmp_path / "run"
    with sigterm_fails_the_test():
        code = main(["train-expert", "--task", "dmc:ball_in_cup-catch", "--steps", "250", "--out", str(out),
                     *TINY_CLI])
    assert code == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert f"stopped by SIGTERM at step 150 after a checkpoint: continue with --resume {out}" in err
    assert "Traceback" not in err
    assert Checkpoints(out).steps() == [150]


def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path, monkeypatch):
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a worker process may ignore SIGINT
    try:
        signal_after_row(monkeypatch, 150, signal.SIGINT, signal.SIGINT)
        with pytest.raises(KeyboardInterrupt) as stopped:
            train(tiny_config(steps=250), tmp_path / "cut", quiet=True)
        assert type(stopped.value) is KeyboardInterrupt  # not TrainingStopped: no wait for the episode's end
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert json.loads((Checkpoints(tmp_path / "cut").latest() / "loop.json").read_text())["step"] == 100
    finally:
        signal.signal(signal.SIGINT, before)


def test_refuses_to_overwrite_and_to_resume_nothing(tmp_path):
    train(tiny_config(steps=50), tmp_path / "r", quiet=True)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(steps=50), tmp_path / "r", quiet=True)
    with pytest.raises(FileNotFoundError, match="config.json"):
        train(tiny_config(steps=50), tmp_path / "none", resume=True, quiet=True)


@pytest.mark.parametrize("field,value,match", [("steps", 0, "steps"), ("horizon", 0, "horizon"),
                                               ("task", "dmc:what-ever", "smiling tasks"),
                                               ("seed_steps", -1, "seed_steps"),
                                               ("seed", 1.5, "seed: expected int, got 1.5"),
                                               ("steps", 200.0, "steps: expected int, got 200.0"),
                                               ("keep_termination", "no", "keep_termination: expected bool, got 'no'"),
                                               ("sac", {"batch_size": 32}, "sac: expected a SACConfig, got {"),
                                               ("demos", 3, r"demos: expected str \| None, got 3")])
def test_bad_configs(tmp_path, field, value, match):
    with pytest.raises(ValueError, match=match):
        train(tiny_config(**{field: value}), tmp_path / "r", quiet=True)
    assert not (tmp_path / "r" / "config.json").exists()


def test_each_group_of_settings_checks_its_field_types_when_built_alone():
    """Built directly in Python, a group once got past its types and failed on them later: a comparison
    (``'256' < 1``: TypeError) or a network built of a text width."""
    from smiling.algos.bc import BCConfig
    from smiling.algos.iqlearn import IQLearnConfig
    from smiling.diffusion import Schedule, ScoreConfig
    from smiling.rewards.dac import DacConfig
    from smiling.rewards.smiling import SmilingConfig
    from smiling.rl.dreamer import DreamerConfig
    from smiling.rl.sac import SACConfig
    for build, message in [(lambda: SACConfig(batch_size="256"), "sac.batch_size: expected int, got '256'"),
                           (lambda: Schedule(steps=1.5), "smiling.score.schedule.steps: expected int, got 1.5"),
                           (lambda: ScoreConfig(width="64"), "smiling.score.width: expected int, got '64'"),
                           (lambda: ScoreConfig(width=0), "smiling.score.width must be >= 1, got 0"),
                           (lambda: ScoreConfig(time_dim=1), "time_dim must be even and >= 2, got 1"),
                           (lambda: SmilingConfig(num_levels="8"), "smiling.num_levels: expected int"),
                           (lambda: SmilingConfig(score={"width": 3}), "smiling.score: expected a ScoreConfig"),
                           (lambda: DacConfig(gp_weight="10"), "dac.gp_weight: expected float"),
                           (lambda: IQLearnConfig(num_critics=2.0), "iqlearn.num_critics: expected int"),
                           (lambda: BCConfig(steps="10"), "bc.steps: expected int"),
                           (lambda: DreamerConfig(horizon="15"), "dreamer.horizon: expected int")]:
        with pytest.raises(ValueError, match=message):
            build()


def test_a_list_given_for_a_tuple_setting_is_the_tuple_and_the_run_resumes_with_it(tmp_path):
    """``hidden_dims=[32, 32]`` trained, and then its resume was refused (the saved tuple differs from the list)."""
    cfg = tiny_config(steps=100, sac=dataclasses.replace(TINY_SAC, hidden_dims=list(TINY_SAC.hidden_dims)))
    assert cfg.sac.hidden_dims == TINY_SAC.hidden_dims and isinstance(cfg.sac.hidden_dims, tuple)
    train(cfg, tmp_path / "r", quiet=True)
    train(dataclasses.replace(cfg, steps=150), tmp_path / "r", resume=True, quiet=True)
    numpy_numbers = tiny_config(seed=np.int64(3), sac=dataclasses.replace(TINY_SAC, discount=np.float32(0.5)))
    assert type(numpy_numbers.seed) is int and type(numpy_numbers.sac.discount) is float


def test_unknown_config_field_is_named():
    d = config_to_dict(tiny_config())
    d["learning_rte"] = 1
    with pytest.raises(ValueError, match="learning_rte"):
        config_from_dict(d)


def test_a_config_json_of_the_wrong_form_or_types_is_named(tmp_path):
    """They were a KeyError or a TypeError deep in a config's checks (a resume, evaluate or figure printed a
    traceback); now one line naming the file and the field."""
    d = config_to_dict(tiny_config())
    config_json = tmp_path / "config.json"
    for saved, match in [([1, 2], r'no "config" object'), ({"conf": d}, r'no "config" object'),
                         ({"config": {**d, "sac": {**d["sac"], "hidden_dims": "abc"}}},
                          r"config\.sac\.hidden_dims: expected tuple\[int, \.\.\.\], got 'abc'"),
                         ({"config": {**d, "steps": "100"}}, r"config\.steps: expected int, got '100'"),
                         ({"config": {**d, "relabel": "later"}},
                          r"config\.relabel must be one of sample, update, got 'later'")]:
        atomic_write_json(config_json, saved)
        with pytest.raises(ValueError, match=match) as e:
            load_config(tmp_path)
        assert str(config_json) in str(e.value)
    atomic_write_json(config_json, {"config": {**d, "sac": {**d["sac"], "target_entropy": -2}}})  # an int is a float
    assert load_config(tmp_path).sac.target_entropy == -2


def test_checkpoints_prune_or_keep_only_the_policy(tmp_path):
    files = {"agent.msgpack": b"a", "buffer.npz": b"b", "loop.json": b"{}"}
    plain, keeping = Checkpoints(tmp_path / "plain"), Checkpoints(tmp_path / "keep", keep_policies=True)
    for step in (10, 20, 30):
        plain.save(step, files)
        keeping.save(step, files)
    assert plain.steps() == [30] and keeping.steps() == [10, 20, 30]
    assert sorted(f.name for f in keeping.at(10).iterdir()) == ["agent.msgpack", "loop.json", "policy-kept"]
    assert sorted(f.name for f in keeping.at().iterdir()) == ["agent.msgpack", "buffer.npz", "loop.json", "policy-kept"]
    assert keeping.latest() == keeping.at(30)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 10 \(checkpoints on disk: 30;"):
        plain.at(10)
    with pytest.raises(FileNotFoundError, match="no checkpoint yet"):
        Checkpoints(tmp_path / "none").at()


def test_truncate_metrics_keeps_rows_up_to_step(tmp_path):
    train(tiny_config(steps=150), tmp_path / "r", quiet=True)
    assert truncate_metrics(tmp_path / "r", 60) == 2
    assert [int(r["step"]) for r in read_metrics(tmp_path / "r")] == [0, 50]


def test_a_resume_drops_a_cut_or_damaged_metrics_tail_and_a_copy_without_checkpoints_stays_refused(tmp_path):
    """A last line cut short ("2", no line end) was read as env step 2: a copy of a run without its checkpoints then
    passed for a run killed before its first checkpoint and was started over in place, its metrics wiped; resumed,
    the bogus row stayed between steps 200 and 250. NUL bytes (a power cut) stopped a resume with "could not
    convert string to float" after config.json had been changed. Without latest.json, a run with its checkpoint
    folders said it held no checkpoint."""
    run = tmp_path / "r"
    train(tiny_config(steps=200), run, quiet=True)
    rows = comparable(read_metrics(run))
    for i, debris in enumerate([b"2", b"\0" * 200, None]):
        copy = tmp_path / f"c{i}"
        shutil.copytree(run, copy)
        if debris is None:
            (copy / "checkpoints" / "latest.json").unlink()
        else:
            with open(copy / "metrics.csv", "ab") as f:
                f.write(debris)
            assert last_metrics_step(copy) == 200 and comparable(read_metrics(copy)) == rows
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(tiny_config(steps=300), copy, resume=True, quiet=True)
        assert any("latest.json is missing: using the newest checkpoint folder, step-000000200" in str(w.message)
                   for w in caught) == (debris is None)
        resumed = read_metrics(copy)
        steps = [int(r["step"]) for r in resumed]
        assert comparable(resumed[:len(rows)]) == rows and steps == sorted(set(steps)) and steps[-1] == 300
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("checkpoints"))
    with open(bare / "metrics.csv", "ab") as f:
        f.write(b"2")
    before = (bare / "metrics.csv").read_bytes()
    with pytest.raises(FileNotFoundError, match="its metrics reach env step 200 but it holds no checkpoint"):
        train(tiny_config(steps=300), bare, resume=True, quiet=True)
    assert (bare / "metrics.csv").read_bytes() == before


def test_a_fresh_run_refuses_a_folder_with_metrics_or_checkpoints_but_no_config(tmp_path):
    """A folder whose config.json was deleted got a fresh run that appended its rows to the metrics.csv it found
    (steps 0..200 then 0..100) and deleted the checkpoints it found."""
    run = tmp_path / "r"
    train(tiny_config(steps=100), run, quiet=True)
    (run / "config.json").unlink()
    before = (run / "metrics.csv").read_bytes()
    with pytest.raises(FileExistsError, match="holds metrics.csv and checkpoints but no config.json"):
        train(tiny_config(steps=100), run, quiet=True)
    assert (run / "metrics.csv").read_bytes() == before and Checkpoints(run).steps() == [100]


def test_a_checkpoint_of_another_network_size_or_task_is_refused_naming_its_file(tmp_path):
    """Flax restores arrays of any shape: an agent.msgpack of a wider network failed inside JAX with no file named
    (evaluate) or after config.json had recorded the resume's new budget; a config.json of another task whose sizes
    match evaluated the policy on that task."""
    from smiling.evaluation import load_policy
    from smiling.utils.io import MismatchError
    small, wide = tmp_path / "small", tmp_path / "wide"
    train(tiny_config(steps=100), small, quiet=True)
    train(tiny_config(steps=100, sac=dataclasses.replace(TINY_SAC, hidden_dims=(48, 48))), wide, quiet=True)
    shutil.copy(Checkpoints(wide).latest() / "agent.msgpack", Checkpoints(small).latest() / "agent.msgpack")
    config = (small / "config.json").read_bytes()
    message = r"step-000000100/agent.msgpack: does not fit the run's config.json \(.*saved with shape \((\d+, )?48"
    with pytest.raises(MismatchError, match=message):
        load_policy(small)
    with pytest.raises(MismatchError, match=message):
        train(tiny_config(steps=200), small, resume=True, quiet=True)
    assert (small / "config.json").read_bytes() == config
    # another depth: Flax's own key error, said as the same mismatch (it read "damaged checkpoint file")
    from smiling.rl.sac import SAC
    deep = SAC(8, 2, dataclasses.replace(TINY_SAC, hidden_dims=(32, 32, 32)))
    with pytest.raises(MismatchError, match="its arrays are not those this config builds"):
        deep.from_bytes(SAC(8, 2, TINY_SAC).to_bytes(SAC(8, 2, TINY_SAC).init(0)))
    loop_file = Checkpoints(wide).latest() / "loop.json"
    loop = json.loads(loop_file.read_text())
    assert loop["task"] == "dmc:ball_in_cup-catch"
    loop_file.write_text(json.dumps({**loop, "task": "dmc:cartpole-swingup"}))
    for action in (lambda: load_policy(wide), lambda: train(tiny_config(steps=200, sac=dataclasses.replace(
            TINY_SAC, hidden_dims=(48, 48))), wide, resume=True, quiet=True)):
        with pytest.raises(MismatchError, match="loop.json: a checkpoint of dmc:cartpole-swingup, but the run's "
                                                "config.json says dmc:ball_in_cup-catch"):
            action()


def test_atomic_helpers(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.float32), "b": np.eye(2)}
    atomic_save_npz(tmp_path / "x.npz", arrays)
    back = load_npz(tmp_path / "x.npz")
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], back[k])
    atomic_write_json(tmp_path / "c.json", {"k": [1, 2]})
    assert read_json(tmp_path / "c.json") == {"k": [1, 2]}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="bad.json"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz")
    # object arrays are refused on load (no pickle)
    np.savez(tmp_path / "obj.npz", o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        load_npz(tmp_path / "obj.npz")


def test_atomic_writes_get_normal_file_permissions(tmp_path):
    import os

    from smiling.utils.io import atomic_write_bytes

    atomic_write_bytes(tmp_path / "f.bin", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~mask


def test_plot_title_names_task_run_label_and_seed(tmp_path):
    from smiling.runs import plot_title

    train(tiny_config(steps=50, seed=4), tmp_path / "r", quiet=True)
    saved = read_json(tmp_path / "r" / "config.json")
    assert saved["label"] == "sac" and plot_title(saved, "x") == "dmc:ball_in_cup-catch: sac, seed 4"
    assert plot_title({}, "fallback") == "fallback"
    old = {"algo": "sac", "config": {"task": "dmc:cartpole-swingup", "seed": 0, "rl": "dreamer"}}  # no label yet
    assert plot_title(old, "x") == "dmc:cartpole-swingup: sac+dreamer, seed 0"
    assert plot_title({**old, "label": "smiling+actions+dreamer"}, "x") == \
        "dmc:cartpole-swingup: smiling+actions+dreamer, seed 0"


def test_plotting_a_run_with_no_returns_or_a_damaged_row_is_refused_and_keeps_its_curve(tmp_path):
    """An empty metrics.csv drew a blank curve.png over the last one (exit 0); a bad row said only "could not
    convert string to float"."""
    from smiling.runs import plot_run

    (tmp_path / "curve.png").write_bytes(b"the last curve")
    header = "step,train_return,eval_return,eval_return_std\n"
    for body, match in [("", "no return to plot yet"), ("1000,,abc,\n", r"holds no number in 'step' or one of "
                                                                        r"\['eval_return', 'eval_return_std'\]")]:
        (tmp_path / "metrics.csv").write_text(header + body)
        with pytest.raises(ValueError, match=match) as e:
            plot_run(tmp_path)
        assert str(tmp_path / "metrics.csv") in str(e.value)
        assert (tmp_path / "curve.png").read_bytes() == b"the last curve"
    (tmp_path / "metrics.csv").write_text(header + "0,,1.5,\n1000,2.0,3.5,0.5\n")
    assert plot_run(tmp_path) == tmp_path / "curve.png" and (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_extending_a_finished_run_continues_it(tmp_path):
    train(tiny_config(steps=150), tmp_path / "ext", quiet=True)
    # (its evaluations now fall at 150 and 250, a fresh 250-step run's at 100 and 200: said, not only recorded)
    with pytest.warns(UserWarning, match=r"budget, 150 steps, is no multiple of its eval_every \(100\)"):
        train(tiny_config(steps=250), tmp_path / "ext", resume=True, quiet=True)
    assert load_config(tmp_path / "ext").steps == 250
    assert read_json(tmp_path / "ext" / "config.json")["extended_from_steps"] == [150]
    steps = [int(r["step"]) for r in read_metrics(tmp_path / "ext")]
    assert steps == [0, 50, 100, 150, 200, 250]
    with pytest.raises(ValueError, match=r"\['seed'\]; only steps, checkpoint_every, keep_policies"):
        train(tiny_config(steps=300, seed=9), tmp_path / "ext", resume=True, quiet=True)
    with pytest.raises(ValueError, match="fewer than the run's 250; a budget can only grow"):
        train(tiny_config(steps=200), tmp_path / "ext", resume=True, quiet=True)


def test_a_finished_run_resumed_by_other_code_records_nothing(tmp_path, monkeypatch):
    import smiling.algos.registry as registry

    train(tiny_config(steps=50), tmp_path / "r", quiet=True)
    before = read_json(tmp_path / "r" / "config.json")
    monkeypatch.setattr(registry, "source_commit", lambda: "other")
    train(tiny_config(steps=50, checkpoint_every=10), tmp_path / "r", resume=True, quiet=True)  # nothing to train
    assert read_json(tmp_path / "r" / "config.json") == before


def test_turning_keep_policies_off_keeps_the_policies_kept_so_far(tmp_path):
    files = {"agent.msgpack": b"a", "buffer.npz": b"b", "loop.json": b"{}"}
    for step in (10, 20):
        Checkpoints(tmp_path, keep_policies=True).save(step, files)
    for step in (30, 40):
        Checkpoints(tmp_path).save(step, files)
    assert Checkpoints(tmp_path).steps() == [10, 20, 40]  # 30's full checkpoint pruned, the kept policies stay



def test_a_run_resumed_by_other_code_records_the_commit(tmp_path):
    from smiling.algos.offpolicy import _record_changes
    from smiling.algos.registry import run_metadata
    from smiling.runs import run_commits

    cfg = tiny_config()
    (tmp_path / "r").mkdir()
    atomic_write_json(tmp_path / "r" / "config.json", {**run_metadata(cfg), "commit": "aaa"})
    _record_changes(tmp_path / "r", cfg, 100, "aaa")  # same code, same settings: nothing to write
    assert "resumed_at" not in read_json(tmp_path / "r" / "config.json")
    _record_changes(tmp_path / "r", cfg, 100, "bbb+dirty")
    _record_changes(tmp_path / "r", cfg, 150, "bbb+dirty")
    _record_changes(tmp_path / "r", dataclasses.replace(cfg, steps=400), 200, "ccc")
    saved = read_json(tmp_path / "r" / "config.json")
    assert saved["resumed_at"] == [{"step": 100, "commit": "bbb+dirty"}, {"step": 200, "commit": "ccc"}]
    assert saved["extended_from_steps"] == [200] and saved["config"]["steps"] == 400
    assert run_commits(saved) == ["aaa", "bbb+dirty", "ccc"]
    assert run_commits({"config": {}}) == [None]  # a run written before runs recorded their commit
    # another count of usable CPUs (XLA splits some sums by it) is recorded too; a run that recorded none is not
    _record_changes(tmp_path / "r", dataclasses.replace(cfg, steps=400), 300, "ccc", cpus=saved["cpus"])
    assert read_json(tmp_path / "r" / "config.json")["resumed_at"] == saved["resumed_at"]
    _record_changes(tmp_path / "r", dataclasses.replace(cfg, steps=400), 300, "ccc", cpus=saved["cpus"] + 1)
    assert read_json(tmp_path / "r" / "config.json")["resumed_at"][-1] == {"step": 300, "commit": "ccc",
                                                                          "cpus": saved["cpus"] + 1}
    (tmp_path / "old").mkdir()
    atomic_write_json(tmp_path / "old" / "config.json", {k: v for k, v in run_metadata(cfg).items() if k != "cpus"})
    _record_changes(tmp_path / "old", cfg, 100, None, cpus=64)
    assert "resumed_at" not in read_json(tmp_path / "old" / "config.json")
