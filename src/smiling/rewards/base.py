"""The reward-model interface shared by every adversarial or score-based imitation algorithm.

A reward model sees learner data through ``update(learner_features)`` (called every N env steps by the
loop) and scores transitions through ``reward(obs, action, next_obs) -> (n,) float32``, which the replay
buffer calls at sample time (`smiling.rl.ReplayBuffer.sample(reward_fn=...)`), so the RL update always uses
the current model. ``features(obs, action, next_obs)`` says what the model looks at: the next state for
state-only imitation, the (state, action) pair with ``use_actions``.
"""

from __future__ import annotations

import json

import numpy as np


class RewardModel:
    """The interface the loop uses (everything it calls or reads is declared here)."""

    use_actions: bool = False
    updates: int = 0
    """Updates so far; the loop starts RL updates only once the model has seen learner data (updates > 0)."""
    origin: str = ""
    """How the model was made, for the loop's start-up message (e.g. "expert score model loaded from the cache")."""

    def features(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        if self.use_actions:
            return np.concatenate([obs, action], axis=-1)
        return next_obs

    def update(self, learner_features: np.ndarray) -> dict[str, float]:
        """Take in newly collected learner features and refit; returns metrics to log."""
        raise NotImplementedError

    def reward(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def normalize_batch(self, rewards: np.ndarray) -> np.ndarray:
        """Applied by the loop to each sampled training batch's rewards, shaped (batches, ...): a per-batch
        normalization (SMILING's reference-code z-score); identity by default."""
        return rewards

    def state_dict(self) -> dict[str, bytes]:
        """Files to checkpoint (name -> bytes); never pickle."""
        raise NotImplementedError

    def load_state_dict(self, files: dict[str, bytes]) -> None:
        raise NotImplementedError


class Memory:
    """At most ``capacity`` rows of learner features; subclasses decide which rows stay (`add`)."""

    kind = "memory"

    def __init__(self, dim: int, capacity: int):
        self.data = np.zeros((capacity, dim), np.float32)
        self.capacity, self.size, self.seen = int(capacity), 0, 0

    def add(self, rows: np.ndarray) -> None:
        raise NotImplementedError

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
        for row in np.asarray(rows, np.float32).reshape(-1, self.data.shape[1]):
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
        rows = np.asarray(rows, np.float32).reshape(-1, self.data.shape[1])
        kept = rows[-self.capacity:]
        idx = (self.seen + len(rows) - len(kept) + np.arange(len(kept))) % self.capacity
        self.data[idx] = kept
        self.seen += len(rows)
        self.size = min(self.capacity, self.seen)
