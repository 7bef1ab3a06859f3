"""SMILING's reward in an RL loop of your own: no `smiling` loop, agent or environment involved.

The environment is a point on a plane (a few lines below); the demonstrator walks it to the origin. The
learner is a linear policy a = tanh(W s + b) trained by evolution strategies (antithetic perturbations, each
scored by the sum of SMILING's rewards over its rollout). What the library gives the loop is the reward model:

    model = SmilingReward.from_demos(demos, config)      # the expert score model, fitted on the demo states
    model.update(model.features(obs, act, next_obs))      # refit the learner score model on the learner's data
    rewards = model.reward(obs, act, next_obs)            # (n,) float32, for any batch of transitions
    model.save(path) / model.load(path)

Run it:  python examples/own_loop.py [--iterations 30]   (about a minute on a laptop CPU)
"""

from __future__ import annotations

import argparse

import numpy as np

from smiling.data import Demos
from smiling.rewards import SmilingConfig, SmilingReward

HORIZON = 50


def step(pos: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float]:
    """The environment: move by 0.1 * action; the true reward (never shown to the learner) is -distance."""
    pos = np.clip(pos + 0.1 * np.clip(action, -1, 1), -3, 3)
    return pos, -float(np.linalg.norm(pos))


def rollout(policy, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """One episode from a random start: states (T+1, 2), actions (T, 2), true return."""
    pos = rng.uniform(-2, 2, 2)
    states, actions, ret = [pos], [], 0.0
    for _ in range(HORIZON):
        a = policy(pos)
        pos, r = step(pos, a)
        states.append(pos)
        actions.append(a)
        ret += r
    return np.array(states, np.float32), np.array(actions, np.float32), ret


def linear(params: np.ndarray):
    W, b = params[:4].reshape(2, 2), params[4:]
    return lambda s: np.tanh(W @ s + b)


def main(iterations: int = 30, population: int = 8, sigma: float = 0.3, lr: float = 0.2, seed: int = 0,
         expert_steps: int = 2000, save: str | None = None, config: SmilingConfig | None = None) -> dict:
    rng = np.random.default_rng(seed)
    # state-only demonstrations of the demonstrator (a = -3 s, clipped): 10 episodes
    demonstrator = [rollout(lambda s: np.clip(-3 * s, -1, 1), rng) for _ in range(10)]
    episodes = [states for states, _, _ in demonstrator]
    print(f"demonstrator's true return {np.mean([ret for _, _, ret in demonstrator]):.2f}; "
          f"the learner's starts near {np.mean([rollout(linear(np.zeros(6)), rng)[2] for _ in range(10)]):.2f}")
    demos = Demos(observations=np.stack(episodes), metadata={"task": "example:point"})
    config = config or SmilingConfig(expert_steps=expert_steps, probe=512)
    model = SmilingReward.from_demos(demos, config, seed=seed)

    params = np.zeros(6)
    probe_states = np.stack(episodes)[:2, 1:].reshape(-1, 2)  # a fixed batch of expert states to watch
    history = {"true_return": [], "probe_reward": []}
    for it in range(iterations):
        # collect the current policy's data and refit the learner score model on it (paper Algorithm 1)
        states = np.concatenate([rollout(linear(params), rng)[0][1:] for _ in range(4)])
        model.update(states)
        # evolution strategies on the imitation reward: sum of SMILING rewards over each perturbed rollout
        noise = rng.normal(size=(population, params.size))
        scores = []
        for eps in np.concatenate([noise, -noise]):
            s, a, _ = rollout(linear(params + sigma * eps), rng)
            scores.append(model.reward(s[:-1], a, s[1:]).sum())
        scores = np.array(scores)
        scores = (scores - scores.mean()) / (scores.std() + 1e-8)
        params = params + lr / (2 * population * sigma) * (scores[:population] - scores[population:]) @ noise
        true_return = np.mean([rollout(linear(params), rng)[2] for _ in range(4)])
        probe = float(model.reward(probe_states, np.zeros_like(probe_states), probe_states).mean())
        history["true_return"].append(float(true_return))
        history["probe_reward"].append(probe)
        print(f"iteration {it + 1:3d}  true return {true_return:8.2f}  mean reward on expert states {probe:+.3f}",
              flush=True)
    if save:
        model.save(save)
        print(f"reward model saved to {save}")
    return history


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--expert-steps", type=int, default=2000, help="fitting steps of the expert score model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, help="write the reward model to this .npz at the end")
    a = p.parse_args()
    main(a.iterations, seed=a.seed, expert_steps=a.expert_steps, save=a.save)
