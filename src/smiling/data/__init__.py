"""Demonstrations: the `Demos` container, file formats (npz, Minari, D4RL), generation, bundled demos.

    from smiling.data import load_demos
    demos = load_demos("dmc:cheetah-run")      # bundled; or a path to .npz / Minari dir / D4RL .hdf5
    states = demos.states()                     # (E * (T+1), d), the state-only view
"""

from smiling.data.demos import DemoError, Demos
from smiling.data.files import (bundled_tasks, check_task, load_demos, load_npz, read_d4rl, read_minari,
                                save_npz, write_d4rl, write_minari)
from smiling.data.generate import describe, generate_demos, random_policy_returns

__all__ = ["DemoError", "Demos", "bundled_tasks", "check_task", "describe", "generate_demos", "load_demos",
           "load_npz", "random_policy_returns", "read_d4rl", "read_minari", "save_npz", "write_d4rl", "write_minari"]
