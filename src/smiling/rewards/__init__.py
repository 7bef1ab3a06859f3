"""Reward models for imitation: one interface (`RewardModel.from_demos`, `update`, `reward`, `save`/`load`),
relabelled into the replay buffer at sample time by our loop, or called from a loop of your own."""

from smiling.rewards.base import Reservoir, RewardModel, demo_features, expert_matrix
from smiling.rewards.dac import DacConfig, DacReward
from smiling.rewards.smiling import SmilingConfig, SmilingReward

__all__ = ["DacConfig", "DacReward", "Reservoir", "RewardModel", "SmilingConfig", "SmilingReward", "demo_features",
           "expert_matrix"]
