"""smiling: imitation learning from state-only demonstrations by diffusion score matching.

SMILING ("Diffusing States and Matching Scores", arXiv 2410.13855) fits a diffusion score model to expert
states and trains an RL agent on the cost "learner denoising error minus expert denoising error".
This package provides the task layer (`smiling.envs`), a jitted SAC (`smiling.rl`), run directories with
resumable checkpoints (`smiling.runs`) and the `smiling` command-line tool.
"""

__version__ = "0.1.0"
