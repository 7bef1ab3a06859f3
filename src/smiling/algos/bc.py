"""Behavioural cloning (``algo="bc"``): the SAC actor fitted by maximum likelihood to the expert's (s, a) pairs.

    max_theta  E_{(s, a) ~ demos} log pi_theta(a | s),   pi_theta = tanh(N(mu_theta(s), sigma_theta(s)^2)),

    log pi(a | s) = log N(atanh(a); mu, sigma^2) - sum_i log(1 - a_i^2)

(the paper found likelihood better than MSE). Actions are clipped to [-1 + 1e-6, 1 - 1e-6] before atanh, since
saturated expert actions would be infinitely unlikely. BC needs actions and never touches the environment
except to evaluate; its curve is against gradient steps (``grad_steps`` in metrics.csv; ``step``, the env steps
used for learning, stays 0). The run directory has the same files as the other algorithms (the policy is saved
as a SAC state, so `smiling evaluate` works on it). BC takes seconds to minutes, so resuming an unfinished BC
run starts it again in place (same seed, same result); a finished run is left as it is. SIGTERM/SIGINT stop it
after its next evaluation (`stop_here`).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tqdm.auto import tqdm

from smiling.acting import evaluate
from smiling.algos.base import Algorithm
from smiling.envs import make_env
from smiling.rl import SAC
from smiling.runs import (CORE_COLUMNS, Checkpoints, MetricsLogger, StopSignals, TrainingStopped, plot_run,
                          wandb_settings)
from smiling.utils.config import at_least_one, check_field_types
from smiling.utils.io import atomic_write_json
from smiling.utils.seeding import EVAL_STREAM

ACTION_CLIP = 1.0 - 1e-6


@dataclasses.dataclass(frozen=True)
class BCConfig:
    steps: int = 20_000
    """Gradient steps."""
    batch_size: int = 256
    lr: float = 3e-4
    eval_every: int = 2000
    """Gradient steps between evaluations (each one also checkpoints)."""

    def __post_init__(self):
        check_field_types(self, "bc.")
        at_least_one(self, "steps", "batch_size", "eval_every", prefix="bc.")
        if self.steps % self.eval_every:
            raise ValueError(f"bc.steps ({self.steps}) must be a multiple of bc.eval_every ({self.eval_every})")


def tanh_gaussian_log_prob(mean, log_std, action):
    """log pi(a | s) of a tanh-squashed Gaussian, for actions in (-1, 1) (clipped to +-(1 - 1e-6))."""
    a = jnp.clip(action, -ACTION_CLIP, ACTION_CLIP)
    u = jnp.arctanh(a)
    z = (u - mean) * jnp.exp(-log_std)
    log_n = jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    return log_n - jnp.sum(jnp.log1p(-a**2), axis=-1)


def make_bc_fit(agent: SAC, states: np.ndarray, actions: np.ndarray, bc: BCConfig, params):
    """(jitted ``fit(params, opt_state, key) -> (params, opt_state, mean loss)`` running ``bc.eval_every``
    Adam steps on minibatches of the pairs, the initial optimizer state for ``params``)."""
    tx = optax.adam(bc.lr)
    S, A = jnp.asarray(states, jnp.float32), jnp.asarray(actions, jnp.float32)

    def nll(p, s, a):
        mean, log_std = agent.actor_net.apply(p, s)
        return -jnp.mean(tanh_gaussian_log_prob(mean, log_std, a))

    @jax.jit
    def fit(params, opt_state, key):
        def step(carry, k):
            params, opt_state = carry
            idx = jax.random.randint(k, (bc.batch_size,), 0, S.shape[0])
            loss, g = jax.value_and_grad(nll)(params, S[idx], A[idx])
            upd, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), jax.random.split(key, bc.eval_every))
        return params, opt_state, losses.mean()

    return fit, tx.init(params)


def already_finished(run_dir: Path, resume: bool, steps: int | None = None) -> bool:
    """Run-directory set-up of the short algorithms that restart instead of resuming (BC, and the algorithms that
    reuse it): True if ``resume`` finds the run finished (with a budget of at least ``steps`` env steps, if
    given); otherwise the directory is made ready for a fresh start in place (an unfinished run's metrics, or a
    finished run's given a larger budget, are dropped: the same seed redoes them)."""
    if (run_dir / "config.json").exists() and resume:
        saved = json.loads((run_dir / "config.json").read_text())
        if saved.get("finished", False) and (steps is None or saved["config"]["steps"] >= steps):
            return True
    (run_dir / "metrics.csv").unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return False


def stop_signals() -> StopSignals:
    """SIGTERM/SIGINT for the algorithms that start an unfinished run again (BC, and those that reuse it): stop
    after the next checkpoint (`stop_here`), so that logs are closed and the grid counts the run as stopped."""
    return StopSignals("stopping after the next evaluation; resumed, the run starts again from the beginning")


def stop_here(stop: StopSignals, done: int, total: int, unit: str, run_dir: Path, finished: bool = False) -> None:
    """After a checkpoint (``done`` of ``total`` ``unit``), if a stop was requested: raise `TrainingStopped`,
    unless the run has reached its end and is not yet marked ``finished``; once it is, the request only says to
    start no more runs (as in a grid)."""
    if stop.requested is None:
        return
    name = signal.Signals(stop.requested).name
    if done < total:
        raise TrainingStopped(f"stopped by {name} after {done:,} of {total:,} {unit}: --resume {run_dir} starts it "
                              f"again from the beginning", stop.requested)
    if finished:
        raise TrainingStopped(f"stopped by {name} at the run's end (finished: {run_dir})", stop.requested)


def train_bc(cfg, run_dir: Path, meta: dict, demos, resume: bool = False, quiet: bool = False) -> dict:
    """Fit the actor to the demonstrations; evaluate and checkpoint every ``cfg.bc.eval_every`` steps."""
    bc = cfg.bc
    states, actions = demos.state_action_pairs()  # DemoError naming the problem for state-only demos
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if states.shape[1] != obs_dim or actions.shape[1] != act_dim:
        raise ValueError(f"demos have obs/action dims {states.shape[1]}/{actions.shape[1]}, the task "
                         f"{obs_dim}/{act_dim}")
    if already_finished(run_dir, resume):
        return {"run_dir": str(run_dir), "step": 0, "grad_steps": bc.steps, "final_eval_return": None,
                "already_finished": True}
    meta = {**meta, "obs_dim": obs_dim, "action_dim": act_dim, "obs_keys": env.obs_keys, "finished": False}
    atomic_write_json(run_dir / "config.json", meta)

    agent = SAC(obs_dim, act_dim, cfg.sac)
    state = agent.init(cfg.seed)
    fit, opt_state = make_bc_fit(agent, states, actions, bc, state.actor.params)
    params = state.actor.params
    logger = MetricsLogger(run_dir, CORE_COLUMNS, cfg.tensorboard, wandb_settings(cfg, meta))
    ckpts = Checkpoints(run_dir, keep_policies=cfg.keep_policies)
    key = jax.random.PRNGKey(cfg.seed)
    done, last, t0 = 0, None, time.perf_counter()
    bar = tqdm(total=bc.steps, unit="grad step", disable=quiet, desc=f"{cfg.task} bc")
    stop = stop_signals()
    try:
        stop.install()
        while done < bc.steps:
            key, k = jax.random.split(key)
            params, opt_state, loss = fit(params, opt_state, k)
            done += bc.eval_every
            rets = evaluate(agent, params, env, cfg.eval_episodes, (cfg.seed, EVAL_STREAM, done),
                            stochastic=cfg.eval_stochastic)
            last = float(rets.mean())
            logger.log({"step": 0, "grad_steps": done, "episode": 0, "wall_time": time.perf_counter() - t0,
                        "bc_loss": float(loss),
                        "eval_return": last, "eval_return_std": float(rets.std())})
            state = state.replace(actor=state.actor.replace(params=params))
            ckpts.save(done, {"agent.msgpack": agent.to_bytes(state),
                              "loop.json": json.dumps({"task": cfg.task, "grad_steps": done}).encode()})
            bar.update(bc.eval_every)
            bar.set_postfix(loss=f"{float(loss):.3f}", eval=f"{last:.0f}", refresh=False)
            stop_here(stop, done, bc.steps, "gradient steps", run_dir)
    finally:
        stop.restore()
        bar.close()
        logger.close()
    atomic_write_json(run_dir / "config.json", {**meta, "finished": True})
    plot_run(run_dir)
    stop_here(stop, done, bc.steps, "gradient steps", run_dir, finished=True)
    return {"run_dir": str(run_dir), "step": 0, "grad_steps": done, "final_eval_return": last}


ALGORITHM = Algorithm(
    "bc", "behavioural cloning by maximum likelihood (needs demos with actions; no env steps); --bc.*",
    config=BCConfig, backends=(), train=train_bc, x_axis="grad_steps", actions=True)
