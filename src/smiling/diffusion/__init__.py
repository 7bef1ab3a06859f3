"""Diffusion: noise schedules, the eps-prediction score network, score-matching training, and the
denoising-error gap that gives SMILING's cost (paper Eq. 4) and the DS-divergence estimate (Eq. 2)."""

from smiling.diffusion.model import (ScoreConfig, ScoreModel, denoising_error_gap, ds_divergence,
                                     estimate_ds_divergence)
from smiling.diffusion.network import ScoreNet
from smiling.diffusion.schedules import SCHEDULES, Schedule, stratified_levels

__all__ = ["SCHEDULES", "Schedule", "ScoreConfig", "ScoreModel", "ScoreNet", "denoising_error_gap",
           "ds_divergence", "estimate_ds_divergence", "stratified_levels"]
