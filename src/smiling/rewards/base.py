"""The reward-model interface shared by every adversarial or score-based imitation algorithm.

A reward model sees learner data through ``update(learner_features)`` (called every N env steps by the
loop) and scores transitions through ``reward(obs, action, next_obs) -> (n,) float32``, which the replay
buffer calls at sample time (`smiling.rl.ReplayBuffer.sample(reward_fn=...)`), so the RL update always uses
the current model. ``features(obs, action, next_obs)`` says what the model looks at: the next state for
state-only imitation, the (state, action) pair with ``use_actions``.

From a loop of your own (examples/own_loop.py)::

    model = SmilingReward.from_demos(load_demos("dmc:cheetah-run"), SmilingConfig(), seed=0)
    model.update(model.features(obs, act, next_obs))   # every N env steps, with the newest learner data
    r = model.reward(obs, act, next_obs)               # (n,) float32 rewards for any batch of transitions
    model.save("reward.npz"); model.load("reward.npz") # everything but what from_demos rebuilds
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings

import numpy as np

from smiling.utils.io import atomic_save_npz, load_npz


def feature_rows(features, dim: int | None, what: str) -> np.ndarray:
    """``features`` as float32 (n, dim) rows, or ValueError naming ``what`` they are. Given a ``dim``, a flat array
    is one row (with ``dim`` 1: n rows of width 1); another width is refused (reshaped, features of the wrong width
    were cut into rows of this width), and so is a NaN or inf (a NaN reward would reach the RL update unseen, and a
    NaN kept in a learner memory spoils every later fit). ``dim`` None: any width >= 1, no flat array."""
    if dim is not None and dim < 1:
        raise ValueError(f"{what}: the model's feature width (dim) is {dim}; a reward model sets it from its expert "
                         f"features")
    x = np.asarray(features, np.float32)
    if x.ndim == 1 and dim is not None and dim in (1, x.size):
        x = x.reshape(-1, dim)
    if x.ndim != 2 or x.shape[1] < 1 or dim is not None and x.shape[1] != dim:
        raise ValueError(f"{what} must be shaped (n, {dim if dim is not None else 'dim'}), got shape {x.shape}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{what} hold NaN or inf in {len(rows)} row(s) of {len(x)}, first {rows[:5].tolist()}")
    return x


def expert_matrix(features) -> np.ndarray:
    """A reward model's expert features as float32 (n >= 2, dim), or ValueError."""
    x = feature_rows(features, None, "expert features")
    if len(x) < 2:
        raise ValueError(f"expert features must be (n >= 2, dim >= 1), got shape {x.shape}")
    return x


def made_from_hash(expert_features: np.ndarray, seed: int) -> str:
    """What a reward model records of what it was made from: a hash of its expert features and its seed."""
    h = hashlib.sha256(np.ascontiguousarray(expert_features, np.float32).tobytes())
    h.update(f"{expert_features.shape} {int(seed)}".encode())
    return h.hexdigest()[:24]


def demo_features(demos, use_actions: bool = False) -> np.ndarray:
    """What a reward model is fitted on: a `smiling.data.Demos`' states, or its (state, action) pairs."""
    if use_actions:
        s, a = demos.state_action_pairs()
        return np.concatenate([s, a], axis=1)
    return demos.states()


