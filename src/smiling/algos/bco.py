"""Behavioural cloning from observation, BCO(alpha) (Torabi et al. 2018): the cloning baseline for state-only demos.

1. Run a uniform random policy for ``bco.pre_steps`` env steps and record the learner's transitions (s, a, s').
2. Fit an inverse dynamics model I(a | s, s') by maximum likelihood (a tanh-Gaussian on [s, s'], the same
   network and loss as BC) on all learner transitions so far.
3. Label each expert state pair (s_t, s_t+1) with the model's mean action and fit the policy by BC on them.
4. BCO(alpha): run the policy for ``alpha * pre_steps`` more env steps, add them, and repeat 2-3, until
   ``steps`` env steps in all.

The env's reward is never used (only reported by evaluation). ``step`` in metrics.csv counts env steps used for
learning (the inverse model's data), so BCO's curve shares an axis with SMILING's and DAC's. Like BC, an
unfinished BCO run restarts in place when resumed (same seed, same result), and SIGTERM/SIGINT stop it after
its next evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from tqdm.auto import tqdm

from smiling.acting import evaluate
from smiling.algos.base import Algorithm
from smiling.algos.bc import BCConfig, already_finished, make_bc_fit, stop_here, stop_signals
from smiling.envs import make_env
from smiling.rl import SAC, SACConfig
from smiling.runs import CORE_COLUMNS, Checkpoints, MetricsLogger, plot_run, wandb_settings
from smiling.utils.config import at_least_one, check_field_types
from smiling.utils.io import atomic_write_json
from smiling.utils.seeding import EVAL_STREAM, TRAIN_STREAM, derive_seed


@dataclasses.dataclass(frozen=True)
class BCOConfig:
    pre_steps: int = 10_000
    """Env steps of the uniform random policy before the first inverse-model fit."""
    alpha: float = 1.0
    """Each later iteration runs the policy for alpha * pre_steps env steps (BCO(alpha))."""
    idm_steps: int = 2000
    """Gradient steps of the inverse dynamics model per iteration (warm-started)."""
    policy_steps: int = 2000
    """BC gradient steps of the policy per iteration (warm-started)."""
    batch_size: int = 256
    lr: float = 3e-4

    def __post_init__(self):
        check_field_types(self, "bco.")
        at_least_one(self, "pre_steps", "idm_steps", "policy_steps", "batch_size", prefix="bco.")
        if not self.alpha > 0:
            raise ValueError(f"bco.alpha must be > 0, got {self.alpha}")


def train_bco(cfg, run_dir: Path, meta: dict, demos, resume: bool = False, quiet: bool = False) -> dict:
    """BCO(alpha) on the demonstrations' state pairs; evaluate and checkpoint after each iteration."""
    bco = cfg.bco
    s_e, s_e_next = demos.state_pairs()
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    eval_env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if already_finished(run_dir, resume, cfg.steps):
        return {"run_dir": str(run_dir), "step": cfg.steps, "final_eval_return": None, "already_finished": True}
    meta = {**meta, "obs_dim": obs_dim, "action_dim": act_dim, "obs_keys": env.obs_keys, "finished": False}
    atomic_write_json(run_dir / "config.json", meta)

    agent = SAC(obs_dim, act_dim, cfg.sac)
    state = agent.init(cfg.seed)
    inverse = SAC(2 * obs_dim, act_dim, SACConfig(hidden_dims=cfg.sac.hidden_dims))  # only its actor is used
    idm_params = inverse.init(cfg.seed + 1).actor.params
    pol_params = state.actor.params
    idm_bc = BCConfig(steps=bco.idm_steps, eval_every=bco.idm_steps, batch_size=bco.batch_size, lr=bco.lr)
    pol_bc = BCConfig(steps=bco.policy_steps, eval_every=bco.policy_steps, batch_size=bco.batch_size, lr=bco.lr)
    idm_opt = pol_opt = None
    rng = np.random.default_rng(derive_seed(cfg.seed, 2))
    key = jax.random.PRNGKey(derive_seed(cfg.seed, 3))
    S, A, S2 = [], [], []
    obs, _ = env.reset(seed=derive_seed(cfg.seed, TRAIN_STREAM, 0))
    episode, step, last, t0 = 0, 0, None, time.perf_counter()
    logger = MetricsLogger(run_dir, CORE_COLUMNS, cfg.tensorboard, wandb_settings(cfg, meta))
    ckpts = Checkpoints(run_dir, keep_policies=cfg.keep_policies)
    bar = tqdm(total=cfg.steps, unit="step", disable=quiet, desc=f"{cfg.task} bco")
    stop = stop_signals()
    try:
        stop.install()
        while step < cfg.steps:
            n = bco.pre_steps if step == 0 else max(1, int(round(bco.alpha * bco.pre_steps)))
            n = min(n, cfg.steps - step)
            for _ in range(n):  # collect with the random policy first, then with the current policy
                if step < bco.pre_steps:
                    action = rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)
                else:
                    action, key = agent.act(pol_params, obs, key)
                nxt, _, term, trunc, _ = env.step(action)
                S.append(obs)
                A.append(action)
                S2.append(nxt)
                obs, step = nxt, step + 1
                if term or trunc:
                    episode += 1
                    obs, _ = env.reset(seed=derive_seed(cfg.seed, TRAIN_STREAM, episode))
            bar.update(n)
            x = np.concatenate([np.asarray(S, np.float32), np.asarray(S2, np.float32)], axis=1)
            fit_idm, opt0 = make_bc_fit(inverse, x, np.asarray(A, np.float32), idm_bc, idm_params)
            key, k = jax.random.split(key)
            idm_params, idm_opt, idm_loss = fit_idm(idm_params, idm_opt if idm_opt is not None else opt0, k)
            labels = inverse.act_deterministic(idm_params, np.concatenate([s_e, s_e_next], axis=1))
            fit_pol, opt0 = make_bc_fit(agent, s_e, labels, pol_bc, pol_params)
            key, k = jax.random.split(key)
            pol_params, pol_opt, bc_loss = fit_pol(pol_params, pol_opt if pol_opt is not None else opt0, k)
            rets = evaluate(agent, pol_params, eval_env, cfg.eval_episodes, (cfg.seed, EVAL_STREAM, step),
                            stochastic=cfg.eval_stochastic)
            last = float(rets.mean())
            logger.log({"step": step, "episode": episode, "wall_time": time.perf_counter() - t0,
                        "bc_loss": float(bc_loss), "idm_loss": float(idm_loss),
                        "eval_return": last, "eval_return_std": float(rets.std())})
            state = state.replace(actor=state.actor.replace(params=pol_params))
            ckpts.save(step, {"agent.msgpack": agent.to_bytes(state),
                              "loop.json": json.dumps({"task": cfg.task, "step": step}).encode()})
            bar.set_postfix(eval=f"{last:.0f}", refresh=False)
            stop_here(stop, step, cfg.steps, "env steps", run_dir)
    finally:
        stop.restore()
        bar.close()
        logger.close()
    atomic_write_json(run_dir / "config.json", {**meta, "finished": True})
    plot_run(run_dir)
    stop_here(stop, step, cfg.steps, "env steps", run_dir, finished=True)
    return {"run_dir": str(run_dir), "step": step, "final_eval_return": last}


ALGORITHM = Algorithm(
    "bco", "behavioural cloning from observation: an inverse dynamics model labels the state-only demos; --bco.*",
    config=BCOConfig, backends=(), train=train_bco)
