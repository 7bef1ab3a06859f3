"""Summaries and figures of many runs: one panel per task, one colour per algorithm (paper Fig. 3-5).

Statistics over seeds are mean ± standard error (sample std / sqrt(n)). Two numbers summarize a run:
* final: its last evaluation's normalized return;
* AUC: the area under its normalized curve divided by the span of env steps it covers (trapezoid rule over
  its evaluations), i.e. its average normalized return over training; it rewards learning early.
BC learns from no env steps: its final evaluation stands for its whole curve (both numbers). A third number,
best (each run's highest evaluation, BC's over its gradient steps), is how the paper reports BC.
"""

from __future__ import annotations

import dataclasses
import io
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from smiling.experiments.curves import as_curve, common_steps, draw_group, evaluations, normalize
from smiling.algos.registry import learning_differences, load_config, run_label
from smiling.data import DemoError, load_demos
from smiling.experiments.grid import find_runs
from smiling.utils.io import atomic_write_bytes, read_json

METRICS = ("normalized", "raw")


class Curve(NamedTuple):
    """One run's evaluations as `collect` gives them."""

    steps: np.ndarray
    """Env steps of its evaluations ([0] for an algorithm that learns from none, e.g. BC)."""
    values: np.ndarray
    """Its (normalized or raw) evaluation returns at those steps (BC: its final one)."""
    run: Path
    best: float
    """Its highest evaluation (up to ``until``; BC: over all its evaluations, along its gradient steps)."""


def recorded_references(run_dir: str | Path) -> tuple[float, float] | None:
    """(expert, random) return of a run's demonstrations as its config.json recorded them (runs written since
    config.json carries ``references``), or None."""
    saved = read_json(Path(run_dir) / "config.json").get("references")
    if isinstance(saved, dict) and saved.get("expert") is not None and saved.get("random") is not None:
        return float(saved["expert"]), float(saved["random"])
    return None


def references(cfg) -> tuple[float, float] | None:
    """(expert, random) return of a run's demonstrations (its own, or the task's bundled ones), or None."""
    try:
        return load_demos(cfg.demos or cfg.task, task=cfg.task).references
    except (DemoError, FileNotFoundError, ValueError):
        return None


