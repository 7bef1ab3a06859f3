"""Experiments over seeds: grids of runs, normalized learning curves and their plots."""

from smiling.experiments.curves import aggregate, eval_curve, first_reach, normalize, plot_curves

__all__ = ["aggregate", "eval_curve", "first_reach", "normalize", "plot_curves"]
