"""The off-policy training loop: SAC on a task's true reward (``algo="sac"``, used to train experts) or on
an imitation reward model (``algo="smiling"``: paper Algorithm 1; ``algo="dac"``: a discriminator).

Read top to bottom: config, set-up (fresh or resumed), then the loop — act, step, store, update the reward
model every ``reward_update_every`` env steps with the learner features collected since its last update
(imitation only), update SAC every ``update_every`` env steps with ``update_every * utd`` fused gradient
steps on batches whose rewards the reward model relabels at sample time (or, with ``relabel="update"``,
reads from a `RewardCache` recomputed after each reward-model update), log a row per episode, evaluate
with the mean action on a separate env (true env return: reported, never learned from), checkpoint at
episode ends.

Determinism: episode ``k`` of training is reset with ``derive_seed(seed, 0, k)`` and evaluation episodes
with ``derive_seed(seed, 1, step, j)``, so an env's randomness depends on the episode's index, not on
history. Together with the checkpointed agent, buffer, and RNG states this makes a resumed run continue
exactly like an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

import smiling
from smiling.algos.bc import BCConfig, train_bc
from smiling.algos.bco import BCOConfig, train_bco
from smiling.algos.iqlearn import LOSSES as IQ_LOSSES
from smiling.algos.iqlearn import ExpertSampler, IQLearnAgent, IQLearnConfig
from smiling.envs import make_env, validate_task_id
from smiling.envs.rollout import rollout
from smiling.rewards import DacConfig, SmilingConfig
from smiling.rewards.dac import REWARD_FORMS as DAC_REWARDS
from smiling.rl import SAC, ReplayBuffer, RewardCache, SACConfig
from smiling.rl.dreamer import Dreamer, DreamerConfig
from smiling.runs import METRIC_COLUMNS, Checkpoints, MetricsLogger, plot_run, truncate_metrics
from smiling.utils.config import from_dict, to_dict
from smiling.utils.io import atomic_write_json, load_npz, npz_bytes, read_json
from smiling.utils.seeding import EVAL_STREAM, TRAIN_STREAM, derive_seed


@dataclasses.dataclass
class TrainConfig:
    """Configuration of a training run: SAC on a task's true reward, or imitation (SMILING or a baseline)."""

    task: str = "dmc:ball_in_cup-catch"
    """Task id, e.g. dmc:cheetah-run or gym:Hopper-v5 (list them with `smiling tasks`)."""
    steps: int = 100_000
    """Total environment steps."""
    seed: int = 0
    horizon: int = 1000
    """Steps per episode (fixed-length episodes, the paper's setting)."""
    keep_termination: bool = False
    """End episodes on the env's own termination instead of running on to the horizon."""
    seed_steps: int = 5000
    """Uniform-random actions for the first steps, before any update."""
    update_every: int = 50
    """Env steps between update rounds; each round runs update_every * utd gradient steps in one call."""
    eval_every: int = 10_000
    """Evaluate (separate env; mean action unless eval_stochastic) every this many env steps, at the next episode
    end."""
    eval_episodes: int = 5
    eval_stochastic: bool = False
    """Evaluate with actions sampled from the policy (DreamerV3's evaluation protocol; Dreamer samples its
    latents too) instead of the mean action; `smiling evaluate --stochastic` measures the same thing later."""
    checkpoint_every: int = 50_000
    """Checkpoint (agent, buffer, RNG states) every this many env steps, at the next episode end."""
    keep_policies: bool = False
    """Keep every checkpoint's agent (not its replay buffer), e.g. to pick an expert checkpoint afterwards with
    `smiling evaluate/demos --checkpoint STEP`; only the newest checkpoint keeps what resuming needs."""
    buffer_capacity: int = 1_000_000
    tensorboard: bool = False
    """Also write TensorBoard events under RUN_DIR/tb."""
    algo: str = "sac"
    """sac: learn from the env's true reward (e.g. an expert); smiling: imitate demonstrations (Algorithm 1);
    dac, iqlearn, bc, bco: the baselines."""
    demos: str | None = None
    """Imitation only: demonstrations (.npz, Minari dir, D4RL .hdf5) or a task id with bundled demos
    (default: the task's bundled demos)."""
    reward_update_every: int = 1000
    """Imitation only: env steps between reward-model updates (paper: 1000)."""
    relabel: str = "sample"
    """Imitation only: sample = reward each sampled batch with the current reward model (a fresh Monte-Carlo
    draw per sample); update = reward every stored transition once per reward-model update and cache it
    (cheaper for large K while the buffer holds fewer than ~batch x reward_update_every transitions)."""
    rl: str = "sac"
    """RL backend: sac (model-free) or dreamer (DreamerV3, model-based); the reward (true or imitation) is
    the same either way."""
    sac: SACConfig = dataclasses.field(default_factory=SACConfig)
    dreamer: DreamerConfig = dataclasses.field(default_factory=DreamerConfig)
    smiling: SmilingConfig = dataclasses.field(default_factory=SmilingConfig)
    dac: DacConfig = dataclasses.field(default_factory=DacConfig)
    bc: BCConfig = dataclasses.field(default_factory=BCConfig)
    bco: BCOConfig = dataclasses.field(default_factory=BCOConfig)
    iqlearn: IQLearnConfig = dataclasses.field(default_factory=IQLearnConfig)

    def validate(self) -> None:
        validate_task_id(self.task)
        for name in ("steps", "horizon", "update_every", "eval_every", "eval_episodes", "checkpoint_every",
                     "buffer_capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed_steps < 0:
            raise ValueError(f"seed_steps must be >= 0, got {self.seed_steps}")
        if self.sac.utd < 1 or self.sac.batch_size < 1:
            raise ValueError("sac.utd and sac.batch_size must be >= 1")
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algo {self.algo!r}; choose one of {', '.join(ALGOS)}")
        if self.rl not in RL_BACKENDS:
            raise ValueError(f"unknown rl backend {self.rl!r}; choose one of {', '.join(RL_BACKENDS)}")
        if self.rl == "dreamer":
            if self.algo not in ("sac", "smiling", "dac"):
                raise ValueError(f"--rl dreamer runs sac (true reward), smiling and dac; {self.algo} is tied to SAC")
            if self.relabel != "sample":
                raise ValueError("--rl dreamer relabels each sampled sequence; use relabel=sample")
            self.dreamer.validate()
            if self.seed_steps < self.dreamer.seq_len:
                raise ValueError(f"seed_steps ({self.seed_steps}) must be >= dreamer.seq_len ({self.dreamer.seq_len})")
        if self.relabel not in ("sample", "update"):
            raise ValueError(f"relabel must be 'sample' or 'update', got {self.relabel!r}")
        if self.reward_update_every < 1:
            raise ValueError(f"reward_update_every must be >= 1, got {self.reward_update_every}")
        if self.algo == "smiling":
            sm = self.smiling
            if not 1 <= sm.num_levels <= 8192:
                raise ValueError(f"smiling.num_levels (K) must be in [1, 8192], got {sm.num_levels}")
            for name in ("expert_steps", "learner_steps", "memory", "probe"):
                if getattr(sm, name) < 1:
                    raise ValueError(f"smiling.{name} must be >= 1, got {getattr(sm, name)}")
            if sm.reward_std <= 0:
                raise ValueError(f"smiling.reward_std must be > 0, got {sm.reward_std}")
        if self.algo == "bc":
            b = self.bc
            if min(b.steps, b.batch_size, b.eval_every) < 1 or b.steps % b.eval_every:
                raise ValueError(f"bc.steps ({b.steps}) must be a positive multiple of bc.eval_every "
                                 f"({b.eval_every}), and bc.batch_size >= 1")
        if self.algo == "bco":
            b = self.bco
            if min(b.pre_steps, b.idm_steps, b.policy_steps, b.batch_size) < 1 or not b.alpha > 0:
                raise ValueError(f"bco.pre_steps, idm_steps, policy_steps, batch_size must be >= 1 and alpha > 0: {b}")
        if self.algo == "iqlearn":
            iq = self.iqlearn
            if iq.loss not in IQ_LOSSES:
                raise ValueError(f"iqlearn.loss must be one of {', '.join(IQ_LOSSES)}, got {iq.loss!r}")
            if not iq.chi2_alpha > 0 or not iq.temperature > 0 or iq.num_critics < 1:
                raise ValueError(f"iqlearn.chi2_alpha and temperature must be > 0, num_critics >= 1: {iq}")
        if self.algo == "dac":
            dc = self.dac
            for name in ("width", "batch_size", "steps", "memory"):
                if getattr(dc, name) < 1:
                    raise ValueError(f"dac.{name} must be >= 1, got {getattr(dc, name)}")
            if dc.reward not in DAC_REWARDS:
                raise ValueError(f"dac.reward must be one of {', '.join(DAC_REWARDS)}, got {dc.reward!r}")
            if dc.gp_weight < 0:
                raise ValueError(f"dac.gp_weight must be >= 0, got {dc.gp_weight}")


ALGOS = ("sac", "smiling", "dac", "iqlearn", "bc", "bco")
RL_BACKENDS = ("sac", "dreamer")


def config_to_dict(cfg: TrainConfig) -> dict:
    return to_dict(cfg)


def config_from_dict(d: dict) -> TrainConfig:
    """A TrainConfig from its JSON form; missing keys take today's defaults, except settings whose default
    changed since a run was written (so an old run resumes and is labelled as it ran)."""
    d = dict(d)
    if isinstance(d.get("smiling"), dict) and "normalization" not in d["smiling"]:
        d["smiling"] = {**d["smiling"], "normalization": "moments"}   # written before the option existed
    if isinstance(d.get("smiling"), dict) and "cap_errors" not in d["smiling"]:
        d["smiling"] = {**d["smiling"], "cap_errors": False}          # likewise
    return from_dict(TrainConfig, d)


def make_agent(cfg: TrainConfig, obs_dim: int, act_dim: int) -> SAC | Dreamer:
    """The RL agent of a run: SAC, IQ-Learn's inverse soft-Q variant of it, or DreamerV3 (``rl="dreamer"``)."""
    if cfg.rl == "dreamer":
        return Dreamer(obs_dim, act_dim, cfg.dreamer)
    if cfg.algo == "iqlearn":
        return IQLearnAgent(obs_dim, act_dim, cfg.sac, cfg.iqlearn)
    return SAC(obs_dim, act_dim, cfg.sac)


def make_reward_model(cfg: TrainConfig):
    """The reward model of an imitation algo (None for sac), fitted on the expert demonstrations."""
    if cfg.algo in ("sac", "iqlearn"):
        return None
    from smiling.data import load_demos
    from smiling.rewards import DacReward, SmilingReward

    demos = load_demos(cfg.demos or cfg.task, task=cfg.task)
    use_actions = cfg.smiling.use_actions if cfg.algo == "smiling" else cfg.dac.use_actions
    if use_actions:
        s, a = demos.state_action_pairs()
        features = np.concatenate([s, a], axis=1)
    else:
        features = demos.states()
    if cfg.algo == "dac":
        return DacReward(features, cfg.dac, seed=cfg.seed)
    return SmilingReward(features, cfg.smiling, seed=cfg.seed)


def load_config(run_dir: str | Path) -> TrainConfig:
    data = read_json(Path(run_dir) / "config.json")
    return config_from_dict(data["config"])


def acting(agent: SAC, params, stochastic: bool = False, key_seed: int = 0):
    """``(policy(obs) -> action, on_reset())`` for `rollout`: the mean action (SAC: tanh(mu); Dreamer: actor mean
    on the most likely latent), or with ``stochastic`` actions sampled from the policy (Dreamer: latent and action
    both sampled, as DreamerV3 acts) from a JAX key seeded with ``key_seed``. Either way the agent's evaluation
    episode state is used, never the training episode's, so this is safe in the middle of training."""
    if not stochastic:
        return (lambda obs: agent.act_deterministic(params, obs)), (lambda: agent.begin_episode(evaluation=True))
    key = [jax.random.PRNGKey(key_seed)]

    def policy(obs):
        action, key[0] = agent.act(params, obs, key[0], evaluation=True)
        return action

    return policy, (lambda: agent.begin_episode(evaluation=True))


def evaluate(agent: SAC, params, env, episodes: int, seed_parts: tuple[int, ...],
             stochastic: bool = False) -> np.ndarray:
    """Returns of ``episodes`` episodes with the deterministic (mean) action, or sampled actions (`acting`);
    episode j seeded from seed_parts."""
    policy, on_reset = acting(agent, params, stochastic, derive_seed(*seed_parts, 0, 1))
    _, _, rewards = rollout(env, policy, episodes, seed_parts, on_reset=on_reset)
    return rewards.sum(axis=1)


def _save_checkpoint(ckpts: Checkpoints, agent: SAC, state, buffer: ReplayBuffer, loop: dict,
                     reward_model, pending: list, cache: RewardCache | None) -> None:
    files = {
        "agent.msgpack": agent.to_bytes(state),
        "buffer.npz": npz_bytes(buffer.state_dict()),
        "loop.json": (json.dumps(loop, indent=1) + "\n").encode(),
    }
    if reward_model is not None:
        files.update({f"reward-{k}": v for k, v in reward_model.state_dict().items()})
        files["reward-pending.npz"] = npz_bytes({"features": np.asarray(pending, np.float32)})
    if cache is not None:
        files["reward-cache.npz"] = npz_bytes(cache.state_dict())
    ckpts.save(loop["step"], files)


def load_reward_state(reward_model, ckpt: Path) -> None:
    """Restore ``reward_model`` from the ``reward-*`` files of checkpoint folder ``ckpt`` (its own state; the
    loop's pending features and the reward cache are the loop's to read)."""
    loop_files = {"pending.npz", "cache.npz"}
    names = (p.name[len("reward-"):] for p in ckpt.glob("reward-*"))
    reward_model.load_state_dict({n: (ckpt / f"reward-{n}").read_bytes() for n in names if n not in loop_files})


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, quiet: bool = False) -> dict:
    """Train SAC on ``cfg.task``'s reward, writing to ``run_dir``; returns a summary dict.

    With ``resume=True`` the run continues from the newest checkpoint in ``run_dir``; ``cfg`` must equal the
    saved config except possibly ``steps`` (a larger value extends the run, and config.json records it).
    """
    run_dir = Path(run_dir)
    cfg.validate()
    if cfg.algo == "bc":
        return train_bc(cfg, run_dir, resume, quiet)
    if cfg.algo == "bco":
        return train_bco(cfg, run_dir, resume, quiet)
    ckpts = Checkpoints(run_dir, keep_policies=cfg.keep_policies)
    if resume:
        if not (run_dir / "config.json").exists():
            raise FileNotFoundError(f"{run_dir}: no config.json, not a run directory to resume")
        saved = load_config(run_dir)
        if cfg != saved:
            diff = [f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(saved, f.name)]
            if diff != ["steps"]:
                raise ValueError(f"{run_dir}: resuming with a config that differs from the saved one in {diff}; "
                                 f"only steps may change (to extend a run)")
            data = read_json(run_dir / "config.json")
            data["config"]["steps"] = cfg.steps
            data.setdefault("extended_from_steps", []).append(saved.steps)
            atomic_write_json(run_dir / "config.json", data)
    elif (run_dir / "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume {run_dir} to continue it, "
                              f"or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)

    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    eval_env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = make_agent(cfg, obs_dim, act_dim)
    expert = None
    if cfg.algo == "iqlearn":
        from smiling.data import load_demos

        expert = ExpertSampler(load_demos(cfg.demos or cfg.task, task=cfg.task), cfg.iqlearn.use_actions)
    buffer = ReplayBuffer(obs_dim, act_dim, min(cfg.buffer_capacity, cfg.steps))
    if cfg.algo == "smiling" and not quiet:
        print(f"{cfg.algo}: expert score model: loading it from the cache, or fitting it "
              f"({cfg.smiling.expert_steps} steps; then cached for reuse)...", file=sys.stderr, flush=True)
    t_rm = time.perf_counter()
    reward_model = make_reward_model(cfg)
    if cfg.algo == "smiling" and not quiet:
        how = "loaded from cache" if reward_model.expert_from_cache else "fitted"
        print(f"{cfg.algo}: expert score model {how} in {time.perf_counter() - t_rm:.0f} s", file=sys.stderr)
    reward_fn = None if reward_model is None else reward_model.reward
    cache = RewardCache(buffer) if reward_model is not None and cfg.relabel == "update" else None
    pending: list[np.ndarray] = []  # learner features since the reward model's last update

    latest = ckpts.latest() if resume else None
    if latest is not None:
        loop = json.loads((latest / "loop.json").read_text())
        state = agent.from_bytes((latest / "agent.msgpack").read_bytes())
        buffer.load_state_dict(load_npz(latest / "buffer.npz"))
        rng = np.random.default_rng()
        rng.bit_generator.state = loop["np_rng"]
        act_key = jax.numpy.asarray(np.asarray(loop["act_key"], np.uint32))
        if reward_model is not None:
            pending = list(load_npz(latest / "reward-pending.npz")["features"])
            load_reward_state(reward_model, latest)
            if cache is not None:
                cache.load_state_dict(load_npz(latest / "reward-cache.npz"), reward_fn)
        truncate_metrics(run_dir, loop["step"])
    else:
        if resume:  # killed before the first checkpoint: start over in place
            truncate_metrics(run_dir, -1)
        atomic_write_json(run_dir / "config.json", {
            "config": config_to_dict(cfg), "algo": cfg.algo, "smiling_version": smiling.__version__,
            "obs_dim": obs_dim, "action_dim": act_dim, "obs_keys": env.obs_keys})
        state = agent.init(cfg.seed)
        rng = np.random.default_rng(derive_seed(cfg.seed, 2))
        act_key = jax.random.PRNGKey(derive_seed(cfg.seed, 3))
        loop = {"step": 0, "episode": 0, "wall_time": 0.0, "next_eval": 0, "next_ckpt": cfg.checkpoint_every}

    logger = MetricsLogger(run_dir, METRIC_COLUMNS, cfg.tensorboard)
    step, episode = loop["step"], loop["episode"]
    wall0, t0 = loop["wall_time"], time.perf_counter()
    last_eval = loop.get("last_eval")

    from tqdm.auto import tqdm

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

    try:
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
                if reward_model is not None:
                    pending.append(reward_model.features(obs[None], action[None], next_obs[None])[0])
                obs, ep_return, step = next_obs, ep_return + reward, step + 1
                done = term or trunc or step >= cfg.steps
                if reward_model is not None and step % cfg.reward_update_every == 0:
                    rm_upd.append(reward_model.update(np.stack(pending)))
                    pending.clear()
                    if cache is not None:
                        cache.refresh(reward_fn)
                rewards_ready = reward_model is None or reward_model.updates > 0
                if step >= cfg.seed_steps and step % cfg.update_every == 0 and rewards_ready:
                    if cfg.rl == "dreamer":  # train_ratio replayed steps per env step, in B x T sequences
                        d = cfg.dreamer
                        n = max(1, round(cfg.update_every * d.train_ratio / (d.batch_size * d.seq_len)))
                        batch = buffer.sample_sequences(rng, d.batch_size, d.seq_len, n, reward_fn)
                    else:
                        n = cfg.update_every * cfg.sac.utd
                        source = buffer if cache is None else cache
                        batch = source.sample(rng, cfg.sac.batch_size, n, reward_fn)
                    if reward_model is not None:
                        batch["reward"] = reward_model.normalize_batch(batch["reward"])
                    if expert is not None:  # IQ-Learn: expert transitions beside the learner's; no env reward
                        batch["reward"] = np.zeros_like(batch["reward"])
                        batch.update(expert.sample(rng, cfg.sac.batch_size, n))
                    state, m = agent.update(state, batch)
                    upd.append(m)
                bar.update(1)
            episode += 1
            row = {"step": step, "episode": episode, "wall_time": wall(), "train_return": ep_return,
                   "steps_per_sec": (step - steps_at_resume) / max(1e-9, time.perf_counter() - t_resume)}
            for ms in (upd, rm_upd):
                if ms:
                    row.update({k: float(np.mean([m[k] for m in ms])) for k in ms[0]})
            if upd:
                if not np.isfinite(row["critic_loss"]):
                    raise FloatingPointError(f"critic loss became {row['critic_loss']} at step {step}")
            if step >= loop["next_eval"] or step >= cfg.steps:
                row.update(do_eval())
            logger.log(row)
            bar.set_postfix(ret=f"{ep_return:.0f}", eval=f"{last_eval:.0f}" if last_eval is not None else "-",
                            refresh=False)
            loop.update(step=step, episode=episode, wall_time=wall(), last_eval=last_eval)
            if step >= loop["next_ckpt"] or step >= cfg.steps:
                loop["next_ckpt"] = step + cfg.checkpoint_every
                loop["np_rng"] = rng.bit_generator.state
                loop["act_key"] = np.asarray(act_key).tolist()
                _save_checkpoint(ckpts, agent, state, buffer, loop, reward_model, pending, cache)
    finally:
        bar.close()
        logger.close()
    plot_run(run_dir)
    return {"run_dir": str(run_dir), "step": step, "episodes": episode, "final_eval_return": last_eval,
            "wall_time": wall()}
