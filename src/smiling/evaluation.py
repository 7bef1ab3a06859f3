"""Evaluate a saved run: returns with the mean action (or sampled actions), and optional video via MuJoCo offscreen
rendering."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from smiling.acting import acting, evaluate
from smiling.algos.registry import load_config, make_agent
from smiling.data.demos import Demos
from smiling.data.generate import DEMO_STREAM, generate_demos
from smiling.envs import NoGLBackendError, make_env
from smiling.envs.base import gl_backend_error
from smiling.runs import Checkpoints, check_checkpoint_task, read_checkpoint_file
from smiling.utils.seeding import derive_seed

EVAL_CLI_STREAM = 11


def load_policy(run_dir: str | Path, step: int | None = None):
    """(config, agent, actor params, env step of the checkpoint) from the checkpoint at env step ``step`` of a run
    directory (the newest if None); the step is read from the folder actually loaded, so a run still writing
    checkpoints cannot make it disagree with the parameters."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    cfg = load_config(run_dir)
    ckpt = Checkpoints(run_dir).at(step)
    check_checkpoint_task(ckpt, cfg.task)
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    agent = make_agent(cfg, env.observation_space.shape[0], env.action_space.shape[0])
    state = read_checkpoint_file(ckpt / "agent.msgpack", agent.from_bytes)
    env.close()
    return cfg, agent, agent.policy_params(state), Checkpoints.step_of(ckpt)


def load_acting(run_dir: str | Path, step: int | None = None, stochastic: bool = False, key_seed: int = 0):
    """(config, ``policy(obs) -> action``, ``on_reset()``, env step of the checkpoint) for `rollout`: `load_policy`
    then `acting` (the mean action, or sampled actions from a key seeded with ``key_seed``)."""
    cfg, agent, params, loaded_step = load_policy(run_dir, step)
    policy, on_reset = acting(agent, params, stochastic, key_seed)
    return cfg, policy, on_reset, loaded_step


def render_check(env) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as e:  # dm_control / mujoco raise several types when no GL context can be made
        raise gl_backend_error(e) from None
    if frame is None or np.asarray(frame).ndim != 3:
        raise NoGLBackendError("MuJoCo offscreen rendering returned no image: no working OpenGL backend")
    return np.asarray(frame)


def evaluate_run(run_dir: str | Path, episodes: int = 10, seed: int = 0, video: str | Path | None = None,
                 fps: int = 50, step: int | None = None, stochastic: bool = False) -> dict:
    """Evaluate the checkpoint of ``run_dir`` at env step ``step`` (the newest if None) for ``episodes`` episodes
    with the mean action, or with ``stochastic`` actions sampled from the policy (seeded by ``seed``).

    With ``video``, the first episode is rendered to that file (mp4 needs imageio-ffmpeg; .gif works too).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    cfg, agent, params, loaded_step = load_policy(run_dir, step)
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    frames = None
    if video is not None:
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise RuntimeError("--video needs imageio (and imageio-ffmpeg for mp4): "
                               "pip install -e '.[video]' in smiling's checkout") from None
        env.reset(seed=0)
        render_check(env)
        obs, _ = env.reset(seed=derive_seed(seed, EVAL_CLI_STREAM, 0, 0))
        policy, on_reset = acting(agent, params, stochastic, derive_seed(seed, EVAL_CLI_STREAM, 0, 0, 1))
        on_reset()
        frames, done = [render_check(env)], False
        while not done:
            obs, _, term, trunc, _ = env.step(policy(obs))
            frames.append(render_check(env))
            done = term or trunc
        video = Path(video)
        video.parent.mkdir(parents=True, exist_ok=True)
        tmp = video.with_name(f".{video.stem}.tmp{video.suffix}")
        import warnings

        with warnings.catch_warnings():  # imageio-ffmpeg starts ffmpeg with fork+exec, which is safe here
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            if video.suffix == ".gif":
                imageio.mimsave(tmp, frames, duration=1000 / fps)
            else:
                imageio.mimsave(tmp, frames, fps=fps)
        os.replace(tmp, video)
    rets = evaluate(agent, params, env, episodes, (seed, EVAL_CLI_STREAM, 0), stochastic=stochastic)
    env.close()
    out = {"task": cfg.task, "checkpoint_step": loaded_step, "episodes": episodes, "stochastic": bool(stochastic),
           "return_mean": float(rets.mean()),
           "return_std": float(rets.std()), "returns": [float(r) for r in rets]}
    if video is not None:
        out["video"] = str(video)
    return out


def demos_from_run(expert_run: str | Path, episodes: int = 5, stochastic: bool = False, seed: int = 0,
                   random_episodes: int = 10, step: int | None = None) -> Demos:
    """Demonstrations from the checkpoint of ``expert_run`` at env step ``step`` (the newest if None): its mean
    action, or with ``stochastic`` actions sampled from its policy (`smiling.data.generate_demos`)."""
    cfg, policy, on_reset, loaded_step = load_acting(expert_run, step, stochastic, derive_seed(seed, DEMO_STREAM, 1))
    return generate_demos(policy, cfg.task, episodes, seed, random_episodes, horizon=cfg.horizon, on_reset=on_reset,
                          source={"expert_run": str(expert_run), "expert_checkpoint_step": loaded_step,
                                  "stochastic": bool(stochastic)})
