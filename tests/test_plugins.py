"""Algorithms and backends of modules outside the library (`smiling.algos.plugins`, examples/nearest_plugin.py)."""

import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from smiling.algos import ALGORITHMS, BACKENDS, load_config
from smiling.algos.plugins import PluginError, register

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def plugin_modules(tmp_path, monkeypatch):
    """examples/ and a folder of test plug-ins on sys.path; returns that folder."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "odd_plugins.py").write_text(
        "import dataclasses\n"
        "from smiling.algos.base import Algorithm, Backend, Variant\n"
        "from smiling.rl import SAC, SACConfig\n"
        "@dataclasses.dataclass\n"
        "class Loose:\n"
        "    x: int = 1\n"
        "TAKEN = Algorithm('dac', 'a second dac')\n"
        "SETTING = Algorithm('horizon', 'named after a run setting')\n"
        "BADNAME = Algorithm('My-Algo', 'not an identifier')\n"
        "LOOSE = Algorithm('loose', 'config not frozen', config=Loose)\n"
        "ORPHAN = Algorithm('orphan', 'runs on a backend nobody registered', backends=('jax_ppo',))\n"
        "NOT_A_RECORD = 42\n"
        "KEYWORD = Algorithm('class', 'a keyword')\n"
        "LABEL_PART = Backend('actions', 'named as a variant', SACConfig, lambda cfg, o, a: None)\n"
        "PRESET = Algorithm('mine', 'with a preset', variants=(Variant('paper', lambda c: c, lambda c: False),))\n"
        "ON_BC = Backend('sac3', 'for bc', SACConfig, lambda cfg, o, a: None, algorithms=('bc',))\n"
        "ON_IQ = Backend('sac4', 'for iqlearn', SACConfig, lambda cfg, o, a: None, algorithms=('iqlearn',))\n"
        "SAC2 = Backend('sac2', 'SAC under another name', SACConfig, lambda cfg, o, a: SAC(o, a, cfg.sac2),\n"
        "               algorithms=('smiling', 'nearest'))\n"
        "BOTH = (SAC2, __import__('nearest_plugin').ALGORITHM)\n")
    return tmp_path


def env(spec: str) -> dict:
    return {"SMILING_PLUGINS": spec}


def test_plugins_are_added_to_copies_of_the_registry(plugin_modules):
    algorithms, backends = register(ALGORITHMS, BACKENDS, env("nearest_plugin:ALGORITHM"), entry_points=[])
    assert list(algorithms)[-1] == "nearest" and list(algorithms)[:-1] == list(ALGORITHMS)
    assert "nearest" not in ALGORITHMS and backends == BACKENDS  # the library's dicts are left alone
    # a backend runs the algorithms it names, a plug-in's among them (backends are registered first)
    algorithms, backends = register(ALGORITHMS, BACKENDS, env("odd_plugins:BOTH"), entry_points=[])
    assert "sac2" in backends and algorithms["smiling"].backends == ("sac", "dreamer", "sac2")
    assert algorithms["nearest"].backends == ("sac", "dreamer", "sac2") and algorithms["dac"] is ALGORITHMS["dac"]


@pytest.mark.parametrize("spec, message", [
    ("nope_module:ALGORITHM", r"importing nope_module failed \(ModuleNotFoundError"),
    ("nearest_plugin", "expected module:attribute"),
    ("nearest_plugin:NOPE", "nearest_plugin has no NOPE"),
    ("odd_plugins:NOT_A_RECORD", "expected a smiling.algos.base.Algorithm or Backend .*got int"),
    ("odd_plugins:TAKEN", "algorithm name 'dac' is taken"),
    ("odd_plugins:SETTING", "algorithm name 'horizon' is taken"),
    ("odd_plugins:BADNAME", "'My-Algo' must be a lower-case Python identifier"),
    ("odd_plugins:LOOSE", "config must be a frozen dataclass"),
    ("odd_plugins:ORPHAN", "names backends that are not registered: jax_ppo"),
    ("odd_plugins:SAC2", "backend 'sac2' names algorithm 'nearest', which is not registered"),
    ("odd_plugins:KEYWORD", "'class' must be a lower-case Python identifier, no keyword"),
    ("odd_plugins:LABEL_PART", "backend name 'actions' is taken"),
    ("odd_plugins:PRESET", "variant 'paper' of algorithm 'mine': presets are the library's"),
    ("odd_plugins:ON_BC", "names algorithm 'bc', which trains no RL agent"),
    ("odd_plugins:ON_IQ", "names algorithm 'iqlearn', which trains an agent or loop of its own"),
])
def test_a_plugin_asked_for_that_cannot_be_taken_is_refused_by_name(plugin_modules, spec, message):
    with pytest.raises(PluginError, match=message):
        register(ALGORITHMS, BACKENDS, env(spec), entry_points=[])


def test_a_broken_entry_point_is_left_out_with_a_warning(plugin_modules):
    eps = [types.SimpleNamespace(name="broken", value="nope_module:X"),
           types.SimpleNamespace(name="taken", value="odd_plugins:TAKEN"),
           types.SimpleNamespace(name="good", value="nearest_plugin:ALGORITHM")]
    with pytest.warns(UserWarning) as caught:
        algorithms, _ = register(ALGORITHMS, BACKENDS, {}, entry_points=eps)
    text = " | ".join(str(w.message) for w in caught)
    assert "importing nope_module failed" in text and "entry point 'broken'" in text
    assert "algorithm name 'dac' is taken" in text and "left out" in text
    assert "nearest" in algorithms and algorithms["dac"] is ALGORITHMS["dac"]
    # the same record found twice (installed, and named in SMILING_PLUGINS) is taken once
    import nearest_plugin
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        algorithms, _ = register(ALGORITHMS, BACKENDS, env(" nearest_plugin : ALGORITHM "), entry_points=eps[2:])
    assert algorithms["nearest"] is nearest_plugin.ALGORITHM


def test_a_library_run_saved_with_a_plugin_loaded_loads_without_it(tmp_path):
    """config.json holds every settings group, a plug-in's too: a smiling run trained with SMILING_PLUGINS set was
    refused elsewhere for its unknown field."""
    from smiling.algos.registry import config_from_dict, config_to_dict
    from smiling.algos import TrainConfig

    saved = {**config_to_dict(TrainConfig(algo="smiling")), "nearest": {"scale": 2.0, "use_actions": False}}
    assert config_from_dict(saved) == TrainConfig(algo="smiling")
    with pytest.raises(ValueError, match=r"algo 'nearest' is not registered here.*SMILING_PLUGINS"):
        config_from_dict({**saved, "algo": "nearest"})
    with pytest.raises(ValueError, match=r"rl 'sac2' is not registered here"):
        config_from_dict({**saved, "rl": "sac2"})


def test_the_nearest_plugin_rewards_closeness_to_the_expert():
    sys.path.insert(0, str(EXAMPLES))
    try:
        from nearest_plugin import NearestConfig, NearestReward
    finally:
        sys.path.remove(str(EXAMPLES))
    rng = np.random.default_rng(0)
    expert = rng.normal(size=(200, 3)).astype(np.float32)
    model = NearestReward(expert, NearestConfig(scale=2.0))
    model.update(expert[:5])
    far = expert[:4] + 10.0
    r = model.reward(None, None, np.concatenate([expert[:4], far]))
    np.testing.assert_allclose(r[:4], 0.0, atol=1e-2)
    assert (r[4:] < -10).all()
    with pytest.raises(ValueError, match="nearest.scale must be > 0"):
        NearestConfig(scale=0.0)


@pytest.mark.slow
def test_a_plugin_algorithm_and_backend_run_in_a_grid_and_are_named(smiling_cmd, tmp_path):
    """Grid workers (fresh processes) find the plug-ins through the inherited SMILING_PLUGINS; without them, their
    runs are named as a plug-in's, not as an unknown config field."""
    (tmp_path / "sac2_plugin.py").write_text(
        "from smiling.algos.base import Backend\n"
        "from smiling.rl import SAC, SACConfig\n"
        "SAC2 = Backend('sac2', 'SAC under another name', SACConfig, lambda cfg, o, a: SAC(o, a, cfg.sac2),\n"
        "               algorithms=('nearest',))\n")
    out = tmp_path / "exp"
    tiny = ["horizon=50", "seed_steps=50", "update_every=10", "eval_every=50", "eval_episodes=1",
            "checkpoint_every=50", "reward_update_every=50", "sac.hidden_dims=32,32", "sac.batch_size=32",
            "nearest.scale=2"]
    base = {**os.environ, "SMILING_CACHE": str(tmp_path / "cache")}
    with_plugin = {**base, "SMILING_PLUGINS": "nearest_plugin:ALGORITHM, sac2_plugin:SAC2",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(EXAMPLES), str(tmp_path), base.get("PYTHONPATH")]))}
    cmd = [*smiling_cmd, "experiment", "--tasks", "dmc:ball_in_cup-catch", "--algos",
           "nearest,nearest+actions,nearest+sac2",
           "--seeds", "0", "--steps", "100", "--out", str(out), "--workers", "2", "--quiet", "--set", *tiny]
    r = subprocess.run(cmd, env=with_plugin, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| dmc:ball_in_cup-catch | nearest+actions | 1 |" in r.stdout
    assert "| dmc:ball_in_cup-catch | nearest+sac2 | 1 |" in r.stdout
    sac2 = json.loads((out / "dmc-ball_in_cup-catch" / "nearest+sac2" / "s0" / "config.json").read_text())["config"]
    assert sac2["rl"] == "sac2" and sac2["sac2"]["hidden_dims"] == [256, 256]  # its own group: --set sac.* not it
    run = out / "dmc-ball_in_cup-catch" / "nearest+actions" / "s0"
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["algo"] == "nearest" and saved["nearest"] == {"scale": 2.0, "use_actions": True}
    # the same command again: every run is finished, nothing trains
    r = subprocess.run(cmd, env=with_plugin, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "runs: 0 trained, 0 resumed, 3 already finished" in r.stdout, r.stderr[-3000:]
    # without the plug-in: named as such
    with pytest.raises(ValueError, match=r"algo 'nearest' is not registered here.*SMILING_PLUGINS"):
        load_config(run)
    r = subprocess.run([*smiling_cmd, "imitate", "--resume", str(run), "--steps", "150"], env=base,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "not registered here" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*smiling_cmd, "tasks"], env={**base, "SMILING_PLUGINS": "nope_module:X"},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "plug-in 'nope_module:X': importing nope_module failed" in r.stderr
    assert "Traceback" not in r.stderr

