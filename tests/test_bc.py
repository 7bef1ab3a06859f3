"""Behavioural cloning: the likelihood on hand-made data, a linear expert recovered, the CLI, a stop."""

import json
import re
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smiling.algos.bc import BCConfig, make_bc_fit, tanh_gaussian_log_prob
from smiling.rl import SAC, SACConfig

from conftest import TINY_CLI, sigterm_fails_the_test


def test_log_prob_is_the_change_of_variables_of_a_gaussian():
    mean, log_std = jnp.array([[0.3, -0.2]]), jnp.array([[-1.0, 0.5]])
    a = jnp.tanh(jnp.array([[0.1, 0.4]]))
    u = np.arctanh(np.asarray(a, np.float64))
    std = np.exp(np.asarray(log_std, np.float64))
    gauss = np.sum(-0.5 * ((u - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))
    expected = gauss - np.sum(np.log(1 - np.asarray(a, np.float64) ** 2))
    np.testing.assert_allclose(float(tanh_gaussian_log_prob(mean, log_std, a)[0]), expected, rtol=1e-5)
    # saturated actions are clipped, not infinitely unlikely
    assert np.isfinite(float(tanh_gaussian_log_prob(mean, log_std, jnp.ones((1, 2)))[0]))


def test_bc_recovers_a_linear_expert():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 2)) * 0.5
    states = rng.normal(size=(4000, 3)).astype(np.float32)
    actions = np.tanh(states @ W + 0.05 * rng.normal(size=(4000, 2))).astype(np.float32)
    agent = SAC(3, 2, SACConfig(hidden_dims=(64, 64)))
    params = agent.init(0).actor.params
    fit, opt = make_bc_fit(agent, states, actions, BCConfig(steps=3000, eval_every=1000, lr=1e-3), params)
    key = jax.random.PRNGKey(0)
    losses = []
    for _ in range(3):
        key, k = jax.random.split(key)
        params, opt, loss = fit(params, opt, k)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    test = rng.normal(size=(500, 3)).astype(np.float32)
    err = agent.act_deterministic(params, test) - np.tanh(test @ W)
    assert np.sqrt(np.mean(err**2)) < 0.05


def test_bc_cli_trains_evaluates_and_refuses_state_only_demos(smiling_main, tmp_path):
    out = tmp_path / "bc"
    r = smiling_main("imitate", "--algo", "bc", "--task", "dmc:ball_in_cup-catch", "--out", out, "--bc.steps",
                     "200", "--bc.eval-every", "100", *TINY_CLI)
    assert r.returncode == 0, r.stderr
    rows = list(__import__("csv").DictReader(open(out / "metrics.csv")))
    assert [int(x["grad_steps"]) for x in rows] == [100, 200] and all(x["eval_return"] != "" for x in rows)
    assert json.loads((out / "config.json").read_text())["finished"] is True
    assert (out / "curve.png").exists()
    from smiling.data import load_demos, save_npz
    from smiling.evaluation import evaluate_run

    assert evaluate_run(out, episodes=1)["episodes"] == 1
    save_npz(load_demos("dmc:ball_in_cup-catch").without_actions(), tmp_path / "so.npz")
    r = smiling_main("imitate", "--algo", "bc", "--task", "dmc:ball_in_cup-catch", "--demos", tmp_path / "so.npz",
                     "--out", tmp_path / "x", *TINY_CLI)
    assert r.returncode == 2 and f"{tmp_path / 'so.npz'}: state-only demonstrations (no actions)" in r.stderr


