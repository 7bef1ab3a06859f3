"""Any registered Gymnasium environment as a `TaskEnv`: ``gym:<id>``, e.g. ``gym:Hopper-v5``, or a user's own
``gym:<module>:<id>`` (Gymnasium's "module:id" form: ``module`` is imported first, from the Python path or the
current directory, and must call ``gymnasium.register(<id>, ...)``), e.g. ``gym:myenvs:Point-v0``.

Box observations are flattened (C order). Dict observations are flattened key by key in sorted key order;
``env.obs_keys`` lists ``(key, start, stop)``. Gymnasium's own ``TimeLimit`` is set to the horizon. With
``keep_termination=False`` (default) MuJoCo envs that accept ``terminate_when_unhealthy`` are built with it
switched off, so the episode really runs on to the horizon; an env that ends early anyway (a termination with no
switch, or its own time limit) is held at its last state with reward 0 until the horizon (warned once).
"""

from __future__ import annotations

import warnings

import numpy as np

from smiling.envs.base import TaskEnv


def gym_task_names() -> list[str]:
    import gymnasium as gym

    return sorted(k for k in gym.registry.keys())


class GymTaskError(ValueError):
    """A ``gym:`` task id whose module cannot be imported or whose id is not registered (one line)."""


def resolve(name: str) -> str:
    """The registered Gymnasium id of ``<id>`` or ``<module>:<id>``, importing ``module`` first (from the Python
    path, else the current directory); raises `GymTaskError` naming the module or the id, or KeyError for a
    plain id that is not registered."""
    import gymnasium as gym

    module, _, env_id = name.rpartition(":")
    if not module:
        if env_id not in gym.registry:
            raise KeyError(env_id)
        return env_id
    if not env_id:
        raise GymTaskError(f"gym:{name}: no environment id after the module (form: gym:<module>:<id>)")
    _import_user_module(name, module)
    if env_id not in gym.registry:
        mine = registered_by(module)
        raise GymTaskError(f"gym:{name}: module {module!r} was imported but registers no Gymnasium id {env_id!r} "
                           + (f"(it registers {', '.join(mine)})" if mine else "(it registers none: call "
                              f"gymnasium.register({env_id!r}, entry_point=...) in it)"))
    return env_id


def registered_by(module: str) -> list[str]:
    """The Gymnasium ids whose entry point lives in ``module`` (imported first, as for ``gym:<module>:<id>``)."""
    import gymnasium as gym

    _import_user_module(module, module)
    return sorted(k for k, spec in gym.registry.items()
                  if (_entry_module(spec.entry_point) + ".").startswith(module + "."))  # (it or a submodule)


def _entry_module(entry_point) -> str:
    if isinstance(entry_point, str):
        return entry_point.partition(":")[0]
    return getattr(entry_point, "__module__", "") or ""


def _import_user_module(name: str, module: str) -> None:
    import importlib
    import os
    import sys

    def failed(e: Exception, searched: str = "") -> GymTaskError:  # one line: the user's module failed on import
        return GymTaskError(f"gym:{name}: importing module {module!r} failed: {type(e).__name__}: {e}{searched}")

    try:
        importlib.import_module(module)
        return
    except ModuleNotFoundError as e:
        if e.name is None or not module.startswith(e.name) or os.getcwd() in sys.path:
            raise failed(e) from None
    except Exception as e:  # noqa: BLE001
        raise failed(e) from None
    sys.path.append(os.getcwd())  # as `python -m` would have it: a module beside the user's working directory
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001
        raise failed(e, f" (searched the Python path and the current directory {os.getcwd()})") from None


def _box_size(space) -> int:
    return int(np.prod(space.shape))


def _renders_rgb(env_id: str) -> bool:
    """Whether the registered env says it renders "rgb_array" frames (its class's ``metadata["render_modes"]``);
    True where it cannot be told (an entry point that is a function: asking costs at most a retry)."""
    import gymnasium as gym

    try:
        entry = gym.spec(env_id).entry_point
        creator = entry if callable(entry) else gym.envs.registration.load_env_creator(entry)
    except Exception:  # noqa: BLE001 - whatever loading the entry point raises, gym.make will say it again
        return True
    modes = getattr(creator, "metadata", {}).get("render_modes") if isinstance(creator, type) else None
    return modes is None or "rgb_array" in modes


