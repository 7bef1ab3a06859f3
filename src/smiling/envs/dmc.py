"""DeepMind Control Suite tasks as `TaskEnv`s: ``dmc:<domain>-<task>``, e.g. ``dmc:cheetah-run``.

Observation key order: the order of the task's own ``observation_spec()`` (an ``OrderedDict`` defined by the
task; e.g. cheetah-run is ``position (8), velocity (9)``). Each entry is flattened in C order and the
pieces are concatenated; ``env.obs_keys`` lists ``(key, start, stop)``. DMC's own time limit is switched off
and the episode length is ``horizon`` control steps (1000 by default, which is DMC's own length for every
suite task at its default control timestep).
"""

from __future__ import annotations

import numpy as np

from smiling.envs.base import TaskEnv, gl_backend_error


def import_suite():
    """``dm_control.suite``; dm_control loads the GL backend named by MUJOCO_GL at import and fails there."""
    try:
        from dm_control import suite
    except (ImportError, AttributeError, OSError) as e:
        import os

        if os.environ.get("MUJOCO_GL"):
            raise gl_backend_error(e) from None
        raise
    return suite


def dmc_task_names() -> list[str]:
    suite = import_suite()
    return [f"{d}-{t}" for d, t in suite.ALL_TASKS]


def _split(name: str) -> tuple[str, str]:
    # domain names may contain '_' (ball_in_cup, point_mass); tasks may too (swingup_sparse). '-' separates.
    if "-" not in name:
        raise KeyError(name)
    domain, task = name.split("-", 1)
    return domain, task


class DMCEnv(TaskEnv):
    def __init__(self, name: str, horizon: int = 1000, keep_termination: bool = False,
                 render_size: tuple[int, int] = (240, 320)):
        suite = import_suite()
        domain, task = _split(name)
        if (domain, task) not in suite.ALL_TASKS:
            raise KeyError(name)
        self._domain, self._task = domain, task
        self._env = self._load(seed=None)
        spec = self._env.observation_spec()
        keys, start = [], 0
        for key, arr in spec.items():
            size = int(np.prod(arr.shape)) if arr.shape else 1
            keys.append((key, start, start + size))
            start += size
        self.obs_keys = keys
        aspec = self._env.action_spec()
        self._low = np.asarray(aspec.minimum, dtype=np.float64) * np.ones(aspec.shape)
        self._high = np.asarray(aspec.maximum, dtype=np.float64) * np.ones(aspec.shape)
        super().__init__(f"dmc:{name}", start, int(np.prod(aspec.shape)), horizon, keep_termination, render_size)

    def _load(self, seed):
        return import_suite().load(self._domain, self._task,
                          task_kwargs={"random": seed, "time_limit": float("inf")})

    def _flat(self, observation) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in observation.values()])

    def _backend_reset(self, seed):
        if seed is not None:
            # A fresh load is the only public way to reseed a DMC task's RandomState (~0.1 s, once per seed).
            self._env = self._load(seed=int(seed))
        return self._flat(self._env.reset().observation)

    def _backend_step(self, action):
        ts = self._env.step(action)
        # With time_limit=inf, DMC marks the last step only on a real termination (discount 0).
        terminated = ts.last() and ts.discount == 0.0
        return self._flat(ts.observation), (ts.reward or 0.0), bool(terminated)

    def _backend_bounds(self):
        return self._low, self._high

    @property
    def physics(self):
        return self._env.physics

    def render(self):
        h, w = self.render_size
        return self._env.physics.render(height=h, width=w, camera_id=0)

    def close(self):
        self._env.close() if hasattr(self._env, "close") else None
