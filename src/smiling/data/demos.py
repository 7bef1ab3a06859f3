"""The `Demos` container: an immutable set of fixed-length expert episodes, actions optional.

Shapes (E episodes of T steps, d-dim observations, a-dim actions):

* ``observations``: (E, T+1, d) float32 — s_0 .. s_T of each episode
* ``actions``:      (E, T, a) float32 in [-1, 1], or None for state-only demonstrations
* ``rewards``:      (E, T) float32, or None

``metadata`` is a read-only JSON-able mapping. Keys written by `smiling` (all optional for imported data):
``task``, ``obs_keys``, ``source`` ("smiling", "npz", "minari", "d4rl"), ``expert_run``, ``stochastic``
(sampled vs mean expert actions), ``expert_return_mean``/``expert_return_std`` (over the demo episodes),
``random_return_mean``/``random_return_std``/``random_episodes`` (uniform random policy, for normalization),
``created``, ``smiling_version``.
"""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any, Mapping

import numpy as np


class DemoError(ValueError):
    """Demonstrations with a problem (shape, values, missing actions); the message names source and problem."""


def _frozen(a: np.ndarray | None, dtype) -> np.ndarray | None:
    if a is None:
        return None
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def _as_float32(name: str, a, source: str) -> np.ndarray:
    """``a`` as the float32 it will be stored as; refuses what is not real numbers (strings, booleans, complex)."""
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DemoError(f"{source}: {name} must be numeric (real numbers), got dtype {a.dtype}")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: refused as such below
        return a.astype(np.float32)


def check_arrays(observations, actions, rewards, source: str = "demos") -> None:
    """Raise `DemoError` naming ``source`` for non-numeric data, wrong ranks, empty data, mismatched shapes,
    NaN/inf (in the float32 the arrays are stored as), or actions outside [-1, 1]."""
    obs = _as_float32("observations", observations, source)
    if obs.ndim != 3:
        raise DemoError(f"{source}: observations must have shape (episodes, T+1, obs_dim), got rank {obs.ndim} "
                        f"shape {obs.shape}")
    if obs.size == 0 or obs.shape[1] < 2:
        raise DemoError(f"{source}: no data (observations shape {obs.shape}; need >= 1 episode of >= 1 step)")
    if not np.all(np.isfinite(obs)):
        raise DemoError(f"{source}: observations contain NaN or inf, or values beyond float32's range "
                        f"({int((~np.isfinite(obs)).sum())} values)")
    E, T1, _ = obs.shape
    if actions is not None:
        act = _as_float32("actions", actions, source)
        if act.ndim != 3 or act.shape[:2] != (E, T1 - 1):
            raise DemoError(f"{source}: actions must have shape ({E}, {T1 - 1}, action_dim) to match observations "
                            f"{obs.shape}, got {act.shape}")
        if not np.all(np.isfinite(act)):
            raise DemoError(f"{source}: actions contain NaN or inf")
        if act.size and np.abs(act).max() > 1.0 + 1e-6:
            raise DemoError(f"{source}: actions must lie in [-1, 1], found values in "
                            f"[{act.min():.4g}, {act.max():.4g}]: tasks take actions in [-1, 1], mapped onto the "
                            f"env's own bounds; rescale actions recorded in the env's units")
    if rewards is not None:
        rew = _as_float32("rewards", rewards, source)
        if rew.shape != (E, T1 - 1):
            raise DemoError(f"{source}: rewards must have shape ({E}, {T1 - 1}), got {rew.shape}")
        if not np.all(np.isfinite(rew)):
            raise DemoError(f"{source}: rewards contain NaN or inf, or values beyond float32's range")


def _json_number(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} {x!r} is not JSON-able")


