"""smiling: imitation learning from state-only demonstrations by diffusion score matching.

SMILING ("Diffusing States and Matching Scores", arXiv 2410.13855) fits a diffusion score model to expert
states and trains an RL agent on the cost "learner denoising error minus expert denoising error".
This package provides the task layer (`smiling.envs`), a jitted SAC (`smiling.rl`), run directories with
resumable checkpoints (`smiling.runs`) and the `smiling` command-line tool. One call trains an imitation run:
``smiling.imitate("dmc:cheetah-run", steps=200_000)`` (`smiling.api.imitate`).
"""

from smiling._version import __version__

__all__ = ["__version__", "imitate"]


def __getattr__(name: str):
    # `smiling.imitate` without importing JAX and the environments on `import smiling`
    if name == "imitate":
        from smiling.api import imitate

        return imitate
    raise AttributeError(f"module 'smiling' has no attribute {name!r}")
