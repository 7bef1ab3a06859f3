"""What a run of the `nearest` plug-in (examples/nearest_plugin.py) learnt: one evaluation episode of its newest
checkpoint, the nearest-state reward its states earn, and how far they are from the demonstrations' first states.

    SMILING_PLUGINS=nearest_plugin:ALGORITHM PYTHONPATH=examples python benchmarks/nearest_probe.py RUN_DIR [...]

Used in docs/results.md ("A baseline that matches the support, not the distribution") to say why a run of it
earns nearly the highest reward and no task return.
"""

import argparse

import numpy as np

from smiling.data import load_demos
from smiling.envs import make_env
from smiling.envs.rollout import rollout
from smiling.evaluation import load_acting


def probe(run_dir: str) -> None:
    from nearest_plugin import NearestConfig, NearestReward

    cfg, policy, on_reset, step = load_acting(run_dir)
    demos = load_demos(cfg.demos or cfg.task, task=cfg.task)
    model = NearestReward(demos.states(), NearestConfig())
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    obs, _, rewards = rollout(env, policy, 1, (0,), on_reset)
    states = obs[0, 1:]
    starts = demos.observations[:, 0]  # each demonstrated episode's first state
    to_start = np.linalg.norm((states[:, None, :] - starts[None]) / model.std, axis=-1).min(axis=1)
    moves = np.abs(np.diff(obs[0], axis=0) / model.std).mean()
    print(f"{run_dir}: {cfg.task}, checkpoint at {step:,} env steps, seed {cfg.seed}")
    print(f"  task return of one evaluation episode: {rewards.sum():.1f}")
    print(f"  nearest reward per step: its states {model.reward(None, None, states).mean():.3f} "
          f"(0 is the highest: an expert state itself)")
    print(f"  distance of its states to the nearest demonstrated first state: mean {to_start.mean():.3f} "
          f"(in the expert states' standard deviations)")
    print(f"  mean change of its state per step: {moves:.4f} standard deviations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    for run in parser.parse_args().runs:
        probe(run)


if __name__ == "__main__":
    main()
