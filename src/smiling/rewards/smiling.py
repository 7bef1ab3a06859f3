"""SMILING's reward model (paper Algorithm 1, cost of Eq. 4 in noise-prediction form, Remark 1).

* The expert score g_e is fitted once on the expert's states (standardized with the expert statistics) and
  cached on disk by a hash of the demonstrations, the score config, ``expert_steps``, the seed and
  ``standardize`` (``$SMILING_CACHE``, default
  ``~/.cache/smiling``), as Flax msgpack.
* The learner score g_k is warm-started and refitted on a reservoir sample of *all* learner states so far
  (`Reservoir`) at every ``update`` (the loop calls it every ~1000 env steps, as in the paper).
* Cost, per state s, with K noise levels stratified per state and one eps per level shared by both networks:

      c(s) = 1/K sum_k ||g_e(x_k, u_k) - eps_k||^2 - ||g_k(x_k, u_k) - eps_k||^2,  x_k = alpha_k s + sigma_k eps_k

  with each squared error capped at ||eps_k||^2 by default (``cap_errors``; `smiling.diffusion.model.denoising_errors`).

  reward = -(c(s) - mu) / sd * reward_std (paper §6: mean 0, std 0.1).
* Normalization statistics (mu, sd) are refreshed after every update on a fixed probe of learner states and
  then held fixed, so the reward is stationary between updates. sd is the spread of the *true* cost across
  states: the Monte-Carlo variance of each estimate (var_k / K) is subtracted from the spread of the
  estimates, so a small K does not inflate sd and shrink the signal. The default ``normalization="robust"``
  takes mu and sd as the median and the interquartile range / 1.349 (and clips the normalized cost);
  ``"moments"`` (mean and standard deviation, the paper's z-score) lets a few learner states far from the
  expert's (huge costs) inflate sd a hundredfold and leave every other state with a near-constant reward
  (seen on cheetah-run, docs/results.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from typing import Literal, get_args

import jax
import numpy as np

from smiling.diffusion.model import LEVELS, Levels, ScoreConfig, ScoreModel, denoising_error_gap_jit
from smiling.rewards.base import Fifo, Reservoir, RewardModel, expert_matrix, made_from_hash
from smiling.utils.cache import cache_root
from smiling.utils.config import at_least_one, check_choice, check_field_types
from smiling.utils.io import atomic_write_bytes, npz_bytes

Normalization = Literal["robust", "moments", "batch"]
NORMALIZATIONS = get_args(Normalization)
"""Values of `SmilingConfig.normalization`."""
MemoryKind = Literal["reservoir", "fifo"]
MEMORY_KINDS = get_args(MemoryKind)
ScoredState = Literal["next", "current"]
STATES = get_args(ScoredState)


@dataclasses.dataclass(frozen=True)
class SmilingConfig:
    score: ScoreConfig = ScoreConfig()
    num_levels: int = 8
    """K noise levels per state in the cost (paper: 500). Default 8: with stratified levels and one eps per level
    shared by both networks, a K=8 estimate ranks expert above random states almost as well as K=512, at a
    fraction of the cost (measured in docs/benchmarks.md)."""
    expert_steps: int = 20_000
    """Score-matching steps for the expert model (paper: 4000 epochs of 5000 states at batch 1024)."""
    learner_steps: int = 100
    """Score-matching steps per update of the learner model (paper: ~98)."""
    memory: int = 100_000
    """Learner states kept (see memory_kind)."""
    memory_kind: MemoryKind = "reservoir"
    """reservoir: a uniform sample of all learner states so far (the paper's aggregation over all past policies,
    Algorithm 1 line 3); fifo: the most recent ``memory`` states (the reference code: 200k)."""
    reward_std: float = 0.1
    """Standard deviation of the normalized reward (paper: 0.1)."""
    probe: int = 4096
    """Learner states used to refresh the normalization statistics after each update."""
    normalization: Normalization = "robust"
    """How the cost's centre and spread are estimated on the probe: "robust" (median and interquartile range /
    1.349, normalized cost clipped to +-reward_clip), so that a few far out-of-distribution states cannot
    flatten the reward of all others, or "moments" (mean and standard deviation; it collapsed SMILING on
    cheetah-run, docs/results.md). The robust Monte-Carlo correction uses the median per-state variance, which
    under-corrects at K < 4 (tests/test_rewards.py). "batch" is the reference code's: no probe, each SAC batch's
    costs z-scored over the batch."""
    reward_clip: float = 10.0
    """With normalization="robust": bound on |cost - centre| / spread before scaling by reward_std."""
    use_actions: bool = False
    """Score (state, action) pairs instead of states (paper §6.2)."""
    standardize: bool = True
    """Standardize states with the expert data's mean and std before diffusing them (the reference code diffuses
    raw observations)."""
    levels: Levels = "stratified"
    """Placement of the K noise levels of a state: stratified (one random level per stratum, unbiased) or even
    (the same evenly spaced levels for every state, as the reference code)."""
    score_state: ScoredState = "next"
    """Which state of a transition (s, a, s') is scored, and stored for the learner model: next (s', the state
    the action led to) or current (s, as the reference code's SAC scores ``obs``). Ignored with use_actions."""
    cap_errors: bool = True
    """Bound each denoising error by what predicting zero noise scores, min(||g - eps||^2, ||eps||^2), for both
    networks (`smiling.diffusion.model.denoising_errors` explains why and what it gives up). Not in the paper;
    without it SMILING's cost kept the walker on the floor (docs/results.md, "Getting up")."""

    def __post_init__(self):
        check_field_types(self, "smiling.")
        for name, choices in (("normalization", NORMALIZATIONS), ("memory_kind", MEMORY_KINDS), ("levels", LEVELS),
                              ("score_state", STATES)):
            check_choice(getattr(self, name), choices, f"smiling.{name}")
        if not 1 <= self.num_levels <= MAX_LEVELS:
            raise ValueError(f"smiling.num_levels (K) must be in [1, {MAX_LEVELS}], got {self.num_levels}")
        at_least_one(self, "expert_steps", "learner_steps", "memory", "probe", prefix="smiling.")
        for name in ("reward_std", "reward_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"smiling.{name} must be > 0, got {getattr(self, name)}")

MAX_LEVELS = 1 << 13
"""Most noise levels K per state."""

MAX_PAIRS: int | None = None
"""Most (state, noise level) pairs evaluated in one call; None: `pairs_per_call` chooses by JAX's backend."""


def pairs_per_call() -> int:
    """(state, noise level) pairs per cost call: `MAX_PAIRS` if set, else 8192 on a CPU (a call's hidden
    activations, 8192 x 256 float32 = 8 MiB per network, stay in the caches; larger calls are slower there) and
    2**20 on an accelerator (each call costs a fixed launch and copy, so few large calls win; about 1 GiB of
    activations per network at width 256). Measured both ways in docs/benchmarks.md."""
    if MAX_PAIRS is not None:
        return MAX_PAIRS
    return 1 << 13 if jax.default_backend() == "cpu" else 1 << 20


def expert_cache_key(made_from: str, cfg: SmilingConfig) -> str:
    """The disk cache's name for a fitted expert score model: what it was made from (`made_from_hash`: the expert
    features and the seed) and the settings that shape its fit."""
    key = [made_from, dataclasses.asdict(cfg.score), cfg.expert_steps] + ([] if cfg.standardize else ["raw"])
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


class SmilingReward(RewardModel):
    def __init__(self, expert_features: np.ndarray, config: SmilingConfig = SmilingConfig(), seed: int = 0,
                 use_cache: bool = True):
        expert_features = expert_matrix(expert_features)
        self.config, self.use_actions = config, config.use_actions
        self.dim = dim = expert_features.shape[1]
        self.made_from = made_from_hash(expert_features, seed)
        if config.standardize:
            mean, std = ScoreModel.standardization(expert_features)
        else:
            mean, std = np.zeros(dim, np.float32), np.ones(dim, np.float32)
        self.expert = ScoreModel(dim, config.score, mean, std, seed=seed)
        self.learner = ScoreModel(dim, config.score, mean, std, seed=seed + 1)
        memory = Reservoir if config.memory_kind == "reservoir" else Fifo
        self.memory = memory(dim, config.memory, seed=seed + 2)
        self.key = jax.random.PRNGKey(seed + 3)
        self.norm = (0.0, 1.0)
        self.updates = 0
        path = cache_root() / "expert_scores" / f"{expert_cache_key(self.made_from, config)}.msgpack"
        if use_cache and path.exists():
            self.expert.load_bytes(path.read_bytes())
            self.origin = "expert score model loaded from the cache"
        else:
            self.expert.fit(expert_features, config.expert_steps)
            self.origin = f"expert score model fitted ({config.expert_steps} steps)"
            if use_cache:
                atomic_write_bytes(path, self.expert.to_bytes())
                self.origin += ", cached for reuse"
        self.expert_loss = self.expert.loss(expert_features)

    @classmethod
    def default_config(cls) -> SmilingConfig:
        return SmilingConfig()

    def cost_samples(self, features: np.ndarray, key=None):
        """(per-state cost estimates (n,), per-sample gaps (n, K)) for raw features."""
        if key is None:
            self.key, key = jax.random.split(self.key)
        x = self.expert.standardize(self.checked(features))
        K = self.config.num_levels
        chunk = max(1, pairs_per_call() // K)  # bounds memory: the hidden layer holds chunk * K * width floats
        est, gaps = [], []
        for i in range(0, x.shape[0], chunk):
            k = key if i == 0 else jax.random.fold_in(key, i // chunk)
            e, g = denoising_error_gap_jit(self.expert.net, self.config.score.schedule, self.expert.params,
                                           self.learner.params, x[i:i + chunk], k, K, self.config.levels,
                                           self.config.cap_errors)
            est.append(np.asarray(e))
            gaps.append(np.asarray(g))
        return np.concatenate(est), np.concatenate(gaps)

    def cost(self, features: np.ndarray) -> np.ndarray:
        return self.cost_samples(features)[0]

    def features(self, obs, action, next_obs):
        if self.config.score_state == "current" and not self.use_actions:
            return obs
        return super().features(obs, action, next_obs)

    def refresh_normalization(self, probe: np.ndarray) -> tuple[float, float]:
        est, gaps = self.cost_samples(probe)
        per_state_mc = gaps.var(axis=1, ddof=1) / gaps.shape[1] if gaps.shape[1] > 1 else np.zeros(len(est))
        if self.config.normalization == "robust":
            q25, centre, q75 = np.percentile(est, [25, 50, 75])
            spread_var, mc_var = ((q75 - q25) / 1.349) ** 2, np.median(per_state_mc)
        else:
            centre, spread_var, mc_var = est.mean(), est.var(), per_state_mc.mean()
        true_var = max(float(spread_var) - float(mc_var), 1e-3 * float(spread_var) + 1e-12)
        self.norm = (float(centre), float(np.sqrt(true_var)))
        return self.norm

    def update(self, learner_features: np.ndarray) -> dict[str, float]:
        self.memory.add(learner_features)
        data = self.memory.sample()
        loss = self.learner.fit(data, self.config.learner_steps)
        rng = np.random.default_rng(self.updates)
        self.updates += 1
        metrics = {"score_loss_learner": loss, "score_loss_expert": self.expert_loss}
        if self.config.normalization == "batch":  # the reward is normalized per SAC batch: no statistics
            return metrics
        probe = data[rng.integers(0, len(data), self.config.probe)]  # fixed shape: no recompiles
        mu, sd = self.refresh_normalization(probe)
        return {**metrics, "cost_mean": mu, "cost_std": sd}

    def reward(self, obs, action, next_obs) -> np.ndarray:
        """-(c - mu) / sd * reward_std with the probe's statistics; with normalization="batch" the raw -c, which
        `normalize_batch` then z-scores per batch."""
        self.warn_if_untrained()
        c = self.cost(self.features(obs, action, next_obs))
        if self.config.normalization == "batch":
            return (-c).astype(np.float32)
        mu, sd = self.norm
        z = (c - mu) / sd
        if self.config.normalization == "robust":
            z = np.clip(z, -self.config.reward_clip, self.config.reward_clip)
        return (-z * self.config.reward_std).astype(np.float32)

    def normalize_batch(self, rewards: np.ndarray) -> np.ndarray:
        """normalization="batch" (the reference code): each batch (leading axis) z-scored over its samples and
        scaled by reward_std; otherwise unchanged."""
        if self.config.normalization != "batch":
            return rewards
        r = np.asarray(rewards, np.float64)
        axes = tuple(range(1, r.ndim))
        z = (r - r.mean(axis=axes, keepdims=True)) / (r.std(axis=axes, keepdims=True) + 1e-8)
        return (z * self.config.reward_std).astype(np.float32)

    def state_dict(self) -> dict[str, bytes]:
        return {"learner_score.msgpack": self.learner.to_bytes(), "memory.npz": npz_bytes(self.memory.state_dict()),
                "state.json": json.dumps({"norm": self.norm, "updates": self.updates,
                                           "key": np.asarray(self.key).tolist()}).encode()}

    def load_state_dict(self, files: dict[str, bytes]) -> None:
        self.learner.load_bytes(files["learner_score.msgpack"])
        with np.load(io.BytesIO(files["memory.npz"]), allow_pickle=False) as z:
            self.memory.load_state_dict({k: z[k] for k in z.files})
        meta = json.loads(files["state.json"])
        self.norm, self.updates = tuple(meta["norm"]), meta["updates"]
        self.key = jax.numpy.asarray(np.asarray(meta["key"], np.uint32))