class RewardModel:
    """The interface the loop uses (everything it calls or reads is declared here)."""

    use_actions: bool = False
    updates: int = 0
    """Updates so far; the loop starts RL updates only once the model has seen learner data (updates > 0)."""
    origin: str = ""
    """How the model was made, for the loop's start-up message (e.g. "expert score model loaded from the cache")."""
    dim: int = 0
    """Width of the features it scores: that of the expert features it was made from."""
    made_from: str = ""
    """A hash of the expert features and the seed it was made from (`made_from_hash`): `save` records it, `load`
    checks it."""

    def features(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        if self.use_actions:
            if action is None:
                raise ValueError(f"{type(self).__name__} scores (state, action) pairs (use_actions): give the actions")
            action = np.asarray(action, np.float32)
            if action.size and np.abs(action).max() > 1.0 + 1e-6:  # (scored against demos' [-1, 1] actions)
                raise ValueError(f"{type(self).__name__}: actions must lie in [-1, 1], as the demonstrations' do, "
                                 f"found values in [{action.min():.4g}, {action.max():.4g}]: rescale actions "
                                 f"given in the env's own units")
            return np.concatenate([obs, action], axis=-1)
        return next_obs

    def update(self, learner_features: np.ndarray) -> dict[str, float]:
        """Take in newly collected learner features and refit; returns metrics to log."""
        raise NotImplementedError

    def reward(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def warn_if_untrained(self) -> None:
        """Warn (once per model) when rewards are asked for before any `update`: the learner side (SMILING's
        learner score model, DAC's discriminator) has seen no learner data, so they mean nothing yet. The library's
        loop waits for ``updates > 0``; a loop of your own should too."""
        if self.updates == 0 and not getattr(self, "_warned_untrained", False):
            self._warned_untrained = True
            warnings.warn(f"{type(self).__name__}.reward before any update(): its learner side has seen no learner "
                          f"data yet, so these rewards mean nothing; call update(features) first", stacklevel=3)

    def checked(self, features) -> np.ndarray:
        """``features`` as float32 (n, dim) (`feature_rows`: a flat array is one row); ValueError for another
        width or a NaN or inf."""
        what = "(state, action) pairs" if self.use_actions else "states"
        return feature_rows(features, self.dim, f"{type(self).__name__}: {what}, as in the demonstrations it was "
                                                f"made from,")

    def normalize_batch(self, rewards: np.ndarray) -> np.ndarray:
        """Applied by the loop to each sampled training batch's rewards, shaped (batches, ...): a per-batch
        normalization (SMILING's reference-code z-score); identity by default."""
        return rewards

    def state_dict(self) -> dict[str, bytes]:
        """Files to checkpoint (name -> bytes); never pickle."""
        raise NotImplementedError

    def load_state_dict(self, files: dict[str, bytes]) -> None:
        raise NotImplementedError

    @classmethod
    def from_demos(cls, demos, config=None, seed: int = 0, **options):
        """A model fitted on a `smiling.data.Demos` (its states, or its (state, action) pairs when the config
        says ``use_actions``), with the class's default config unless one is given; ``options`` go to the class
        (``use_cache=False``: SMILING's expert score model neither read from nor written to the disk cache)."""
        config = config if config is not None else cls.default_config()
        return cls(demo_features(demos, getattr(config, "use_actions", False)), config, seed=seed, **options)

    @classmethod
    def default_config(cls):
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write what `state_dict` holds, and the config it was made with, to one ``.npz`` file (atomically;
        bytes as uint8 arrays, no pickle). Rebuild the model the same way (`from_demos`, same config and seed)
        and `load` it to continue."""
        arrays = {name: np.frombuffer(data, np.uint8) for name, data in self.state_dict().items()}
        arrays["config.json"] = np.frombuffer(_config_json(self.config).encode(), np.uint8)
        arrays["made_from.txt"] = np.frombuffer(self.made_from.encode(), np.uint8)
        atomic_save_npz(path, arrays)

    def load(self, path: str | os.PathLike) -> None:
        """Restore a model `save` wrote; refuses a file written by a model with another config."""
        files = {name: array.tobytes() for name, array in load_npz(path).items()}
        saved = files.pop("config.json", b"{}").decode()
        if saved != _config_json(self.config):
            raise ValueError(f"{path}: saved by a {type(self).__name__} with another config ({saved}); build this "
                             f"one with that config to load it")
        self.check_made_from(files.pop("made_from.txt", b""), path)
        self.load_state_dict(files)

    def check_made_from(self, saved: bytes, where) -> None:
        """Refuse a saved state (at ``where``) whose recorded ``made_from`` (the file's bytes) names other expert
        features or another seed than this model's (it loaded, and scored nonsense); empty (files written before
        it was recorded): no check."""
        if saved and self.made_from and saved.decode("utf-8", "replace") != self.made_from:
            raise ValueError(f"{where}: saved by a {type(self).__name__} made from other expert data or another "
                             f"seed; build this one from the same demonstrations and seed to load it")


def _config_json(config) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


class Memory:
    """At most ``capacity`` rows of learner features; subclasses decide which rows stay (`add`)."""

    kind = "memory"

    def __init__(self, dim: int, capacity: int):
        self.data = np.zeros((capacity, dim), np.float32)
        self.capacity, self.size, self.seen = int(capacity), 0, 0

    def add(self, rows: np.ndarray) -> None:
        raise NotImplementedError

    def _rows(self, rows) -> np.ndarray:
        """``rows`` as float32 (n, dim) (`feature_rows`)."""
        return feature_rows(rows, self.data.shape[1], "learner features")

    def sample(self) -> np.ndarray:
        return self.data[: self.size]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"data": self.data[: self.size].copy(), "meta": np.array([self.size, self.seen, self.capacity])}

    def load_state_dict(self, d) -> None:
        size, seen, capacity = (int(x) for x in d["meta"])
        if capacity != self.capacity:
            raise ValueError(f"{self.kind} checkpoint has capacity {capacity}, this {self.kind} {self.capacity}")
        self.data[:size] = d["data"]
        self.size, self.seen = size, seen


class Reservoir(Memory):
    """A uniform sample of at most ``capacity`` rows from everything ever added (Vitter's algorithm R).

    SMILING's learner score model is fitted on *all* learner states so far (Follow-the-Leader by data
    aggregation, paper §4); the reservoir keeps that aggregate in bounded memory as an unbiased sample, so
    old policies keep their weight in proportion to the steps they ran. (The reference code instead keeps a
    FIFO window of the last 200k states, which forgets old policies: `Fifo`.)
    """

    kind = "reservoir"

    def __init__(self, dim: int, capacity: int, seed: int = 0):
        super().__init__(dim, capacity)
        self.rng = np.random.default_rng(seed)

    def add(self, rows: np.ndarray) -> None:
        for row in self._rows(rows):
            if self.size < self.capacity:
                self.data[self.size] = row
                self.size += 1
            else:
                j = self.rng.integers(0, self.seen + 1)
                if j < self.capacity:
                    self.data[j] = row
            self.seen += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**super().state_dict(), "rng": np.array(json.dumps(self.rng.bit_generator.state))}

    def load_state_dict(self, d) -> None:
        super().load_state_dict(d)
        self.rng.bit_generator.state = json.loads(str(d["rng"]))


class Fifo(Memory):
    """The most recent ``capacity`` rows (a ring buffer): the reference code's learner memory (a window of the
    last 200k states, forgetting older policies)."""

    kind = "FIFO"

    def __init__(self, dim: int, capacity: int, seed: int = 0):
        del seed  # nothing random: the same constructor as Reservoir
        super().__init__(dim, capacity)

    def add(self, rows: np.ndarray) -> None:
        rows = self._rows(rows)
        kept = rows[-self.capacity:]
        idx = (self.seen + len(rows) - len(kept) + np.arange(len(kept))) % self.capacity
        self.data[idx] = kept
        self.seen += len(rows)
        self.size = min(self.capacity, self.seen)
