"""Any registered Gymnasium environment as a `TaskEnv`: ``gym:<id>``, e.g. ``gym:Hopper-v5``.

Box observations are flattened (C order). Dict observations are flattened key by key in sorted key order;
``env.obs_keys`` lists ``(key, start, stop)``. Gymnasium's own ``TimeLimit`` is set to the horizon. With
``keep_termination=False`` (default) MuJoCo envs that accept ``terminate_when_unhealthy`` are built with it
switched off, so the episode really runs on to the horizon; other envs have their termination flag ignored.
"""

from __future__ import annotations

import numpy as np

from smiling.envs.base import TaskEnv


def gym_task_names() -> list[str]:
    import gymnasium as gym

    return sorted(k for k in gym.registry.keys())


def _box_size(space) -> int:
    return int(np.prod(space.shape))


class GymEnv(TaskEnv):
    def __init__(self, env_id: str, horizon: int = 1000, keep_termination: bool = False,
                 render_size: tuple[int, int] = (240, 320), **make_kwargs):
        import gymnasium as gym

        if env_id not in gym.registry:
            raise KeyError(env_id)
        kwargs = dict(max_episode_steps=horizon, render_mode="rgb_array",
                      **make_kwargs)
        if not keep_termination:
            try:
                self._env = gym.make(env_id, terminate_when_unhealthy=False, **kwargs)
            except TypeError:
                self._env = gym.make(env_id, **kwargs)
        else:
            self._env = gym.make(env_id, **kwargs)
        ospace, aspace = self._env.observation_space, self._env.action_space
        if not isinstance(aspace, gym.spaces.Box):
            raise ValueError(f"gym:{env_id}: only continuous (Box) action spaces are supported, got {aspace}")
        if not np.all(np.isfinite(aspace.low)) or not np.all(np.isfinite(aspace.high)):
            raise ValueError(f"gym:{env_id}: action bounds must be finite to map [-1, 1] onto them")
        if isinstance(ospace, gym.spaces.Dict):
            keys, start = [], 0
            for key in sorted(ospace.spaces):
                size = _box_size(ospace.spaces[key])
                keys.append((key, start, start + size))
                start += size
            obs_dim = start
        elif isinstance(ospace, gym.spaces.Box):
            obs_dim = _box_size(ospace)
            keys = [("observation", 0, obs_dim)]
        else:
            raise ValueError(f"gym:{env_id}: unsupported observation space {ospace}")
        self.obs_keys = keys
        self._dict_obs = isinstance(ospace, gym.spaces.Dict)
        self._low = aspace.low.astype(np.float64)
        self._high = aspace.high.astype(np.float64)
        super().__init__(f"gym:{env_id}", obs_dim, _box_size(aspace), horizon, keep_termination, render_size)

    def _flat(self, obs) -> np.ndarray:
        if self._dict_obs:
            return np.concatenate([np.asarray(obs[k], dtype=np.float64).reshape(-1) for k, _, _ in self.obs_keys])
        return np.asarray(obs, dtype=np.float64).reshape(-1)

    def _backend_reset(self, seed):
        obs, _ = self._env.reset(seed=None if seed is None else int(seed))
        self._frozen = False
        return self._flat(obs)

    def _backend_step(self, action):
        if self._frozen:
            # The backend ended before the horizon (a termination that has no switch, or its own limit):
            # hold the last state with zero reward until the horizon; stepping on would be undefined.
            return self._last_obs, 0.0, True
        obs, reward, terminated, truncated, _ = self._env.step(action.astype(self._env.action_space.dtype))
        self._last_obs = self._flat(obs)
        self._frozen = bool(terminated or truncated)
        return self._last_obs, float(reward), bool(terminated)

    def _backend_bounds(self):
        return self._low, self._high

    def render(self):
        return self._env.render()

    def close(self):
        self._env.close()
