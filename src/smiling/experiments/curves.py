"""Normalized learning curves over seeds (paper Fig. 3-5).

normalized return = (return - random) / (expert - random): 0 is the uniform random policy, 1 the expert whose
demonstrations were imitated. Both references come from the demonstrations' metadata (`smiling demos` measures
them), so a curve is normalized against the very expert it imitates.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from smiling.runs import curve_axis, read_metrics
from smiling.utils.io import atomic_write_bytes, read_json


def normalize(returns, expert: float, random: float) -> np.ndarray:
    if not expert > random:
        raise ValueError(f"expert return ({expert}) must exceed the random return ({random}) to normalize")
    return (np.asarray(returns, np.float64) - random) / (expert - random)


def evaluations(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """(x, eval returns, whether x is env steps) of every evaluation in a run's metrics.csv; x is the run's
    curve axis (`smiling.runs.curve_axis`): env steps, or for an algorithm that learns from no env steps (e.g.
    behavioural cloning) its own (gradient steps)."""
    all_rows = read_metrics(run_dir)
    rows = [r for r in all_rows if r.get("eval_return")]
    if not rows:
        raise ValueError(f"{run_dir}: no evaluations in metrics.csv yet")
    path = Path(run_dir) / "config.json"
    axis = curve_axis(read_json(path) if path.exists() else {}, all_rows)
    x = np.array([int(float(r.get(axis) or 0)) for r in rows])
    return x, np.array([float(r["eval_return"]) for r in rows]), axis == "step"


def eval_curve(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, eval returns) of a run, from its metrics.csv.

    An algorithm that learns from no env steps (its curve is drawn against another axis, e.g. behavioural
    cloning's gradient steps) gets its final evaluation at step 0 (plotted as a horizontal line).
    """
    return as_curve(*evaluations(run_dir))


def as_curve(x, returns, on_env_steps: bool) -> tuple[np.ndarray, np.ndarray]:
    """`evaluations` as a curve over env steps: as they are, or for a run that learns from no env steps its final
    evaluation at step 0."""
    return (x, returns) if on_env_steps else (np.array([0]), returns[-1:])


def aggregate(run_dirs, expert: float, random: float) -> dict:
    """Mean and std (ddof 0) over runs of the normalized eval return at the env steps that every run has evaluated.

    Returns ``steps``, ``mean``, ``std``, ``per_run`` (runs x steps) and ``first_reach(threshold)``-ready
    per-run curves (``curves``: list of (steps, normalized) for each run, full length).
    """
    curves = []
    for d in run_dirs:
        s, r = eval_curve(d)
        curves.append((s, normalize(r, expert, random)))
    steps, per_run = common_steps(curves)
    return {"steps": steps, "mean": per_run.mean(0), "std": per_run.std(0), "per_run": per_run,
            "curves": curves, "runs": [str(d) for d in run_dirs]}


def common_steps(curves) -> tuple[np.ndarray, np.ndarray]:
    """(the env steps every curve evaluated, curves x those steps values) for (steps, values) pairs."""
    common = sorted(set.intersection(*(set(np.asarray(s).tolist()) for s, _ in curves)))
    if not common:
        raise ValueError("the runs share no evaluation step")
    return np.array(common), np.array([[v[list(s).index(t)] for t in common] for s, v in curves])


def first_reach(steps: np.ndarray, normalized: np.ndarray, threshold: float) -> int | None:
    """First evaluated env step whose normalized return is >= threshold (None if never)."""
    hit = np.nonzero(np.asarray(normalized) >= threshold)[0]
    return int(np.asarray(steps)[hit[0]]) if len(hit) else None


def plot_curves(groups: dict[str, dict], out: str | Path, title: str = "") -> Path:
    """One line per group (label -> `aggregate` result): mean over seeds, shaded +-1 std, thin per-seed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for i, (label, g) in enumerate(groups.items()):
        draw_group(ax, label, f"C{i}", g["steps"], g["mean"], g["std"], g["curves"])
    ax.axhline(1.0, color="0.3", ls="--", lw=0.8)
    ax.axhline(0.0, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("normalized return (random 0, expert 1)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    out = Path(out)
    fig.savefig(buf, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out


def draw_group(ax, label: str, colour: str, steps, mean, band, curves) -> None:
    """One group of runs on a matplotlib axis: thin per-seed lines, the mean with a +-band shading; a group
    without env steps (BC) as a horizontal line at its mean with its band. Its legend entry: the label and the
    number of seeds (``curves``: one per seed)."""
    name = f"{label} ({len(curves)} seed{'' if len(curves) == 1 else 's'})"
    if list(steps) == [0]:
        ax.axhline(mean[0], color=colour, ls="-.", lw=1.2, label=name)
        ax.axhspan(mean[0] - band[0], mean[0] + band[0], color=colour, alpha=0.1)
        return
    for s, v in curves:
        ax.plot(s, v, color=colour, lw=0.6, alpha=0.4)
    ax.plot(steps, mean, color=colour, marker="o", ms=3, label=name)
    ax.fill_between(steps, mean - band, mean + band, color=colour, alpha=0.15)
