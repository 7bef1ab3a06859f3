"""DAC's discriminator reward: its loss on hand-made data, and the imitation loop with --algo dac."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smiling.algos import train
from smiling.rewards import DacConfig, DacReward
from smiling.rewards.dac import Discriminator, discriminator_loss
from smiling.runs import Checkpoints, read_metrics

from conftest import TINY_CLI, comparable, crash_after_row, tiny_config

TINY_DAC = DacConfig(width=32, batch_size=64, steps=20, memory=1000)


def test_discriminator_separates_separable_data_and_rewards_expert_states():
    rng = np.random.default_rng(0)
    expert = (rng.normal(size=(2000, 2)) * 0.3 + [2.0, 0.0]).astype(np.float32)
    learner = (rng.normal(size=(2000, 2)) * 0.3 - [2.0, 0.0]).astype(np.float32)
    model = DacReward(expert, DacConfig(width=32, steps=300, batch_size=256, gp_weight=0.0), seed=0)
    m = model.update(learner)
    assert m["disc_accuracy"] > 0.95
    z = np.zeros((500, 1), np.float32)
    r_e, r_l = model.reward(z, z, expert[:500]), model.reward(z, z, learner[:500])
    assert r_e.dtype == np.float32 and np.all(r_e > 0) and r_e.mean() > r_l.mean() + 1.0  # gail: softplus(D) > 0
    np.testing.assert_allclose(r_e, np.logaddexp(0, model.logits(expert[:500])), rtol=1e-5)
    # a second discriminator built alike shares the compiled fit (`shared_jit`), never the first one's data: with
    # the roles swapped, it rewards its own expert's states
    swapped = DacReward(learner, DacConfig(width=32, steps=300, batch_size=256, gp_weight=0.0), seed=0)
    assert swapped._fit is model._fit
    swapped.update(expert)
    assert swapped.reward(z, z, learner[:500]).mean() > swapped.reward(z, z, expert[:500]).mean() + 1.0


def test_optimal_discriminator_on_overlapping_data_is_the_density_ratio():
    # expert N(+1, 1), learner N(-1, 1) in 1-D: the BCE optimum is D*(x) = log p_e(x)/p_l(x) = 2x
    rng = np.random.default_rng(1)
    expert = (rng.normal(size=(20000, 1)) + 1.0).astype(np.float32)
    learner = (rng.normal(size=(20000, 1)) - 1.0).astype(np.float32)
    cfg = DacConfig(width=32, steps=2000, batch_size=512, gp_weight=0.0, lr=3e-3, weight_decay=0.0, reward="airl")
    model = DacReward(expert, cfg, seed=0)
    model.mean, model.std = np.zeros(1, np.float32), np.ones(1, np.float32)  # raw inputs for the closed form
    model.expert = jnp.asarray(expert)
    model.update(learner)
    x = np.linspace(-1.5, 1.5, 7, dtype=np.float32)[:, None]
    z = np.zeros((7, 1), np.float32)
    np.testing.assert_allclose(model.reward(z, z, x), 2 * x[:, 0], atol=0.35)  # airl reward = D


def test_gradient_penalty_pushes_the_gradient_norm_to_one():
    net = Discriminator(width=16, linear=True)  # D(x) = w.x + b: grad norm |w| everywhere
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
    x = jnp.ones((8, 2))
    _, m = discriminator_loss(net, params, x, -x, jax.random.PRNGKey(1), 10.0)
    w = np.asarray(params["params"]["Dense_0"]["kernel"] @ params["params"]["Dense_1"]["kernel"])[:, 0]
    np.testing.assert_allclose(float(m["disc_gp"]), (np.linalg.norm(w) - 1) ** 2, rtol=1e-4)


def test_unknown_reward_form_is_named():
    with pytest.raises(ValueError, match="'wasserstein'"):
        DacReward(np.zeros((10, 2), np.float32), DacConfig(reward="wasserstein"))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))


def tiny_dac(**kw):
    return tiny_config(algo="dac", reward_update_every=50, dac=TINY_DAC, **kw)


@pytest.mark.slow
def test_dac_run_logs_discriminator_metrics_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    cfg = tiny_dac(steps=200)
    # (the bundled demos' episodes are 1000 steps: their returns do not compare with a 50-step run's)
    train(cfg, tmp_path / "full", quiet=True)
    assert "episodes are 1000 steps long, this run's are 50 (horizon)" in capsys.readouterr().err
    rows = read_metrics(tmp_path / "full")
    assert all(rows[i]["disc_loss"] != "" and rows[i]["disc_accuracy"] != "" for i in (1, 2))
    names = {p.name for p in Checkpoints(tmp_path / "full").latest().iterdir()}
    assert {"reward-discriminator.msgpack", "reward-memory.npz", "reward-state.json"} <= names
    crash_after_row(cfg, tmp_path / "cut", monkeypatch, 150)
    train(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert comparable(read_metrics(tmp_path / "cut")) == comparable(read_metrics(tmp_path / "full"))


def test_imitate_cli_with_dac(smiling_main, tmp_path, monkeypatch):
    monkeypatch.setenv("SMILING_CACHE", str(tmp_path / "cache"))
    r = smiling_main("imitate", "--algo", "dac", "--task", "dmc:ball_in_cup-catch", "--steps", "100", "--out",
                     tmp_path / "d", "--reward-update-every", "50", "--dac.width", "32", "--dac.steps", "10",
                     "--dac.reward", "airl", "--linear", *TINY_CLI)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "d" / "config.json").read_text())["config"]
    assert cfg["algo"] == "dac" and cfg["dac"]["reward"] == "airl" and cfg["dac"]["linear"] is True
    # a choice the parser knows: refused while parsing (exit 2, nothing written), like any bad flag
    r = smiling_main("imitate", "--algo", "dac", "--dac.reward", "nope", "--steps", "10", "--quiet", "--out",
                     tmp_path / "bad")
    assert r.returncode == 2 and not (tmp_path / "bad").exists()
    assert "invalid choice 'nope' for argument '--dac.reward'" in r.stderr