class GymEnv(TaskEnv):
    def __init__(self, env_id: str, horizon: int = 1000, keep_termination: bool = False,
                 render_size: tuple[int, int] = (240, 320), **make_kwargs):
        import gymnasium as gym

        task_id = f"gym:{env_id}"
        env_id = resolve(env_id)
        # Ask for what helps (no unhealthy termination, rgb frames for videos) and drop what the env does not take:
        # a user's env need not accept render_mode (it then cannot record videos).
        tries = [dict(terminate_when_unhealthy=False, render_mode="rgb_array"), dict(render_mode="rgb_array"), {}]
        if not _renders_rgb(env_id):  # (asked anyway, Gymnasium warns twice per run that the env does not list it)
            tries = [{k: v for k, v in extra.items() if k != "render_mode"} for extra in tries[:1]] + [{}, {}]
        for extra in tries[0 if not keep_termination else 1:]:
            try:
                self._env = gym.make(env_id, max_episode_steps=horizon, **extra, **make_kwargs)
                break
            except TypeError as e:
                if not any(k in str(e) for k in extra):  # the env's own TypeError, or nothing left to drop
                    raise ValueError(f"{task_id}: gymnasium.make({env_id!r}) failed: {e}") from None
        ospace, aspace = self._env.observation_space, self._env.action_space
        if not isinstance(aspace, gym.spaces.Box):
            raise ValueError(f"{task_id}: only continuous (Box) action spaces are supported, got {aspace}")
        if not np.all(np.isfinite(aspace.low)) or not np.all(np.isfinite(aspace.high)):
            raise ValueError(f"{task_id}: action bounds must be finite to map [-1, 1] onto them")
        if isinstance(ospace, gym.spaces.Dict):
            keys, start = [], 0
            for key in sorted(ospace.spaces):
                if not isinstance(ospace.spaces[key], gym.spaces.Box):
                    raise ValueError(f"{task_id}: observation key {key!r} is {ospace.spaces[key]}; only Box "
                                     f"spaces (in a flat Dict) are supported")
                size = _box_size(ospace.spaces[key])
                keys.append((key, start, start + size))
                start += size
            obs_dim = start
        elif isinstance(ospace, gym.spaces.Box):
            obs_dim = _box_size(ospace)
            keys = [("observation", 0, obs_dim)]
        else:
            raise ValueError(f"{task_id}: unsupported observation space {ospace}")
        boxes = ospace.spaces.values() if isinstance(ospace, gym.spaces.Dict) else [ospace]
        if any(len(b.shape) >= 2 and np.issubdtype(b.dtype, np.integer) for b in boxes):
            warnings.warn(f"{task_id}: an image observation ({ospace}) is fed to the networks as raw flat values; "
                          f"smiling's networks are MLPs made for state vectors", stacklevel=2)
        self.obs_keys = keys
        self._warned_held = False  # (said once per env)
        self._dict_obs = isinstance(ospace, gym.spaces.Dict)
        self._low = aspace.low.astype(np.float64).reshape(-1)  # (a Box of any shape acts as a flat vector)
        self._high = aspace.high.astype(np.float64).reshape(-1)
        super().__init__(task_id, obs_dim, _box_size(aspace), horizon, keep_termination, render_size)

    def _flat(self, obs) -> np.ndarray:
        if not self._dict_obs:
            return np.asarray(obs, dtype=np.float64).reshape(-1)
        parts = [np.asarray(obs[k], dtype=np.float64).reshape(-1) for k, _, _ in self.obs_keys]
        for (key, start, end), part in zip(self.obs_keys, parts):
            if part.size != end - start:
                raise ValueError(f"{self.task_id}: observation key {key!r} has {part.size} values; its space has "
                                 f"{end - start}")
        return np.concatenate(parts)

    def _backend_reset(self, seed):
        obs, _ = self._env.reset(seed=None if seed is None else int(seed))
        self._frozen = False
        return self._flat(obs)

    def _backend_step(self, action):
        if self._frozen:
            # The backend ended before the horizon (a termination that has no switch, or its own limit):
            # hold the last state with zero reward until the horizon; stepping on would be undefined.
            return self._last_obs, 0.0, True
        aspace = self._env.action_space
        try:
            obs, reward, terminated, truncated, _ = self._env.step(action.astype(aspace.dtype).reshape(aspace.shape))
        except ValueError as e:  # e.g. a step() that returns 4 values: say whose step it was
            raise ValueError(f"{self.task_id}: the env's step() failed: {e}") from e
        self._last_obs = self._flat(obs)
        self._frozen = bool(terminated or truncated)
        held = self._frozen and not (terminated and self.keep_termination) and self._t + 1 < self.horizon
        if held and not self._warned_held:
            self._warned_held = True
            warnings.warn(f"{self.task_id}: the env ended an episode at step {self._t + 1} of {self.horizon}; the rest "
                          f"of it holds the last state with reward 0 (keep_termination=True ends episodes there)",
                          stacklevel=2)
        return self._last_obs, reward, bool(terminated)  # (TaskEnv.step checks that it is a finite scalar)

    def _backend_bounds(self):
        return self._low, self._high

    def render(self):
        return self._env.render()

    def close(self):
        self._env.close()
