"""DreamerV3 in JAX/Flax: closed-form pieces (`core`), networks, and the agent (`Dreamer`)."""

from smiling.rl.dreamer.agent import PRESETS, Dreamer, DreamerConfig, DreamerState

__all__ = ["PRESETS", "Dreamer", "DreamerConfig", "DreamerState"]