def stack_episodes(episodes, source: str = "episodes", truncate: bool = False, pad_to: int | None = None):
    """Stack (obs (T_i+1, d), actions (T_i, a) or None, rewards (T_i,) or None) episodes into (E, T+1, d),
    (E, T, a) | None, (E, T) | None. Unequal T_i are an error unless ``truncate`` cuts them to the shortest, or
    ``pad_to`` brings each to T = ``pad_to`` steps: a longer one cut, a shorter one (an env that ended early) held
    at its last state with action 0 and reward 0, as the task wrapper holds an env that ends before the horizon."""
    episodes = list(episodes)
    if not episodes:
        raise DemoError(f"{source}: no episodes")
    if pad_to is not None and (truncate or pad_to < 1):
        raise DemoError(f"{source}: pad_to must be >= 1 and excludes truncate, got pad_to={pad_to}, "
                        f"truncate={truncate}")
    lengths = sorted({len(o) - 1 for o, _, _ in episodes})
    if len(lengths) > 1 and not truncate and pad_to is None:
        raise DemoError(f"{source}: episodes have different lengths {lengths[:5]}{'...' if len(lengths) > 5 else ''};"
                        f" pass truncate=True to cut them to the shortest ({lengths[0]} steps), or pad_to=T to hold "
                        f"each at its last state to T steps")
    T = lengths[0] if pad_to is None else int(pad_to)

    def fit(x, n, hold):  # the first n rows of x, the last row (or zeros) repeated to n rows
        x = np.asarray(x)[:n]
        extra = np.repeat(x[-1:], n - len(x), axis=0) if hold else np.zeros((n - len(x), *x.shape[1:]), x.dtype)
        return np.concatenate([x, extra]) if len(x) < n else x

    O = np.stack([fit(o, T + 1, True) for o, _, _ in episodes])
    A = None if any(a is None for _, a, _ in episodes) else np.stack([fit(a, T, False) for _, a, _ in episodes])
    R = None if any(r is None for _, _, r in episodes) else np.stack([fit(r, T, False) for _, _, r in episodes])
    return O, A, R


