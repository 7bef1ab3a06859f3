"""Experiments over seeds: normalized learning curves and their plots."""

from smiling.experiments.curves import aggregate, eval_curve, first_reach, normalize, plot_curves, run_label

__all__ = ["aggregate", "eval_curve", "first_reach", "normalize", "plot_curves", "run_label"]
