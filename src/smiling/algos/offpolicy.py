"""The off-policy training loop: an RL agent on a task's true reward (``algo="sac"``, used to train experts) or on
an imitation reward model (SMILING: paper Algorithm 1; DAC: a discriminator).

It receives built parts (`smiling.algos.registry.train` builds them from the config): the envs, the agent and the
reward model (None: the env's reward). Read top to bottom: set-up (fresh or resumed), then the loop: act, step,
store, update the reward model every ``reward_update_every`` env steps on the learner features of the transitions
stored since its last update (the buffer's newest), update the agent every ``update_every`` env steps on batches
it draws (`Agent.batches`) whose rewards the reward model relabels at sample time (or, with
``relabel="update"``, reads from a `RewardCache` recomputed after each reward-model update), log a row per
episode, evaluate with the mean action on a separate env (true env return: reported, never learned from),
checkpoint at episode ends (and stop after one on SIGTERM/SIGINT: `smiling.runs.StopSignals`).

Determinism: episode ``k`` of training is reset with ``derive_seed(seed, 0, k)`` and evaluation episodes
with ``derive_seed(seed, 1, step, j)``, so an env's randomness depends on the episode's index, not on
history. Together with the checkpointed agent, buffer, and RNG states this makes a resumed run continue
exactly like an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from smiling.acting import evaluate
from smiling.algos.base import RESUMABLE_CHANGES, Agent, RunConfig
from smiling.rewards import RewardModel
from smiling.rl import ReplayBuffer, RewardCache
from smiling.runs import (CORE_COLUMNS, Checkpoints, MetricsLogger, StopSignals, TrainingStopped, check_checkpoint_task,
                          last_metrics_step, plot_run, read_checkpoint_file, truncate_metrics, wandb_settings)
from smiling.utils.config import to_dict
from smiling.utils.io import MismatchError, atomic_write_json, npz_bytes, npz_from_bytes, read_json
from smiling.utils.seeding import EVAL_STREAM, TRAIN_STREAM, derive_seed

CACHE_FILE = "relabel-cache.npz"
MADE_FROM_FILE = "reward-made_from.txt"
"""What the reward model was made from (`RewardModel.made_from`), checked on resume: demos changed under the
run's path since would meet a learner side fitted against the old ones."""
OLD_LOOP_FILES = {"pending.npz", "cache.npz"}
"""Loop files that older checkpoints kept under the reward model's ``reward-`` prefix (the
features since the last reward update, now read from the buffer; the reward cache, now `CACHE_FILE`)."""


def _save_checkpoint(ckpts: Checkpoints, agent: Agent, state, buffer: ReplayBuffer, loop: dict, reward_model,
                     cache: RewardCache | None) -> None:
    files = {
        "agent.msgpack": agent.to_bytes(state),
        "buffer.npz": npz_bytes(buffer.state_dict()),
        "loop.json": (json.dumps(loop, indent=1) + "\n").encode(),
    }
    if reward_model is not None:
        files.update({f"reward-{k}": v for k, v in reward_model.state_dict().items()})
        files[MADE_FROM_FILE] = reward_model.made_from.encode()
    if cache is not None:
        files[CACHE_FILE] = npz_bytes(cache.state_dict())
    ckpts.save(loop["step"], files)


def load_reward_state(reward_model, ckpt: Path) -> None:
    """Restore ``reward_model`` from the ``reward-*`` files of checkpoint folder ``ckpt``."""
    names = [p.name[len("reward-"):] for p in ckpt.glob("reward-*")]
    files = {n: read_checkpoint_file(ckpt / f"reward-{n}", bytes) for n in names if n not in OLD_LOOP_FILES}
    try:
        reward_model.check_made_from(files.pop(MADE_FROM_FILE[len("reward-"):], b""), ckpt)
    except ValueError:
        raise ValueError(f"{ckpt}: the reward model was made from other demonstrations than the run's config names "
                         f"now (its demos file changed since the run started, or the bundled demos of another "
                         f"library version; or {MADE_FROM_FILE} is damaged); put the run's demos back, or train "
                         f"in another directory") from None
    try:
        reward_model.load_state_dict(files)
    except MismatchError as e:
        raise MismatchError(f"{ckpt}: the reward model's checkpoint files do not fit the run's config.json "
                            f"({e})") from e
    except Exception as e:  # noqa: BLE001 - any parse error of a damaged file; named with the folder
        raise ValueError(f"{ckpt}: the reward model's checkpoint files are damaged or from another version "
                         f"({type(e).__name__}: {e})") from e


