"""Training loops that compose envs, the replay buffer and the RL agent."""

from smiling.algos.offpolicy import TrainConfig, load_config, train

__all__ = ["TrainConfig", "load_config", "train"]
