"""One call for the common case: ``smiling.imitate(task, demos=..., algo="smiling", steps=..., out=...)``.

It builds the same `smiling.algos.TrainConfig` as ``smiling imitate`` and runs `smiling.algos.registry.train`,
so the run directory, its checkpoints and ``--resume`` work as from the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import time
from pathlib import Path

from smiling.algos.registry import (ALGORITHMS, TrainConfig, apply_label, check_run_dir, label_presets, run_label,
                                    train)
from smiling.algos.presets import apply_preset
from smiling.data import Demos, check_task, save_npz
from smiling.experiments.grid import task_slug


def default_run_dir(cfg) -> str:
    """runs/<task>-<run label>-s<seed>-<time>, the label from `smiling.algos.registry.run_label` ('+' -> '-')."""
    name = run_label(cfg).replace("+", "-")
    return f"runs/{task_slug(cfg.task)}-{name}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def with_settings(cfg, settings: dict):
    """``cfg`` with top-level fields set from ``settings``; a settings group (``smiling``, ``sac``, ...) takes a
    dict of its fields (nested groups as dicts too) or a whole config object. A name that is no field raises
    TypeError, as an unexpected keyword does in Python, with the nearest names."""
    names = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in settings.items():
        if key not in names:
            near = difflib.get_close_matches(key, names, n=3)
            hint = f"did you mean {' or '.join(near)}?" if near else f"settings: {', '.join(sorted(names))}"
            raise TypeError(f"{type(cfg).__name__} has no setting {key!r} ({hint})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = with_settings(current, value)
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def imitate(task: str, demos: str | os.PathLike | Demos | None = None, algo: str = "smiling", steps: int = 100_000,
            out: str | os.PathLike | None = None, seed: int = 0, resume: bool = False, quiet: bool = False,
            **settings) -> dict:
    """Train an imitation learner on ``task`` and return the run's summary (``run_dir``, ``step``,
    ``final_eval_return``, ...).

    ``demos``: a file (.npz, Minari dataset directory, D4RL .hdf5), a `smiling.data.Demos` (saved as
    ``OUT/demos.npz`` so the run can be resumed), or None for the task's bundled demonstrations. ``algo``: an
    imitation algorithm with optional variants, as in a grid label (``"smiling"``, ``"dac+actions"``,
    ``"smiling+paper"``). ``out``: the run directory (default ``runs/<task>-<algo>-s<seed>-<time>``);
    ``resume=True`` continues the run in ``out`` (``steps`` may grow). Other keywords set `TrainConfig` fields,
    groups as dicts: ``imitate("dmc:walker-walk", steps=200_000, eval_episodes=10, smiling={"num_levels": 16})``.
    """
    name = algo.split("+")[0]
    if name in ALGORITHMS and not ALGORITHMS[name].imitation:
        raise ValueError(f"algo {algo!r} learns from the true reward, not from demonstrations")
    cfg = TrainConfig(task=task, steps=steps, seed=seed)
    for preset in label_presets(algo):
        cfg = apply_preset(cfg, preset)
    cfg = apply_label(with_settings(cfg, settings), algo)
    out = Path(out if out is not None else default_run_dir(cfg))
    if demos is not None and not isinstance(demos, (str, os.PathLike, Demos)):
        raise TypeError(f"demos: a file path, a smiling.data.Demos or None, got {type(demos).__name__}")
    if isinstance(demos, Demos):
        path = out / "demos.npz"
        if not resume:
            # refuse demos of another task, a bad config, or a directory that holds a run, before writing anything
            check_task(demos, task, "the Demos given")
            cfg.validate()
            check_run_dir(cfg, out, resume=False)
            out.mkdir(parents=True, exist_ok=True)
            save_npz(demos, path)
        demos = path
    if demos is not None:
        cfg = dataclasses.replace(cfg, demos=str(demos))
    return train(cfg, out, resume=resume, quiet=quiet)