def _record_changes(run_dir: Path, cfg, step: int, commit: str | None, cpus: int | None = None) -> None:
    """Write into config.json what a resumed run changed: a longer budget under ``extended_from_steps`` (the
    earlier budgets), any other of `RESUMABLE_CHANGES` under ``resumed_with`` (field, old and new value, and the
    env step it took effect at), and source code of another commit than the run's last (when the code knows its
    commit) or another count of usable CPUs (its results repeat bitwise only on the same count) under
    ``resumed_at`` (step, commit and, when given, CPUs). The loop calls it only when training is left to do."""
    data = read_json(run_dir / "config.json")
    new = to_dict(cfg)
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}  # what a run written before a field had
    old = {n: data["config"].get(n, defaults[n]) for n in RESUMABLE_CHANGES}
    changed = [n for n in RESUMABLE_CHANGES if old[n] != new[n]]
    resumed = data.get("resumed_at") or []
    last_commit = (resumed or [{"commit": data.get("commit")}])[-1]["commit"]
    last_cpus = next((r["cpus"] for r in reversed(resumed) if "cpus" in r), data.get("cpus"))
    other_cpus = cpus is not None and last_cpus is not None and cpus != last_cpus  # (older runs recorded none)
    if (commit is not None and commit != last_commit) or other_cpus:
        data.setdefault("resumed_at", []).append({"step": step, "commit": commit,
                                                  **({} if cpus is None else {"cpus": cpus})})
    elif not changed:
        return
    for n in changed:
        if n == "steps":
            data.setdefault("extended_from_steps", []).append(old[n])
        else:
            data.setdefault("resumed_with", []).append({"field": n, "from": old[n], "to": new[n], "step": step})
        data["config"][n] = new[n]
    atomic_write_json(run_dir / "config.json", data)


def _check_restartable(run_dir: Path) -> None:
    """Refuse to start over in place a run without checkpoints whose metrics go past its first checkpoint's step:
    it is not a run killed early but a copy without its checkpoints (as `benchmarks/copy_figure_runs.sh` makes),
    and starting over would overwrite the metrics it holds."""
    reached, first = last_metrics_step(run_dir), read_json(run_dir / "config.json")["config"]["checkpoint_every"]
    if reached > first:
        raise FileNotFoundError(
            f"{run_dir}: its metrics reach env step {reached:,} but it holds no checkpoint to continue from (a copy "
            f"of a run without its checkpoints?); it cannot be extended: train it in another directory, or remove "
            f"its metrics.csv to start it over in place")


