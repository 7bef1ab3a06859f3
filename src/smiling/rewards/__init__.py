"""Reward models for imitation: one interface (`RewardModel.update`, `RewardModel.reward`), relabelled into
the replay buffer at sample time."""

from smiling.rewards.base import Reservoir, RewardModel
from smiling.rewards.dac import DacConfig, DacReward
from smiling.rewards.smiling import SmilingConfig, SmilingReward

__all__ = ["DacConfig", "DacReward", "Reservoir", "RewardModel", "SmilingConfig", "SmilingReward"]
