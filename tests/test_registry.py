"""The registry and the house it keeps: no import cycles, algorithms in one place, every metric logged, runs
refused before anything is written, damaged checkpoints named, and run directories of earlier versions resumed."""

import ast
import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import smiling
from smiling.algos import ALGORITHMS, TrainConfig, load_config, train
from smiling.algos.registry import apply_label
from smiling.data import DemoError, load_demos
from smiling.runs import Checkpoints, read_metrics
from smiling.utils.io import npz_from_bytes

from conftest import TINY_SAC, assert_logged, tiny_config

SRC = Path(smiling.__file__).parent
FIXTURES = Path(__file__).parent / "fixtures" / "runs-d968735"


# --- the import graph --------------------------------------------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """{module: the smiling modules it imports}, from every import statement (module level or inside functions).
    ``from a.b import c`` points at a.b.c if that is a module, else at a.b (a package means its __init__)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "smiling.algos.registry" in graph["smiling.cli"]  # the graph sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# --- one place per algorithm -------------------------------------------------------------------------------------

def test_an_algorithm_lives_in_its_module_and_one_registry_entry():
    naming = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if re.search(r"\bbco\b", p.read_text(), re.I))
    # (experiments/figures.py lists the paper's curves by label, as data: like a grid's --algos, no code path)
    assert naming == ["algos/bco.py", "algos/registry.py", "experiments/figures.py"]
    from smiling.algos import bco
    from smiling.cli import _ALGO_HELP, _ALGOS_HELP

    assert ALGORITHMS["bco"] is bco.ALGORITHM
    assert isinstance(TrainConfig().bco, bco.BCOConfig)             # its settings group comes from the record
    assert "bco:" in _ALGO_HELP and "bco" in _ALGOS_HELP            # so do the CLI's help texts
    assert apply_label(TrainConfig(), "bco").algo == "bco"


def test_configs_are_frozen_and_check_themselves():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 5
    with pytest.raises(ValueError, match="bco.alpha must be > 0"):
        dataclasses.replace(cfg.bco, alpha=0.0)
    with pytest.raises(ValueError, match="relabel must be one of sample, update"):
        TrainConfig(relabel="sometimes")
    with pytest.raises(ValueError, match="unknown algo 'gail'"):
        TrainConfig(algo="gail")


# --- metrics -----------------------------------------------------------------------------------------------------

def test_the_metrics_header_grows_with_new_keys(tmp_path):
    from smiling.runs import MetricsLogger

    log = MetricsLogger(tmp_path, ["step"])
    log.log({"step": 0})
    log.log({"step": 1, "brand_new": 0.5})
    log.close()
    assert read_metrics(tmp_path) == [{"step": "0", "brand_new": ""}, {"step": "1", "brand_new": "0.5"}]


# --- refusing bad input before anything is written ---------------------------------------------------------------

def test_demos_with_a_nan_are_refused_before_the_run_directory_exists(tmp_path):
    demos = load_demos("dmc:ball_in_cup-catch")
    obs = demos.observations.copy()
    obs[0, 3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", observations=obs)
    with pytest.raises(DemoError, match="NaN"):
        train(tiny_config(algo="smiling", demos=str(tmp_path / "nan.npz")), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_a_damaged_checkpoint_file_is_named(tmp_path):
    shutil.copytree(FIXTURES / "sac", tmp_path / "r")
    agent_file = Checkpoints(tmp_path / "r").latest() / "agent.msgpack"
    agent_file.write_bytes(agent_file.read_bytes() + b"\x00garbage")
    cfg = dataclasses.replace(load_config(tmp_path / "r"), steps=150)
    with pytest.raises(ValueError, match=re.escape(str(agent_file)) + ": damaged checkpoint file"):
        train(cfg, tmp_path / "r", resume=True, quiet=True)


# --- run directories written by earlier versions -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["smiling-update", "dac", "iqlearn"])  # SAC runs inside each
def test_run_directories_of_an_earlier_version_resume(tmp_path, monkeypatch, returned_metrics, name):
    """Resumed by today's code, and every metric SAC, SMILING's or DAC's reward model or IQ-Learn returns is
    logged (the old header gains the columns it lacked, e.g. SAC's temp_loss)."""
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    old = Checkpoints(run).latest()
    if (old / "reward-pending.npz").exists():  # the features the old loop kept are the buffer's newest rows
        pending = npz_from_bytes((old / "reward-pending.npz").read_bytes())["features"]
        buffer = npz_from_bytes((old / "buffer.npz").read_bytes())
        cfg = load_config(run)
        state = cfg.smiling.score_state if cfg.algo == "smiling" else "next"
        newest = buffer["obs" if state == "current" else "next_obs"][-len(pending):]
        assert len(pending) and np.array_equal(pending, newest)
    cfg = dataclasses.replace(load_config(run), steps=200)
    summary = train(cfg, run, resume=True, quiet=True)
    steps = [int(r["step"]) for r in read_metrics(run)]
    assert summary["step"] == 200 and steps[-1] == 200 and steps == sorted(steps)
    assert np.isfinite(summary["final_eval_return"])
    assert_logged(returned_metrics, run)
    assert "temp_loss" in returned_metrics and "temp_loss" not in (FIXTURES / name / "metrics.csv").read_text()
    from smiling.evaluation import evaluate_run

    assert evaluate_run(run, episodes=1)["checkpoint_step"] == 200


def test_fixture_configs_are_small_and_use_tiny_networks():
    for cfg_file in FIXTURES.glob("*/config.json"):
        assert load_config(cfg_file.parent).sac == dataclasses.replace(TINY_SAC, hidden_dims=(16, 16), batch_size=16)