@dataclasses.dataclass(frozen=True, eq=False)
class Demos:
    observations: np.ndarray
    actions: np.ndarray | None = None
    rewards: np.ndarray | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_arrays(self.observations, self.actions, self.rewards)
        object.__setattr__(self, "observations", _frozen(self.observations, np.float32))
        object.__setattr__(self, "actions", _frozen(self.actions, np.float32))
        object.__setattr__(self, "rewards", _frozen(self.rewards, np.float32))
        try:  # JSON-able (NumPy scalars become numbers), and a private copy
            meta = json.loads(json.dumps(dict(self.metadata or {}), default=_json_number))
        except (TypeError, ValueError) as e:
            raise DemoError(f"demos metadata must be a JSON-able mapping ({e})") from None
        object.__setattr__(self, "metadata", types.MappingProxyType(meta))

    @classmethod
    def from_episodes(cls, observations, actions=None, rewards=None, metadata=None,
                      truncate: bool = False, pad_to: int | None = None) -> "Demos":
        """Demos from per-episode arrays: ``observations`` a list of (T_i+1, d) arrays (s_0 .. s_T of each
        episode), ``actions`` of (T_i, a) and ``rewards`` of (T_i,) arrays, or None. Episodes must have one
        length T (the fixed horizon the loop trains at) unless ``truncate`` cuts them to the shortest or
        ``pad_to=T`` holds each at its last state to T steps (an env that ends early: `stack_episodes`)."""
        n = len(observations)
        for name, per_episode in (("actions", actions), ("rewards", rewards)):
            if per_episode is not None and len(per_episode) != n:
                raise DemoError(f"from_episodes: {len(per_episode)} episodes of {name} for {n} of observations")
        episodes = zip(observations, actions if actions is not None else [None] * n,
                       rewards if rewards is not None else [None] * n)
        O, A, R = stack_episodes(episodes, "from_episodes", truncate, pad_to)
        return cls(O, A, R, metadata)

    # --- sizes ---------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return self.observations.shape[0]

    @property
    def horizon(self) -> int:
        """Steps per episode T (observations hold T+1 states)."""
        return self.observations.shape[1] - 1

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[2]

    @property
    def action_dim(self) -> int | None:
        return None if self.actions is None else self.actions.shape[2]

    @property
    def has_actions(self) -> bool:
        return self.actions is not None

    @property
    def references(self) -> tuple[float, float] | None:
        """(expert, random) mean returns from the metadata, what normalized returns measure against; None
        unless both are there and the expert's is the higher."""
        expert, random = self.metadata.get("expert_return_mean"), self.metadata.get("random_return_mean")
        if expert is None or random is None or not expert > random:
            return None
        return float(expert), float(random)

    @property
    def task(self) -> str | None:
        return self.metadata.get("task")

    def __len__(self) -> int:
        return self.num_episodes

    def __repr__(self) -> str:
        acts = f"actions {self.actions.shape}" if self.has_actions else "no actions"
        return (f"Demos(task={self.task!r}, {self.num_episodes} episodes x {self.horizon} steps, "
                f"obs_dim {self.obs_dim}, {acts})")

    def equals(self, other: "Demos") -> bool:
        """Bit-for-bit equality of every array and of the metadata."""
        def same(a, b):
            return (a is None and b is None) or (a is not None and b is not None and a.shape == b.shape
                                                 and a.dtype == b.dtype and a.tobytes() == b.tobytes())
        return (same(self.observations, other.observations) and same(self.actions, other.actions)
                and same(self.rewards, other.rewards) and dict(self.metadata) == dict(other.metadata))

    # --- views for learning --------------------------------------------------------------------------
    def states(self) -> np.ndarray:
        """All states, flattened: (E * (T+1), d). The state-only view SMILING's expert score model fits."""
        return self.observations.reshape(-1, self.obs_dim)

    def state_action_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(s_t, a_t) for every step: ((E*T, d), (E*T, a)). Needs actions."""
        if self.actions is None:
            raise DemoError(f"demos of {self.task or 'an unnamed task'} have no actions (state-only); this needs "
                            f"(state, action) pairs: use demonstrations recorded with actions")
        return self.observations[:, :-1].reshape(-1, self.obs_dim), self.actions.reshape(-1, self.action_dim)

    def state_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(s_t, s_{t+1}) for every step: two (E*T, d) arrays (e.g. to label with an inverse dynamics model)."""
        return (self.observations[:, :-1].reshape(-1, self.obs_dim),
                self.observations[:, 1:].reshape(-1, self.obs_dim))

    # --- selection -----------------------------------------------------------------------------------
    def select(self, episodes) -> "Demos":
        """The given episode indices, in that order."""
        idx = np.asarray(episodes, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise DemoError("select: no episodes selected")
        if idx.min() < -self.num_episodes or idx.max() >= self.num_episodes:
            raise DemoError(f"select: episode index out of range for {self.num_episodes} episodes")
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return Demos(self.observations[idx], pick(self.actions), pick(self.rewards), dict(self.metadata))

    def subsample(self, episodes: int | None = None, horizon: int | None = None) -> "Demos":
        """The first ``episodes`` episodes, each cut to its first ``horizon`` steps."""
        e = self.num_episodes if episodes is None else int(episodes)
        t = self.horizon if horizon is None else int(horizon)
        if not 1 <= e <= self.num_episodes or not 1 <= t <= self.horizon:
            raise DemoError(f"subsample: need 1 <= episodes <= {self.num_episodes} and 1 <= horizon <= "
                            f"{self.horizon}, got episodes={e}, horizon={t}")
        cut = lambda a, n: None if a is None else a[:e, :n]  # noqa: E731
        return Demos(self.observations[:e, : t + 1], cut(self.actions, t), cut(self.rewards, t),
                     dict(self.metadata))

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple["Demos", "Demos"]:
        """Train / validation split by whole episodes (at least one episode on each side)."""
        if self.num_episodes < 2:
            raise DemoError("split: need at least 2 episodes to split by episode")
        n_val = min(self.num_episodes - 1, max(1, int(round(val_fraction * self.num_episodes))))
        perm = np.random.default_rng(seed).permutation(self.num_episodes)
        return self.select(np.sort(perm[n_val:])), self.select(np.sort(perm[:n_val]))

    def without_actions(self) -> "Demos":
        return Demos(self.observations, None, self.rewards, dict(self.metadata))

    def returns(self) -> np.ndarray | None:
        return None if self.rewards is None else self.rewards.astype(np.float64).sum(axis=1)
