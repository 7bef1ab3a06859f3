"""Algorithms and the loops that compose envs, the replay buffer, reward models and RL agents.

`smiling.algos.registry` lists every algorithm and RL backend; `train` runs any of them from a `TrainConfig`.
The names below are read from the registry when first asked for, so that a plug-in module (`smiling.algos.plugins`)
may import `smiling.algos.base` without building the registry before it has defined its records.
"""

__all__ = ["ALGORITHMS", "BACKENDS", "TrainConfig", "load_config", "run_label", "train"]


def __getattr__(name: str):
    if name in __all__:
        from smiling.algos import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'smiling.algos' has no attribute {name!r}")
