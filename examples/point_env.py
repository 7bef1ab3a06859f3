"""A Gymnasium environment of your own, for `smiling` from its folder: ``--task gym:point_env:Point-v0``.

``point_env`` is imported when the task id names it (from the Python path or the current directory) and
registers ``Point-v0``; see README, "Your own environment, demos and loop".
"""

import gymnasium as gym
import numpy as np


class Point(gym.Env):
    """A point on a plane pushed toward the origin: obs (x, y), action (dx, dy) in [-1, 1]."""

    def __init__(self):  # takes no render_mode: the library must not insist on one
        self.observation_space = gym.spaces.Box(-10, 10, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        return self.pos.copy(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.asarray(action, np.float64), -10, 10)
        return self.pos.copy(), -float(np.linalg.norm(self.pos)), False, False, {}


gym.register("Point-v0", entry_point=Point)
