"""Preallocated NumPy replay buffer with rewards relabelled at sample time.

Imitation algorithms change their reward as their reward model trains, so the reward stored with a
transition goes stale. `ReplayBuffer.sample` takes an optional ``reward_fn(obs, action, next_obs) -> reward``
and calls it on the sampled transitions, so the RL update always sees the current reward model. With
``reward_fn=None`` the stored (environment) reward is returned.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from smiling.utils.io import MismatchError
from smiling.utils.shapes import pow2_ceil

RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions ``(obs, action, reward, next_obs, terminated)``.

    ``terminated`` is True only for a real terminal state (never for a time limit), so the TD target is
    ``r + gamma * (1 - terminated) * V(next_obs)``.
    """

    def __init__(self, obs_dim: int, action_dim: int, capacity: int):
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.obs_dim, self.action_dim, self.capacity = int(obs_dim), int(action_dim), int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros((capacity,), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros((capacity,), np.float32)
        self.size = 0
        self.ptr = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        i = self.ptr
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def newest(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs, action, next_obs) of the ``n`` most recently added transitions (fewer if fewer are held), oldest
        first."""
        n = min(int(n), self.size)
        idx = (self.ptr - n + np.arange(n)) % self.capacity
        return self.obs[idx], self.action[idx], self.next_obs[idx]

    def sample(self, rng: np.random.Generator, batch_size: int, num_batches: int = 1,
               reward_fn: RewardFn | None = None) -> dict[str, np.ndarray]:
        """``num_batches`` batches of ``batch_size`` uniformly drawn transitions, stacked on a leading axis.

        Returns a dict of arrays shaped ``(num_batches, batch_size, ...)``. If ``reward_fn`` is given, the
        ``reward`` entry is ``reward_fn(obs, action, next_obs)`` evaluated on the sampled transitions.
        """
        return self.gather(self.sample_indices(rng, batch_size, num_batches), reward_fn)

    def sample_indices(self, rng: np.random.Generator, batch_size: int, num_batches: int = 1) -> np.ndarray:
        """(num_batches, batch_size) uniform indices into the stored transitions (what `sample` draws)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=(num_batches, batch_size))

    def gather(self, idx: np.ndarray, reward_fn: RewardFn | None = None) -> dict[str, np.ndarray]:
        """The transitions at ``idx`` (any shape (num_batches, batch_size)); see `sample`."""
        num_batches, batch_size = idx.shape
        batch = {k: getattr(self, k)[idx] for k in _FIELDS}
        if reward_fn is not None:
            flat = lambda x: x.reshape(num_batches * batch_size, *x.shape[2:])  # noqa: E731
            r = np.asarray(reward_fn(flat(batch["obs"]), flat(batch["action"]), flat(batch["next_obs"])),
                           dtype=np.float32)
            if r.shape != (num_batches * batch_size,):
                raise ValueError(f"reward_fn returned shape {r.shape}, expected ({num_batches * batch_size},)")
            if not np.all(np.isfinite(r)):
                raise FloatingPointError("reward_fn returned NaN or inf rewards")
            batch["reward"] = r.reshape(num_batches, batch_size)
        return batch

    def sample_sequences(self, rng: np.random.Generator, batch_size: int, seq_len: int, num_batches: int = 1,
                         reward_fn: RewardFn | None = None) -> dict[str, np.ndarray]:
        """Batches of ``seq_len`` consecutive transitions for sequence models (DreamerV3), shaped (N, B, T, ...).

        Step t of a sequence is the state *arrived at*: ``obs = next_obs[j]``, ``prev_action = action[j]``,
        ``reward`` received on that transition (relabelled by ``reward_fn`` as in `sample`),
        ``cont = 1 - terminated[j]``, and ``is_first = 1`` where transition j starts a new episode (its ``obs``
        is not the previous transition's ``next_obs``). Sequences never cross the ring buffer's write position.
        """
        if self.size < seq_len:
            raise ValueError(f"cannot sample sequences of {seq_len} from a buffer holding {self.size} transitions")
        oldest = self.ptr if self.size == self.capacity else 0
        starts = oldest + rng.integers(0, self.size - seq_len + 1, size=(num_batches, batch_size))
        idx = (starts[..., None] + np.arange(seq_len)) % self.capacity          # (N, B, T)
        n, b, t = idx.shape
        flat = self.gather(idx.reshape(n, b * t), reward_fn)
        prev = (idx - 1) % self.capacity
        new_episode = np.any(flat["obs"].reshape(n, b, t, -1) != self.next_obs[prev], axis=-1)
        new_episode[..., 0] = True                 # every sequence starts from a fresh model state
        return {"obs": flat["next_obs"].reshape(n, b, t, -1), "prev_action": flat["action"].reshape(n, b, t, -1),
                "reward": flat["reward"].reshape(n, b, t), "cont": 1.0 - flat["terminated"].reshape(n, b, t),
                "is_first": new_episode.astype(np.float32)}

    # --- checkpointing (plain arrays: saved with np.savez, loaded with allow_pickle=False) ----------------
    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        d = {k: getattr(self, k)[:n] for k in _FIELDS}
        d["meta"] = np.array([self.size, self.ptr, self.capacity, self.obs_dim, self.action_dim], np.int64)
        return d

    def load_state_dict(self, d) -> None:
        """Restore a `state_dict`. Same capacity: the exact layout. Larger capacity (a run extended to more
        steps): the transitions in chronological order, oldest first."""
        size, ptr, capacity, obs_dim, action_dim = (int(x) for x in d["meta"])
        if (obs_dim, action_dim) != (self.obs_dim, self.action_dim) or capacity > self.capacity:
            raise MismatchError(
                f"buffer checkpoint has capacity/obs_dim/action_dim {(capacity, obs_dim, action_dim)}, "
                f"this buffer has {(self.capacity, self.obs_dim, self.action_dim)}")
        if capacity == self.capacity:
            for k in _FIELDS:
                getattr(self, k)[:size] = d[k]
            self.size, self.ptr = size, ptr
            return
        order = np.concatenate([np.arange(ptr, size), np.arange(0, ptr)]) if size == capacity else np.arange(size)
        for k in _FIELDS:
            getattr(self, k)[:size] = d[k][order]
        self.size, self.ptr = size, size % self.capacity


