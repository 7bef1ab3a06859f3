"""A Gymnasium base class that gives every task the same contract.

Contract of every task env made by `smiling.envs.make_env`:

* observations are flat ``float32`` vectors (see each backend for the key order);
* actions live in ``[-1, 1]^a`` and are mapped affinely onto the backend's own bounds;
* episodes last exactly ``horizon`` steps (default 1000, the paper's setting). At the last step
  ``truncated=True`` and ``terminated=False``: a time limit is not a terminal state, so the TD target
  still bootstraps through it;
* with ``keep_termination=False`` (default) the backend's own termination is ignored and the episode runs on
  to the horizon; with ``keep_termination=True`` a backend termination ends the episode with
  ``terminated=True``;
* ``reset(seed=s)`` makes the episode a deterministic function of ``s``.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np


class NoGLBackendError(RuntimeError):
    """MuJoCo offscreen rendering (or dm_control's import under MUJOCO_GL) has no working OpenGL backend."""


def gl_backend_error(cause: BaseException) -> NoGLBackendError:
    import os

    return NoGLBackendError(
        f"no working OpenGL backend for MuJoCo with MUJOCO_GL={os.environ.get('MUJOCO_GL', '<unset>')!r} "
        f"({type(cause).__name__}: {cause}). Install one (EGL: libegl1, or OSMesa: libosmesa6) and set "
        f"MUJOCO_GL=egl or MUJOCO_GL=osmesa; training and evaluation without video need no GL.")


def _finite_scalar(x) -> bool:
    if isinstance(x, (float, int, np.number)):  # the usual rewards: checked without building an array
        return math.isfinite(x)
    try:
        return np.ndim(x) == 0 and bool(np.isfinite(x))
    except TypeError:  # not a number at all
        return False


class TaskEnv(gym.Env):
    """Fixed-horizon, flat-observation, [-1, 1]-action Gymnasium env. Subclasses implement the backend."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task_id: str, obs_dim: int, action_dim: int, horizon: int, keep_termination: bool,
                 render_size: tuple[int, int] = (240, 320)):
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.task_id = task_id
        self.horizon = int(horizon)
        self.keep_termination = bool(keep_termination)
        self.render_mode = "rgb_array"
        self.render_size = render_size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._t = 0
        self._needs_reset = True

    # --- backend hooks -------------------------------------------------------------------------------
    def _backend_reset(self, seed: int | None) -> np.ndarray:
        raise NotImplementedError

    def _backend_step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Step with an action already in the backend's bounds; return (obs, reward, terminated)."""
        raise NotImplementedError

    def _backend_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # --- Gymnasium API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._needs_reset = False
        return self._checked(self._backend_reset(seed), "reset()"), {}

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError(f"{self.task_id}: step() called before reset() or after the episode ended")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"{self.task_id}: action has shape {action.shape}, expected {self.action_space.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.task_id}: action contains NaN or inf: {action}")
        low, high = self._backend_bounds()
        scaled = low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)
        obs, reward, backend_terminated = self._backend_step(scaled)
        self._t += 1
        obs = self._checked(obs, "step()")
        if not _finite_scalar(reward):
            raise ValueError(f"{self.task_id}: step() returned the reward {reward!r} at episode step {self._t}: a "
                             f"reward must be a finite scalar")
        terminated = bool(backend_terminated and self.keep_termination)
        truncated = (not terminated) and self._t >= self.horizon
        if terminated or truncated:
            self._needs_reset = True
        info = {"backend_terminated": bool(backend_terminated)}
        return obs, float(reward), terminated, truncated, info

    def _checked(self, obs: np.ndarray, call: str) -> np.ndarray:
        """The backend's flat observation as float32, refused (naming the task, the call and the episode step)
        if its size is not the observation space's or it holds NaN/inf: they would reach the networks as a
        shape error or as NaN losses that name neither."""
        obs = obs.astype(np.float32, copy=False)
        if obs.shape != self.observation_space.shape:
            raise ValueError(f"{self.task_id}: {call} returned an observation of {obs.size} values at episode step "
                             f"{self._t}; its observation space has {self.observation_space.shape[0]}")
        if not np.isfinite(obs).all():
            raise ValueError(f"{self.task_id}: {call} returned an observation with NaN or inf "
                             f"({int((~np.isfinite(obs)).sum())} of {obs.size} values) at episode step {self._t}")
        return obs
