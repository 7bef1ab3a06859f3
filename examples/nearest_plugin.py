"""An imitation algorithm of your own, as a plug-in: no change to the library.

    SMILING_PLUGINS=nearest_plugin:ALGORITHM PYTHONPATH=examples smiling imitate --algo nearest --steps 20000

Its reward is minus the distance from a transition's next state (standardized by the expert states' mean and
spread) to the nearest expert state. It learns nothing from the learner, unlike SMILING's learner score model or
DAC's discriminator, so it is a baseline to compare with, not a method to use. Everything of the library then
takes it: its ``--nearest.*`` flags, ``smiling experiment --algos nearest,nearest+actions``, resume, plots and
run names. The plug-in imports `smiling.algos.base` and `smiling.rewards`, never `smiling.algos` itself (the
registry imports this module while it is being built); see docs/extending.md.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from smiling.algos.base import Algorithm, actions_variant
from smiling.rewards import RewardModel, expert_matrix
from smiling.rewards.base import made_from_hash


@dataclasses.dataclass(frozen=True)
class NearestConfig:
    """Settings of the `nearest` reward (``--nearest.scale``, ``--nearest.use-actions``)."""

    scale: float = 1.0
    """Rewards are -scale x distance (in the expert states' standard deviations)."""
    use_actions: bool = False
    """Measure distances between (state, action) pairs instead of next states (label ``nearest+actions``)."""

    def __post_init__(self):
        if not self.scale > 0:
            raise ValueError(f"nearest.scale must be > 0, got {self.scale}")


class NearestReward(RewardModel):
    """Minus the distance to the nearest expert feature vector (`smiling.rewards.RewardModel`)."""

    def __init__(self, expert_features: np.ndarray, config: NearestConfig = NearestConfig(), seed: int = 0):
        x = expert_matrix(expert_features)
        self.config, self.use_actions, self.dim = config, config.use_actions, x.shape[1]
        self.made_from = made_from_hash(x, seed)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        self.expert = (x - self.mean) / self.std
        self.expert_sq = (self.expert ** 2).sum(axis=1)
        self.updates = 0
        self.origin = f"distances to {len(x)} expert feature vectors"

    @classmethod
    def default_config(cls) -> NearestConfig:
        return NearestConfig()

    def update(self, learner_features: np.ndarray) -> dict[str, float]:
        self.checked(learner_features)
        self.updates += 1  # nothing to fit: the loop only waits for a first update before it trains
        return {}

    def reward(self, obs, action, next_obs) -> np.ndarray:
        x = (self.checked(self.features(obs, action, next_obs)) - self.mean) / self.std
        nearest = np.empty(len(x), np.float32)
        for i in range(0, len(x), 1024):  # (chunks: the distance matrix is rows x expert states)
            chunk = x[i:i + 1024]
            d2 = (chunk ** 2).sum(axis=1)[:, None] - 2.0 * chunk @ self.expert.T + self.expert_sq[None, :]
            nearest[i:i + 1024] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        return -self.config.scale * nearest

    def state_dict(self) -> dict[str, bytes]:
        return {"state.json": json.dumps({"updates": self.updates}).encode()}

    def load_state_dict(self, files: dict[str, bytes]) -> None:
        self.updates = json.loads(files["state.json"])["updates"]


ALGORITHM = Algorithm(
    "nearest", "minus the distance to the nearest expert state (a plug-in example: examples/nearest_plugin.py)",
    config=NearestConfig, backends=("sac", "dreamer"), variants=(actions_variant("nearest"),),
    reward_model=lambda cfg, demos: NearestReward.from_demos(demos, cfg.nearest, seed=cfg.seed))