class RewardCache:
    """Imitation rewards of every stored transition, computed once per reward-model version.

    The alternative to sample-time relabelling (``TrainConfig.relabel="update"``): after each reward-model
    update `refresh` recomputes the reward of every transition in the buffer, and before each SAC round
    `catch_up` computes it for the transitions added since. Between updates the reward model is fixed, so
    both modes train on the same reward function; they differ in cost (this one evaluates the model
    ``buffer size`` times per update instead of ``batch x updates`` times) and, for a Monte-Carlo reward such
    as SMILING's, in noise: here a transition keeps one draw until the next update instead of a fresh draw
    each time it is sampled.
    """

    def __init__(self, buffer: ReplayBuffer, chunk: int = 16_384):
        self.buffer, self.chunk = buffer, int(chunk)
        self.values = np.zeros(buffer.capacity, np.float32)
        self.stale = 0
        """Transitions added to the buffer since their reward was last computed (the newest ones)."""

    def added(self) -> None:
        self.stale = min(self.stale + 1, self.buffer.capacity)

    def _compute(self, idx: np.ndarray, reward_fn: RewardFn) -> None:
        b = self.buffer
        for i in range(0, len(idx), self.chunk):
            j = idx[i:i + self.chunk]
            # pad to a power of two so that a jitted reward_fn sees few distinct shapes
            jp = np.concatenate([j, np.full(pow2_ceil(len(j)) - len(j), j[0])])
            r = np.asarray(reward_fn(b.obs[jp], b.action[jp], b.next_obs[jp]), np.float32)[:len(j)]
            if r.shape != j.shape or not np.all(np.isfinite(r)):
                raise FloatingPointError(f"reward_fn returned shape {r.shape} or non-finite rewards")
            self.values[j] = r

    def refresh(self, reward_fn: RewardFn) -> None:
        self._compute(np.arange(self.buffer.size), reward_fn)
        self.stale = 0

    def catch_up(self, reward_fn: RewardFn) -> None:
        if self.stale:
            b = self.buffer
            self._compute((b.ptr - self.stale + np.arange(self.stale)) % b.capacity, reward_fn)
            self.stale = 0

    def sample(self, rng: np.random.Generator, batch_size: int, num_batches: int,
               reward_fn: RewardFn) -> dict[str, np.ndarray]:
        """Like `ReplayBuffer.sample(..., reward_fn)`, with the cached rewards."""
        self.catch_up(reward_fn)
        idx = self.buffer.sample_indices(rng, batch_size, num_batches)
        batch = self.buffer.gather(idx)
        batch["reward"] = self.values[idx]
        return batch

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"values": self.values[:self.buffer.size].copy(),
                "meta": np.array([self.stale, self.buffer.capacity], np.int64)}

    def load_state_dict(self, d, reward_fn: RewardFn) -> None:
        """Restore; if the buffer was reloaded with another capacity (an extended run), recompute instead."""
        stale, capacity = (int(x) for x in d["meta"])
        if capacity != self.buffer.capacity:
            self.refresh(reward_fn)
            return
        self.values[:len(d["values"])] = d["values"]
        self.stale = stale