def collect(root_or_runs, metric: str = "normalized", algos=None, tasks=None, until: int | None = None) -> dict:
    """{task: {label: [`Curve`, ...]}} for the runs under a directory (or a list of runs),
    kept to the given labels and tasks, and to the evaluations at env steps <= ``until`` if given (to compare
    runs at a shorter budget than they ran); ``metric`` normalized needs the demos' expert/random returns. Runs
    without an evaluation yet, or whose config.json cannot be read as a run's, are named on stderr and left out."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose {' or '.join(METRICS)}")
    runs = find_runs(root_or_runs) if isinstance(root_or_runs, (str, Path)) else [Path(r) for r in root_or_runs]
    out: dict = defaultdict(lambda: defaultdict(list))
    demo_refs: dict = {}  # (task, demos) -> the demos' references, read once, for runs that recorded none
    seen: dict = {}  # (task, label, seed) -> run
    first: dict = {}  # (task, label) -> (run, config) of its first run: the others must share its settings
    left_out, damaged = [], []
    for run in runs:
        try:
            cfg = load_config(run)
        except (ValueError, TypeError) as e:  # (one damaged run failed the summary of a whole grid)
            damaged.append(f"{run} ({e})")
            continue
        label = run_label(cfg)
        if (algos and label not in algos) or (tasks and cfg.task not in tasks):
            continue
        other = seen.setdefault((cfg.task, label, cfg.seed), run)
        if other != run:  # (a backup copy beside its run counted as a second seed)
            raise ValueError(f"{other} and {run} are both {cfg.task} {label} seed {cfg.seed}: each seed must count "
                             f"once (a copy of a run?); move one of them elsewhere")
        ref_run, ref = first.setdefault((cfg.task, label), (run, cfg))
        diff = learning_differences(dataclasses.replace(cfg, seed=ref.seed), ref)
        if diff:  # (runs of one label at other settings were averaged as seeds of one curve)
            raise ValueError(f"{run} and {ref_run} are both {cfg.task} {label} but differ in {', '.join(diff)}: "
                             f"one curve averages seeds of one setting; plot them apart (--algos, or another "
                             f"directory)")
        try:
            x, every, on_env_steps = evaluations(run)
        except (ValueError, FileNotFoundError):  # no evaluation yet, or no metrics.csv yet
            left_out.append(run)
            continue
        steps, returns = as_curve(x, every, on_env_steps)
        if until is not None:
            keep = steps <= until
            if not keep.any():
                continue
            steps, returns = steps[keep], returns[keep]
            every = returns if on_env_steps else every
        if metric == "normalized":
            refs = recorded_references(run)
            if refs is None:
                key = (cfg.task, cfg.demos)
                if key not in demo_refs:
                    demo_refs[key] = references(cfg)
                refs = demo_refs[key]
            if refs is None:
                raise ValueError(f"{run}: its demonstrations carry no expert/random returns to normalize with; "
                                 f"use --metric raw")
            returns, every = normalize(returns, *refs), normalize(every, *refs)
        out[cfg.task][label].append(Curve(steps, np.asarray(returns, np.float64), run, float(np.max(every))))
    if left_out:
        print(f"left out, no evaluation yet: {', '.join(map(str, left_out))}", file=sys.stderr)
    if damaged:
        print(f"left out, config.json not loadable here: {'; '.join(damaged)}", file=sys.stderr)
    if not out:
        raise ValueError("no runs with evaluations match" + (f" algos {algos}" if algos else "")
                         + (f" tasks {tasks}" if tasks else ""))
    return {t: dict(g) for t, g in out.items()}


def area_under_curve(steps, values) -> float:
    steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
    if len(steps) == 1 or steps[-1] == steps[0]:
        return float(values[-1])
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)) / (steps[-1] - steps[0]))


def mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, np.float64)
    se = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return float(x.mean()), se


def summary_table(groups: dict, metric: str = "normalized") -> str:
    """Markdown table: per task and label, seeds, env steps, final, AUC and best return (mean ± standard error over
    seeds). Best is each seed's highest evaluation, as the paper reports BC: biased upward by evaluation noise, so
    final and AUC are the fair comparison."""
    lines = [f"| task | algorithm | seeds | env steps | final ({metric}) | AUC ({metric}) | best ({metric}) |",
             "|---" * 7 + "|"]
    for task, by_label in groups.items():
        for label, runs in by_label.items():
            finals = [c.values[-1] for c in runs]
            aucs = [area_under_curve(c.steps, c.values) for c in runs]
            bests = [c.best for c in runs]
            steps = sorted({int(c.steps[-1]) for c in runs})
            span = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
            lines.append(f"| {task} | {label} | {len(runs)} | {span} | {_pm(*mean_se(finals))} | "
                         f"{_pm(*mean_se(aucs))} | {_pm(*mean_se(bests))} |")
    return "\n".join(lines)


def _pm(m: float, se: float) -> str:
    return f"{m:.2f}" if np.isnan(se) else f"{m:.2f} ± {se:.2f}"


def plot_experiment(groups: dict, out: str | Path, metric: str = "normalized", title: str = "") -> list[Path]:
    """Learning curves, one panel per task: mean over seeds with a ± standard-error band, thin per-seed lines,
    one colour per algorithm label (the same in every panel); the expert at 1 when normalized. Writes
    ``out`` with suffix .png and .svg (``out`` may name either, or neither)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({label for g in groups.values() for label in g})
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    n = len(groups)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), dpi=120, squeeze=False)
    for ax, (task, by_label) in zip(axes.flat, groups.items()):
        for label, runs in by_label.items():
            curves = [(c.steps, c.values) for c in runs]
            steps, vals = common_steps(curves)
            mean = vals.mean(0)
            se = vals.std(0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else np.zeros_like(mean)
            draw_group(ax, label, colours[label], steps, mean, se, curves)
        if metric == "normalized":
            ax.axhline(1.0, color="0.3", ls="--", lw=0.8)
            ax.axhline(0.0, color="0.6", ls=":", lw=0.8)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("normalized return" if metric == "normalized" else "return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:  # wrapped to the figure's width (about 48 characters a panel at this size)
        fig.suptitle(textwrap.fill(title, width=48 * cols))
    fig.tight_layout()
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".png", ".svg") else out
    paths = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        path = stem.with_name(stem.name + f".{fmt}")
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def is_experiment(path: str | Path) -> bool:
    path = Path(path)
    return (path / "experiment.json").exists() or (
        path.is_dir() and not (path / "config.json").exists() and any(path.rglob("config.json")))