@pytest.mark.slow
def test_bco_cli_learns_from_state_only_demos(smiling_main, tmp_path):
    from smiling.data import load_demos, save_npz

    save_npz(load_demos("dmc:ball_in_cup-catch").without_actions(), tmp_path / "so.npz")
    out = tmp_path / "bco"
    r = smiling_main("imitate", "--algo", "bco", "--task", "dmc:ball_in_cup-catch", "--demos", tmp_path / "so.npz",
                     "--steps", "300", "--out", out, "--bco.pre-steps", "100", "--bco.alpha", "1.0",
                     "--bco.idm-steps", "50", "--bco.policy-steps", "50", *TINY_CLI)
    assert r.returncode == 0, r.stderr
    rows = list(__import__("csv").DictReader(open(out / "metrics.csv")))
    assert [int(x["step"]) for x in rows] == [100, 200, 300]
    assert all(x["idm_loss"] != "" and x["bc_loss"] != "" and x["eval_return"] != "" for x in rows)
    from smiling.evaluation import evaluate_run

    assert evaluate_run(out, episodes=1)["episodes"] == 1


def test_inverse_dynamics_labels_recover_the_actions_of_a_simple_system():
    # s' = s + 0.5 a (a 2-D point mass without inertia): the inverse model must recover a from (s, s')
    rng = np.random.default_rng(0)
    s = rng.normal(size=(4000, 2)).astype(np.float32)
    a = rng.uniform(-0.9, 0.9, size=(4000, 2)).astype(np.float32)
    x = np.concatenate([s, s + 0.5 * a], axis=1)
    inverse = SAC(4, 2, SACConfig(hidden_dims=(64, 64)))
    params = inverse.init(0).actor.params
    fit, opt = make_bc_fit(inverse, x, a, BCConfig(steps=3000, eval_every=3000, lr=1e-3), params)
    params, _, _ = fit(params, opt, jax.random.PRNGKey(0))
    err = inverse.act_deterministic(params, x[:500]) - a[:500]
    assert np.sqrt(np.mean(err**2)) < 0.05


@pytest.mark.parametrize("algo", ["bc", "bco"])
def test_a_stop_signal_ends_the_run_after_its_next_evaluation_and_resuming_starts_it_again(tmp_path, monkeypatch,
                                                                                          algo):
    """SIGTERM (a preemption, Ctrl-C, a grid's stop) during BC's or BCO's first evaluation: the run stops after that
    evaluation's checkpoint, logs closed, unfinished; resumed, it starts again from the beginning, and a signal in
    its last evaluation lets it finish first."""
    import smiling.algos.bc as bc_module
    import smiling.algos.bco as bco_module
    from smiling.algos import TrainConfig, train
    from smiling.algos.bco import BCOConfig
    from smiling.experiments.grid import run_state
    from smiling.runs import TrainingStopped, read_metrics

    module = bc_module if algo == "bc" else bco_module
    real, calls = module.evaluate, []

    def evaluate_with_a_signal(*a, **k):
        calls.append(1)
        if len(calls) in (1, 3):  # the first run's first evaluation, the resumed run's last
            signal.raise_signal(signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(module, "evaluate", evaluate_with_a_signal)
    cfg = TrainConfig(algo=algo, task="dmc:ball_in_cup-catch", steps=200, horizon=50, eval_episodes=1,
                      sac=SACConfig(hidden_dims=(32, 32), batch_size=32), bc=BCConfig(steps=20, eval_every=10),
                      bco=BCOConfig(pre_steps=100, idm_steps=10, policy_steps=10, batch_size=32))
    run = tmp_path / "run"
    done, total = ("10 of 20 gradient steps", 20) if algo == "bc" else ("100 of 200 env steps", 200)
    with sigterm_fails_the_test(), pytest.raises(TrainingStopped, match=f"after {done}: --resume {run} starts it"):
        train(cfg, run, quiet=True)
    assert len(read_metrics(run)) == 1 and run_state(run, cfg.steps) == "partial"
    assert json.loads((run / "config.json").read_text())["finished"] is False
    finished = re.escape(f"at the run's end (finished: {run})")
    with sigterm_fails_the_test(), pytest.raises(TrainingStopped, match=finished):
        train(cfg, run, resume=True, quiet=True)
    column = "grad_steps" if algo == "bc" else "step"
    assert [int(r[column]) for r in read_metrics(run)] == [total // 2, total]
    assert json.loads((run / "config.json").read_text())["finished"] is True
