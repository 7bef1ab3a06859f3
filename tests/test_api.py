"""The one-call API, `smiling.imitate`, with an optional Weights & Biases logger (offline: nothing is sent)."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import smiling
from smiling.data import load_demos
from smiling.runs import read_metrics


def _wandb_history_keys(run_dir: Path) -> set[str]:
    """Every key the offline W&B run under RUN_DIR logged in its history, read from its .wandb file (the LevelDB
    log format: 7-byte header, 32 KiB blocks of records with a 7-byte header each; payloads are protobufs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    paths = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    keys = set()
    for path in paths:  # one file per session of the run (a resumed run adds one)
        keys |= _history_keys(path.read_bytes(), pb)
    return keys


def _history_keys(raw: bytes, pb) -> set[str]:
    off, block, payload, keys = 7, 32768, b"", set()
    while off + 7 <= len(raw):
        if block - off % block < 7:
            off += block - off % block
            continue
        _, n, kind = struct.unpack("<IHB", raw[off:off + 7])
        if kind == 0 and n == 0:
            break
        payload += raw[off + 7:off + 7 + n]
        off += 7 + n
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(payload)
            payload = b""
            if record.WhichOneof("record_type") == "history":
                keys |= {i.key or "/".join(i.nested_key) for i in record.history.item}
    return keys


TINY = dict(horizon=50, seed_steps=50, update_every=10, eval_every=50, eval_episodes=1, checkpoint_every=50,
            reward_update_every=50, sac={"hidden_dims": (32, 32), "batch_size": 32},
            dac={"width": 32, "steps": 10, "batch_size": 64})


def test_one_call_imitate_with_in_memory_demos_resume_and_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    demos = load_demos("dmc:ball_in_cup-catch").subsample(episodes=2)
    out = tmp_path / "run"
    summary = smiling.imitate("dmc:ball_in_cup-catch", demos=demos, algo="dac", steps=50, out=out, quiet=True,
                              wandb=True, wandb_project="smiling-test", **TINY)
    assert summary["step"] == 50 and (out / "demos.npz").exists()
    saved = json.loads((out / "config.json").read_text())
    assert saved["label"] == "dac" and saved["config"]["demos"] == str(out / "demos.npz")
    assert saved["config"]["dac"]["width"] == 32 and saved["config"]["wandb"] is True
    # the same call with resume=True and a larger budget continues the run (and its W&B run)
    summary = smiling.imitate("dmc:ball_in_cup-catch", demos=demos, algo="dac", steps=100, out=out, quiet=True,
                              resume=True, wandb=True, wandb_project="smiling-test", **TINY)
    assert summary["step"] == 100 and [int(r["step"]) for r in read_metrics(out)][-1] == 100
    rows = read_metrics(out)
    with_values = {k for r in rows for k, v in r.items() if v not in ("", None)}
    assert {"eval_return", "critic_loss"} <= with_values
    assert _wandb_history_keys(out) - {"_step", "_runtime", "_timestamp"} == with_values
    with pytest.raises(TypeError, match="no setting 'nope' \\(settings: "):
        smiling.imitate("dmc:ball_in_cup-catch", out=tmp_path / "x", nope=1)
    with pytest.raises(TypeError, match="no setting 'eval_episode' \\(did you mean eval_episodes"):
        smiling.imitate("dmc:ball_in_cup-catch", out=tmp_path / "x", eval_episode=1)
    with pytest.raises(TypeError, match="SACConfig has no setting 'batchsize' \\(did you mean batch_size"):
        smiling.imitate("dmc:ball_in_cup-catch", out=tmp_path / "x", sac={"batchsize": 64})
    with pytest.raises(FileExistsError):
        smiling.imitate("dmc:ball_in_cup-catch", demos=demos, algo="dac", steps=50, out=out, **TINY)
    assert np.array_equal(load_demos(str(out / "demos.npz")).observations, demos.observations)


def test_imitate_refuses_in_memory_demos_of_another_task_or_an_array_before_writing_anything(tmp_path):
    """Demos of another size were saved as OUT/demos.npz first, and the error named that file; an array given as
    demos was an OSError ("File name too long")."""
    cheetah = load_demos("dmc:cheetah-run")
    with pytest.raises(smiling.data.DemoError, match="the Demos given: demonstrations are for task 'dmc:cheetah-run'"):
        smiling.imitate("dmc:ball_in_cup-catch", demos=cheetah, steps=100, out=tmp_path / "r", quiet=True, **TINY)
    unnamed = smiling.data.Demos(cheetah.observations, cheetah.actions)  # no task in its metadata: sizes decide
    with pytest.raises(smiling.data.DemoError, match=r"the Demos given: observation dimension 17 does not match"):
        smiling.imitate("dmc:ball_in_cup-catch", demos=unnamed, steps=100, out=tmp_path / "r", quiet=True, **TINY)
    with pytest.raises(TypeError, match="demos: a file path, a smiling.data.Demos or None, got ndarray"):
        smiling.imitate("dmc:ball_in_cup-catch", demos=cheetah.observations, out=tmp_path / "r", **TINY)
    assert not (tmp_path / "r").exists()
