"""Algorithms and the loops that compose envs, the replay buffer, reward models and RL agents.

`smiling.algos.registry` lists every algorithm and RL backend; `train` runs any of them from a `TrainConfig`.
"""

from smiling.algos.registry import ALGORITHMS, BACKENDS, TrainConfig, load_config, run_label, train

__all__ = ["ALGORITHMS", "BACKENDS", "TrainConfig", "load_config", "run_label", "train"]
