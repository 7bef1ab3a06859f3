"""Reinforcement-learning core: a jitted SAC and a replay buffer with sample-time reward relabelling."""

from smiling.rl.buffer import ReplayBuffer, RewardCache
from smiling.rl.sac import SAC, SACConfig, SACState

__all__ = ["ReplayBuffer", "RewardCache", "SAC", "SACConfig", "SACState"]
