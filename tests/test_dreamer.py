"""DreamerV3 pieces with closed forms, and one fused update of the tiny agent."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smiling.rl.dreamer import Dreamer, DreamerConfig
from smiling.rl.dreamer import core
from smiling.rl.dreamer.agent import random_batches

from conftest import assert_logged


def tree_norm(tree):
    """The global L2 norm of a pytree's arrays (optax.global_norm is deprecated, its successor newer than our pin)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def test_symlog_symexp_invert_each_other_and_compress():
    x = jnp.array([-1e6, -100.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 100.0, 1e6])
    np.testing.assert_allclose(core.symexp(core.symlog(x)), x, rtol=1e-5)
    np.testing.assert_allclose(core.symlog(jnp.array([0.0, np.e - 1, -(np.e - 1)])), [0.0, 1.0, -1.0], rtol=1e-6)
    assert float(core.symlog(jnp.array(1e6))) < 14


def test_twohot_encoding_round_trip_and_weights():
    bins = core.twohot_bins(5, -2.0, 2.0)                 # -2, -1, 0, 1, 2
    enc = core.twohot(jnp.array([0.25, -1.0, 5.0, -7.0]), bins)
    np.testing.assert_allclose(enc[0], [0, 0, 0.75, 0.25, 0], atol=1e-6)
    np.testing.assert_allclose(enc[1], [0, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(enc[2], [0, 0, 0, 0, 1], atol=1e-6)  # clipped to the end bins
    np.testing.assert_allclose(enc[3], [1, 0, 0, 0, 0], atol=1e-6)
    # The expectation of the encoding is the value itself, for any value inside the range.
    bins = core.twohot_bins()
    y = jnp.asarray(np.random.default_rng(0).uniform(-19.9, 19.9, 1000))
    np.testing.assert_allclose(jnp.sum(core.twohot(y, bins) * bins, -1), y, atol=1e-4)
    # Logits that put the two-hot weights on the bins decode to symexp of the value.
    target = jnp.array([3.0, -250.0, 0.0])
    logits = jnp.log(core.twohot(core.symlog(target), bins) + 1e-12)
    np.testing.assert_allclose(core.twohot_mean(logits, bins), target, rtol=1e-3, atol=1e-3)


def test_twohot_loss_is_minimal_at_the_target():
    bins = core.twohot_bins()
    target = jnp.array([2.5])
    good = jnp.log(core.twohot(core.symlog(target), bins) + 1e-9)
    bad = jnp.log(core.twohot(core.symlog(target + 10.0), bins) + 1e-9)
    assert float(core.twohot_loss(good, target, bins)[0]) < float(core.twohot_loss(bad, target, bins)[0])


def test_lambda_returns_match_a_direct_recursion():
    rng = np.random.default_rng(0)
    r, c, v = rng.normal(size=6), rng.uniform(0.5, 1, 6), rng.normal(size=7)
    gamma, lam = 0.9, 0.8
    expected, nxt = np.zeros(6), v[-1]
    for t in reversed(range(6)):
        nxt = r[t] + gamma * c[t] * ((1 - lam) * v[t + 1] + lam * nxt)
        expected[t] = nxt
    np.testing.assert_allclose(core.lambda_returns(jnp.asarray(r), jnp.asarray(v), jnp.asarray(c), gamma, lam),
                               expected, rtol=1e-5)
    # lambda = 0 is one-step TD targets; lambda = 1 with c = 1 is the discounted sum bootstrapped at the end.
    np.testing.assert_allclose(core.lambda_returns(jnp.asarray(r), jnp.asarray(v), jnp.ones(6), gamma, 0.0),
                               r + gamma * v[1:], rtol=1e-5)
    mc = sum(gamma**k * r[k] for k in range(6)) + gamma**6 * v[-1]
    assert float(core.lambda_returns(jnp.asarray(r), jnp.asarray(v), jnp.ones(6), gamma, 1.0)[0]) == pytest.approx(mc)


def test_percentile_return_normalisation():
    returns = jnp.arange(101.0)                           # 5th and 95th percentiles: 5 and 95
    assert float(core.update_return_scale(jnp.zeros(()), returns, decay=0.0)) == pytest.approx(90.0)
    assert float(core.update_return_scale(jnp.array(10.0), returns, decay=0.5)) == pytest.approx(50.0)
    # Small spreads are not blown up (divide by max(1, S)), large ones are scaled down.
    assert float(core.normalise_advantage(jnp.array(0.3), jnp.array(0.1))) == pytest.approx(0.3)
    assert float(core.normalise_advantage(jnp.array(30.0), jnp.array(60.0))) == pytest.approx(0.5)


def test_kl_balancing_free_bits_and_stop_gradients():
    post = core.unimix_probs(jnp.array([[[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]]))
    prior = core.unimix_probs(jnp.zeros((1, 2, 3)))
    kl = float(core.categorical_kl(post, prior)[0])
    p, q = np.asarray(post[0]), np.asarray(prior[0])
    assert kl == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-5)
    dyn, rep = core.kl_balance(post, prior, free=0.0)
    assert float(dyn[0]) == pytest.approx(kl, rel=1e-6) and float(rep[0]) == pytest.approx(kl, rel=1e-6)
    dyn, rep = core.kl_balance(post, prior, free=1.0)     # this KL is below one nat: clipped, no gradient
    assert float(dyn[0]) == 1.0 and kl < 1.0
    # Dynamics loss trains only the prior, representation loss only the posterior.
    g_dyn = jax.grad(lambda a, b: core.kl_balance(a, b, 0.0)[0].sum(), argnums=(0, 1))(post, prior)
    g_rep = jax.grad(lambda a, b: core.kl_balance(a, b, 0.0)[1].sum(), argnums=(0, 1))(post, prior)
    assert not np.any(g_dyn[0]) and np.any(g_dyn[1])
    assert np.any(g_rep[0]) and not np.any(g_rep[1])


def test_unimix_keeps_every_class_possible_and_straight_through_sample():
    probs = core.unimix_probs(jnp.array([[100.0, 0.0, 0.0, 0.0]]))
    assert float(probs.min()) == pytest.approx(0.01 / 4, rel=1e-4) and float(probs.sum()) == pytest.approx(1.0)
    sample = core.sample_onehot(jax.random.PRNGKey(0), probs)
    np.testing.assert_allclose(sample.sum(-1), 1.0, rtol=1e-6)
    grad = jax.grad(lambda p: (core.sample_onehot(jax.random.PRNGKey(0), p) * jnp.arange(4.0)).sum())(probs)
    np.testing.assert_allclose(grad, [[0.0, 1.0, 2.0, 3.0]])


@pytest.mark.slow
def test_tiny_agent_update_is_finite_fits_the_world_model_and_round_trips():
    # imag_starts < batch_size * seq_len: the update imagines from a random subset (all states: the CLI smoke test)
    cfg = DreamerConfig(preset="tiny", batch_size=4, seq_len=8, horizon=5, model_lr=1e-3, imag_starts=16)
    agent = Dreamer(5, 2, cfg)
    state = agent.init(0)
    batch = random_batches(1, 4, 8, 5, 2)
    fixed = {k: np.repeat(v, 10, axis=0) for k, v in batch.items()}   # the same batch 10 times per call
    state, first = agent.update(state, fixed)
    for _ in range(2):
        state, later = agent.update(state, fixed)
    assert all(np.isfinite(v) for v in later.values())
    assert later["model_loss"] < first["model_loss"]
    assert int(state.steps) == 30
    restored = agent.from_bytes(agent.to_bytes(state))
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    carry = agent.initial_carry(3)
    actions, carry = agent.policy(state, carry, np.zeros((3, 5)), np.ones(3), jax.random.PRNGKey(1))
    assert actions.shape == (3, 2) and np.all(np.abs(actions) <= 1.0)
    det1, _ = agent.policy(state, agent.initial_carry(1), np.ones((1, 5)), np.ones(1), jax.random.PRNGKey(2),
                           deterministic=True)
    assert det1.shape == (1, 2)


def test_sampled_evaluation_keeps_to_its_own_episode_state():
    # evaluating in the middle of a training episode (sampled or mean actions) must not move the training
    # episode's recurrent state
    from smiling.acting import acting

    agent = Dreamer(5, 2, DreamerConfig(preset="tiny"))
    params = agent.policy_params(agent.init(0))
    obs, key = np.ones(5, np.float32), jax.random.PRNGKey(0)
    agent.begin_episode()
    for _ in range(2):
        _, key = agent.act(params, obs, key)
    train_carry = jax.tree_util.tree_map(np.asarray, agent._train)
    for stochastic in (True, False):
        policy, on_reset = acting(agent, params, stochastic, key_seed=3)
        on_reset()
        for _ in range(3):
            assert policy(obs).shape == (2,)
        assert agent._eval is not None
    for a, b in zip(jax.tree_util.tree_leaves(train_carry), jax.tree_util.tree_leaves(agent._train)):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_imagination_from_a_random_subset_of_replayed_states():
    agent = Dreamer(5, 2, DreamerConfig(preset="tiny", batch_size=2, seq_len=4, horizon=3, imag_starts=3))
    h = jnp.arange(8.0)[:, None] * jnp.ones((1, agent.deter))            # row i holds i everywhere
    z = jnp.arange(8.0)[:, None] * jnp.ones((1, agent.latent))
    hs, zs = agent._starts(h.reshape(2, 4, -1), z.reshape(2, 4, -1), jax.random.PRNGKey(0))
    assert hs.shape == (3, agent.deter) and zs.shape == (3, agent.latent)
    picked = np.asarray(hs[:, 0])
    assert len(set(picked)) == 3 and set(picked) <= set(range(8))        # distinct replayed states
    np.testing.assert_array_equal(np.asarray(zs[:, 0]), picked)          # h and z of the same state
    everything = Dreamer(5, 2, DreamerConfig(preset="tiny", batch_size=2, seq_len=4, imag_starts=0))
    assert everything._starts(h, z, jax.random.PRNGKey(0))[0].shape == (8, agent.deter)
    from smiling.algos import TrainConfig

    with pytest.raises(ValueError, match="imag_starts must be >= 0"):
        TrainConfig(task="dmc:cartpole-swingup", rl="dreamer", dreamer=DreamerConfig(imag_starts=-1)).validate()


@pytest.mark.slow
def test_backprop_actor_gradient_flows_through_imagination():
    """actor_grad=backprop: the actor's gradient comes from differentiating the imagined returns through the
    model: non-zero when the reward head depends on the state, (up to rounding) zero when reward and critic are
    zero, and updates stay finite."""
    cfg = DreamerConfig(preset="tiny", batch_size=2, seq_len=8, horizon=4, imag_starts=8, actor_grad="backprop",
                        entropy=0.0)   # no entropy bonus: the returns are the only source of gradient
    agent = Dreamer(5, 2, cfg)
    state = agent.init(0)
    # a reward head whose 255 logits differ (unlike the zero-initialised one) depends on the imagined states
    h = jax.random.normal(jax.random.PRNGKey(1), (2, 8, agent.deter))
    z = jnp.zeros((2, 8, agent.latent))
    rew_w = jax.tree_util.tree_map(lambda x: x + 0.1 * jnp.sin(jnp.arange(x.size).reshape(x.shape)),
                                   state.params["rew"])
    params = {**state.params, "rew": rew_w}
    behaviour = jax.jit(agent._behaviour)   # compiled once for both calls below
    a_grads, _, _, metrics = behaviour(state, params, h, z, jax.random.PRNGKey(2))
    norm = tree_norm(a_grads)
    assert np.isfinite(float(norm)) and float(norm) > 0
    # zero reward and critic heads (as initialised): the imagined returns, hence the gradient, vanish
    zero = {**state.params, "rew": jax.tree_util.tree_map(jnp.zeros_like, state.params["rew"])}
    z_grads, *_ = behaviour(state, zero, h, z, jax.random.PRNGKey(2))
    assert float(tree_norm(z_grads)) < 1e-4 * float(norm)   # rounding of the two-hot mean of zero logits
    state, m = agent.update(state, random_batches(3, 2, 8, 5, 2))
    assert all(np.isfinite(v) for v in m.values()) and int(state.steps) == 3
    with pytest.raises(ValueError, match="unknown dreamer.actor_grad 'magic'"):
        Dreamer(5, 2, dataclasses.replace(cfg, actor_grad="magic"))


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown Dreamer preset 'huge'"):
        Dreamer(3, 1, DreamerConfig(preset="huge"))


def test_buffer_sequences_mark_episode_starts_relabel_and_respect_the_write_position():
    from smiling.rl import ReplayBuffer

    buf = ReplayBuffer(1, 1, capacity=10)
    t = 0
    for episode in range(3):                               # episodes of 4 steps; obs counts up within one
        for k in range(4):
            buf.add([100 * episode + k], [k / 10], 0.0, [100 * episode + k + 1], False)
            t += 1
    assert buf.size == 10 and buf.ptr == 2                 # oldest transition is at index 2
    rng = np.random.default_rng(0)
    seqs = buf.sample_sequences(rng, 64, 5, 3, reward_fn=lambda o, a, n: n[:, 0] * 2.0)
    assert seqs["obs"].shape == (3, 64, 5, 1) and seqs["is_first"].shape == (3, 64, 5)
    obs = seqs["obs"][..., 0].reshape(-1, 5)
    first = seqs["is_first"].reshape(-1, 5)
    np.testing.assert_array_equal(seqs["reward"].reshape(-1, 5), 2.0 * obs)   # relabelled with reward_fn
    for o, f in zip(obs, first):
        assert f[0] == 1.0
        for i in range(1, 5):                              # a step either continues an episode or starts one
            assert (o[i] == o[i - 1] + 1 and f[i] == 0) or (o[i] % 100 == 1 and f[i] == 1)
        assert np.all(np.diff(o // 100) >= 0)              # never wraps from the newest back to the oldest
    with pytest.raises(ValueError, match="sequences of 11"):
        buf.sample_sequences(rng, 1, 11)


@pytest.mark.slow
def test_dreamer_cli_smoke_train_resume_and_evaluate(tmp_path, smiling_main, returned_metrics):
    """Trains, resumes and evaluates through the CLI; every metric DreamerV3's update returns reaches metrics.csv
    (SAC, SMILING, DAC and IQ-Learn: test_registry's resumes of earlier versions' runs)."""
    import json

    run = tmp_path / "dr"
    base = ["train-expert", "--task", "dmc:cartpole-swingup", "--rl", "dreamer", "--horizon", "50", "--seed-steps",
            "50", "--update-every", "25", "--eval-every", "100", "--eval-episodes", "1", "--checkpoint-every", "100",
            "--dreamer.batch-size", "2", "--dreamer.seq-len", "8", "--dreamer.train-ratio", "16", "--quiet"]
    r = smiling_main(*base, "--steps", "100", "--out", run)
    assert r.returncode == 0, r.stderr
    r = smiling_main("train-expert", "--resume", run, "--extend-to", "150", "--quiet")
    assert r.returncode == 0, r.stderr
    from smiling.runs import read_metrics

    steps = [int(r["step"]) for r in read_metrics(run)]
    assert steps == [0, 50, 100, 150]
    rows = read_metrics(run)
    assert all(np.isfinite(float(r["model_loss"])) for r in rows if r["step"] in ("100", "150"))
    assert_logged(returned_metrics, run)
    assert {"cont_loss", "kl_rep", "imag_reward"} <= returned_metrics  # once dropped by a fixed column list
    assert json.loads((run / "config.json").read_text())["config"]["rl"] == "dreamer"
    # (`smiling evaluate` calls evaluate_run: the same code)
    # sampled actions (and latents), as DreamerV3 evaluates: seeded, so repeatable, and not the mean-action policy
    from smiling.evaluation import evaluate_run

    mean = evaluate_run(run, episodes=2)
    first, again = (evaluate_run(run, episodes=2, stochastic=True) for _ in range(2))
    assert first["stochastic"] and not mean["stochastic"]
    assert first["returns"] == again["returns"] and first["returns"] != mean["returns"]