def train(cfg, run_dir: Path, meta: dict, env, eval_env, agent: Agent, reward_model: RewardModel | None,
          resume: bool = False, quiet: bool = False) -> dict:
    """Train ``agent`` on ``env`` with the rewards of ``reward_model`` (None: the env's), writing to ``run_dir``
    (``meta``: what config.json holds for a fresh run); returns a summary dict. With ``resume`` the run continues
    from the newest checkpoint in ``run_dir`` (`smiling.algos.registry.train` has checked its config)."""
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    ckpts = Checkpoints(run_dir, keep_policies=cfg.keep_policies)
    buffer = ReplayBuffer(obs_dim, act_dim, min(cfg.buffer_capacity, cfg.steps))
    reward_fn = None if reward_model is None else reward_model.reward
    cache = RewardCache(buffer) if reward_model is not None and cfg.relabel == "update" else None

    latest = ckpts.latest() if resume else None
    if latest is not None:
        check_checkpoint_task(latest, cfg.task)
        loop = read_checkpoint_file(latest / "loop.json", json.loads)
        state = read_checkpoint_file(latest / "agent.msgpack", agent.from_bytes)
        read_checkpoint_file(latest / "buffer.npz", lambda data: buffer.load_state_dict(npz_from_bytes(data)))
        rng = np.random.default_rng()
        rng.bit_generator.state = loop["np_rng"]
        act_key = jax.numpy.asarray(np.asarray(loop["act_key"], np.uint32))
        if reward_model is not None:
            load_reward_state(reward_model, latest)
            if cache is not None:
                name = CACHE_FILE if (latest / CACHE_FILE).exists() else "reward-cache.npz"
                cache.load_state_dict(read_checkpoint_file(latest / name, npz_from_bytes), reward_fn)
        truncate_metrics(run_dir, loop["step"])
        # everything is read (a refusal comes before config.json changes); a finished run resumed again trains
        # nothing: nothing to record
        if loop["step"] < cfg.steps:
            _record_changes(run_dir, cfg, loop["step"], meta.get("commit"), meta.get("cpus"))
        loop["next_ckpt"] = min(loop["next_ckpt"], loop["step"] + cfg.checkpoint_every)  # a new cadence applies now
        loop["task"] = cfg.task  # (checkpoints written before loop.json named it name it from now on)
    else:
        if resume:  # killed before the first checkpoint: start over in place (after checking that is what it was)
            _check_restartable(run_dir)
            truncate_metrics(run_dir, -1)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", {**meta, "obs_dim": obs_dim, "action_dim": act_dim,
                                                    "obs_keys": env.obs_keys})
        state = agent.init(cfg.seed)
        rng = np.random.default_rng(derive_seed(cfg.seed, 2))
        act_key = jax.random.PRNGKey(derive_seed(cfg.seed, 3))
        loop = {"task": cfg.task, "step": 0, "episode": 0, "wall_time": 0.0, "next_eval": 0,
                "next_ckpt": cfg.checkpoint_every}

    logger = MetricsLogger(run_dir, CORE_COLUMNS, cfg.tensorboard, wandb_settings(cfg, meta))
    step, episode = loop["step"], loop["episode"]
    wall0, t0 = loop["wall_time"], time.perf_counter()
    last_eval = loop.get("last_eval")
    bar = tqdm(total=cfg.steps, initial=step, unit="step", disable=quiet, dynamic_ncols=True,
               mininterval=1.0, desc=cfg.task)

    def wall() -> float:
        return wall0 + time.perf_counter() - t0

    def do_eval() -> dict:
        nonlocal last_eval
        rets = evaluate(agent, agent.policy_params(state), eval_env, cfg.eval_episodes, (cfg.seed, EVAL_STREAM, step),
                        stochastic=cfg.eval_stochastic)
        last_eval = float(rets.mean())
        loop["next_eval"] = step + cfg.eval_every
        return {"eval_return": float(rets.mean()), "eval_return_std": float(rets.std())}

    stop = StopSignals()  # SIGTERM/SIGINT: finish the episode, checkpoint, raise TrainingStopped
    try:
        stop.install()
        if step == 0 and loop["next_eval"] == 0:
            logger.log({"step": 0, "episode": 0, "wall_time": wall(), **do_eval()})
        steps_at_resume, t_resume = step, time.perf_counter()
        while step < cfg.steps:
            obs, _ = env.reset(seed=derive_seed(cfg.seed, TRAIN_STREAM, episode))
            agent.begin_episode()
            ep_return, done, upd, rm_upd = 0.0, False, [], []
            while not done:
                if step < cfg.seed_steps:
                    action = rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)
                else:
                    action, act_key = agent.act(state, obs, act_key)
                next_obs, reward, term, trunc, _ = env.step(action)
                buffer.add(obs, action, reward, next_obs, term)
                if cache is not None:
                    cache.added()
                obs, ep_return, step = next_obs, ep_return + reward, step + 1
                done = term or trunc or step >= cfg.steps
                if reward_model is not None and step % cfg.reward_update_every == 0:
                    newest = buffer.newest(cfg.reward_update_every)  # the transitions since the last update
                    rm_upd.append(reward_model.update(reward_model.features(*newest)))
                    if cache is not None:
                        cache.refresh(reward_fn)
                rewards_ready = reward_model is None or reward_model.updates > 0
                if step >= cfg.seed_steps and step % cfg.update_every == 0 and rewards_ready:
                    batch = agent.batches(buffer if cache is None else cache, rng, cfg.update_every, reward_fn)
                    if reward_model is not None:
                        batch["reward"] = reward_model.normalize_batch(batch["reward"])
                    state, m = agent.update(state, batch)
                    upd.append(m)
                bar.update(1)
            episode += 1
            row = {"step": step, "episode": episode, "wall_time": wall(), "train_return": ep_return,
                   "steps_per_sec": (step - steps_at_resume) / max(1e-9, time.perf_counter() - t_resume)}
            for ms in (upd, rm_upd):
                if ms:
                    row.update({k: float(np.mean([m[k] for m in ms])) for k in ms[0]})
            bad = [k for k in (upd[0] if upd else ()) if not np.isfinite(row[k])]
            if bad:
                raise FloatingPointError(f"{', '.join(bad)} became {row[bad[0]]} at step {step}")
            if step >= loop["next_eval"] or step >= cfg.steps:
                row.update(do_eval())
            logger.log(row)
            bar.set_postfix(ret=f"{ep_return:.0f}", eval=f"{last_eval:.0f}" if last_eval is not None else "-",
                            refresh=False)
            loop.update(step=step, episode=episode, wall_time=wall(), last_eval=last_eval)
            due = step >= loop["next_ckpt"] or step >= cfg.steps
            if due:
                loop["next_ckpt"] = step + cfg.checkpoint_every
            if due or stop.requested:  # a stop's checkpoint keeps the cadence: the resumed run is unchanged
                loop["np_rng"] = rng.bit_generator.state
                loop["act_key"] = np.asarray(act_key).tolist()
                _save_checkpoint(ckpts, agent, state, buffer, loop, reward_model, cache)
            if stop.requested and step < cfg.steps:
                raise TrainingStopped(f"stopped by {signal.Signals(stop.requested).name} at step {step} after a "
                                      f"checkpoint: continue with --resume {run_dir}", stop.requested)
    finally:
        stop.restore()
        bar.close()
        logger.close()
    plot_run(run_dir)
    if stop.requested:  # it came in the last episode: the run is finished, but whoever sent it wants a stop
        raise TrainingStopped(f"stopped by {signal.Signals(stop.requested).name} at step {step}, the run's last "
                              f"(finished: {run_dir})", stop.requested)
    return {"run_dir": str(run_dir), "step": step, "episodes": episode, "final_eval_return": last_eval,
            "wall_time": wall()}
