"""Task ids and environment construction.

``make_env("dmc:cheetah-run")`` builds any DeepMind Control suite ``domain-task``;
``make_env("gym:Hopper-v5")`` builds any registered Gymnasium id with a continuous action space, and
``make_env("gym:myenvs:Point-v0")`` a user's own (``myenvs`` is imported first and must register ``Point-v0``);
``make_env("humanoid:h1-walk")`` builds one of our HumanoidBench-style Unitree H1 tasks (`smiling.envs.humanoid`).
Every env follows the contract in `smiling.envs.base`: flat float32 observations, actions in [-1, 1],
fixed ``horizon``-step episodes (1000 by default, no early termination unless ``keep_termination=True``).
List the ids with ``smiling tasks`` or `list_tasks` (for gym: every registered id, including those with
discrete actions, which `make_env` refuses by name).
"""

from __future__ import annotations

import ctypes.util
import os

# Pick a headless MuJoCo GL backend before dm_control is imported (it reads MUJOCO_GL once, at import).
if "MUJOCO_GL" not in os.environ:
    if ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    elif ctypes.util.find_library("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"

from smiling.envs.base import NoGLBackendError, TaskEnv  # noqa: E402

__all__ = ["NoGLBackendError", "TaskEnv", "UnknownTaskError", "make_env", "list_tasks", "module_tasks",
           "validate_task_id"]

PREFIXES = ("dmc", "gym", "humanoid")


class UnknownTaskError(ValueError):
    """Raised for a task id that names no known environment."""


def _unknown(task_id: str) -> UnknownTaskError:
    return UnknownTaskError(
        f"unknown task id {task_id!r}: run `smiling tasks` to list the ids "
        f"(forms: 'dmc:<domain>-<task>', 'gym:<registered id>', 'gym:<module>:<id>' for an env your module "
        f"registers, 'humanoid:h1-<task>')")


def _parse(task_id: str) -> tuple[str, str]:
    if not isinstance(task_id, str) or ":" not in task_id:
        raise _unknown(str(task_id))
    prefix, name = task_id.split(":", 1)
    if prefix not in PREFIXES or not name:
        raise _unknown(task_id)
    return prefix, name


def validate_task_id(task_id: str) -> str:
    """Return ``task_id`` if it names a known task, else raise `UnknownTaskError` (without building it)."""
    prefix, name = _parse(task_id)
    if prefix == "dmc":
        from smiling.envs.dmc import dmc_task_names

        ok = name in dmc_task_names()
    elif prefix == "humanoid":
        from smiling.envs.humanoid import humanoid_task_names

        ok = name in humanoid_task_names()
    else:
        from smiling.envs.gym_env import resolve

        try:
            resolve(name)
            ok = True
        except KeyError:
            ok = False
    if not ok:
        raise _unknown(task_id)
    return task_id


def make_env(task_id: str, horizon: int = 1000, keep_termination: bool = False,
             render_size: tuple[int, int] = (240, 320)) -> TaskEnv:
    """Build the task ``task_id`` (see the module docstring for the id forms and the env contract)."""
    prefix, name = _parse(task_id)
    try:
        if prefix == "dmc":
            from smiling.envs.dmc import DMCEnv

            return DMCEnv(name, horizon=horizon, keep_termination=keep_termination, render_size=render_size)
        if prefix == "humanoid":
            from smiling.envs.humanoid import HumanoidEnv

            return HumanoidEnv(name, horizon=horizon, keep_termination=keep_termination, render_size=render_size)
        from smiling.envs.gym_env import GymEnv

        return GymEnv(name, horizon=horizon, keep_termination=keep_termination, render_size=render_size)
    except KeyError:
        raise _unknown(task_id) from None


def module_tasks(module: str) -> list[str]:
    """The task ids of the Gymnasium envs a module of your own registers (``gym:<module>:<id>``), importing it as
    a task id would (from the Python path, else the current directory); `GymTaskError` names a module that fails
    to import or registers none."""
    from smiling.envs.gym_env import GymTaskError, registered_by

    ids = registered_by(module)
    if not ids:
        raise GymTaskError(f"module {module!r} registers no Gymnasium id (call gymnasium.register(...) in it)")
    return [f"gym:{module}:{i}" for i in ids]


def list_tasks() -> list[str]:
    """All DMC suite task ids, our humanoid tasks, and the Gymnasium ids registered in this process."""
    from smiling.envs.dmc import dmc_task_names
    from smiling.envs.gym_env import gym_task_names
    from smiling.envs.humanoid import humanoid_task_names

    return ([f"dmc:{n}" for n in dmc_task_names()] + [f"humanoid:{n}" for n in humanoid_task_names()]
            + [f"gym:{n}" for n in gym_task_names()])
