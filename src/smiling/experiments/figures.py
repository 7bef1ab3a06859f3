"""The paper's Figures 3, 4 and 5 as grids, one command each: ``smiling figure N [--budget cpu|paper]``.

A figure is a list of panels (a task, its env-step budget and the run labels it compares) and seeds, at one of
two budgets:

* ``cpu``: the tasks with bundled demonstrations (ball_in_cup-catch 100k env steps, cheetah-run and walker-walk
  200k), seeds 2, 3, 4 (3 and 4 took part in no choice of a setting; seed 2 in two, the robust normalization
  and K = 8: docs/results.md), what one CPU can afford;
* ``paper``: the paper's tasks and budgets (§6: ball_in_cup-catch 0.4M env steps, the others 3M; DMC on SAC,
  HumanoidBench on DreamerV3), seeds 0-4. Tasks without bundled demonstrations need ``--demos TASK=FILE``;
  without them their cells are listed as not runnable (with the reason) and the rest of the figure runs.

Every run of every figure at one budget lives in one directory tree, ``OUT/<task>/<label>/s<seed>`` (the layout
of `smiling experiment`), so runs that several figures share (Fig. 5's nonlinear reference curves are Fig. 3's
SMILING and DAC on cheetah-run; BC is the same run in Fig. 3 and 4) are trained once. Rerunning a figure skips
finished runs, resumes unfinished ones from their newest checkpoint, and redraws ``OUT/figure<N>.png``/``.svg``
and ``OUT/figure<N>.md`` (summary table: final and AUC normalized return, mean ± standard error over seeds).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Mapping

from smiling.algos.registry import ALGORITHMS, needs_actions
from smiling.data import DemoError, load_demos
from smiling.experiments.grid import (RunSpec, check_executor, check_existing, expand, other_settings, resume_step,
                                      run_specs, run_state)
from smiling.experiments.report import collect, plot_experiment, summary_table
from smiling.runs import last_metrics_step, read_metrics, run_commits
from smiling.utils.io import atomic_write_text, read_json

BUDGETS = ("cpu", "paper")
CPU_SEEDS = (2, 3, 4)
PAPER_SEEDS = (0, 1, 2, 3, 4)
CPU_TASKS = (("dmc:ball_in_cup-catch", 100_000), ("dmc:cheetah-run", 200_000), ("dmc:walker-walk", 200_000))
PAPER_DMC = (("dmc:ball_in_cup-catch", 400_000), ("dmc:cheetah-run", 3_000_000), ("dmc:humanoid-walk", 3_000_000))
PAPER_HB = (("humanoid:h1-sit_simple", 3_000_000), ("humanoid:h1-crawl", 3_000_000), ("humanoid:h1-pole", 3_000_000))
CPU_SETTINGS = {"eval_episodes": "10", "checkpoint_every": "20000"}
PAPER_SETTINGS = {"eval_episodes": "10", "eval_every": "50000", "checkpoint_every": "100000"}


@dataclasses.dataclass(frozen=True)
class Panel:
    task: str
    steps: int
    labels: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Budget:
    panels: tuple[Panel, ...]
    seeds: tuple[int, ...]
    settings: Mapping[str, str]  # config overrides for every run (as `smiling experiment --set`)


@dataclasses.dataclass(frozen=True)
class Figure:
    number: int
    title: str
    claim: str
    budgets: Mapping[str, Budget]


def _panels(tasks, labels, hb_labels=None) -> tuple[Panel, ...]:
    return tuple(Panel(t, n, tuple(hb_labels if hb_labels and t.startswith("humanoid:") else labels))
                 for t, n in tasks)


def _figure(number: int, title: str, claim: str, cpu_tasks, paper_tasks, labels, hb_labels=None) -> Figure:
    return Figure(number, title, claim, {
        "cpu": Budget(_panels(cpu_tasks, labels), CPU_SEEDS, CPU_SETTINGS),
        "paper": Budget(_panels(paper_tasks, labels, hb_labels), PAPER_SEEDS, PAPER_SETTINGS)})


FIGURES: dict[int, Figure] = {f.number: f for f in (
    _figure(3, "Fig. 3: imitation from state-only demonstrations",
            "SMILING matches the expert and beats DAC and IQ-Learn on five of six tasks (§6.1); BC (which uses "
            "the demonstrator's actions) is a reference, BCO the state-only baseline it bounds",
            CPU_TASKS, PAPER_DMC + PAPER_HB, ("smiling", "dac", "iqlearn", "bc", "bco"),
            ("smiling+dreamer", "dac+dreamer", "iqlearn", "bc", "bco")),
    _figure(4, "Fig. 4: imitation from state-action demonstrations",
            "the same ranking as from states alone (§6.2)",
            CPU_TASKS, PAPER_DMC + PAPER_HB, ("smiling+actions", "dac+actions", "iqlearn+actions", "bc"),
            ("smiling+actions+dreamer", "dac+actions+dreamer", "iqlearn+actions", "bc")),
    _figure(5, "Fig. 5: linear score functions and discriminators on cheetah-run",
            "with linear networks DAC degrades (slower, higher variance) and SMILING does not (§6.3)",
            CPU_TASKS[1:2], PAPER_DMC[1:2], ("smiling+linear", "dac+linear", "smiling", "dac", "bc")),
)}


@dataclasses.dataclass(frozen=True)
class Plan:
    """A figure's runs at a budget: those it can run, and the cells it cannot run here with the reason."""

    figure: Figure
    budget: str
    specs: tuple[RunSpec, ...]
    missing: tuple[tuple[str, str, str], ...]  # (task, label, why)
    narrowed: str = ""
    """The `smiling figure` flags that narrowed or changed the budget (--steps, --seeds, --tasks, --algos, --set,
    --demos), as the command that makes this plan needs them."""

    def describe(self) -> str:
        steps = {s.task: s.config.steps for s in self.specs}
        shown = {s.task for s in self.specs} | {m[0] for m in self.missing}  # --tasks/--algos may narrow it
        panels = [p for p in self.figure.budgets[self.budget].panels if p.task in shown]
        seeds = sorted({s.seed for s in self.specs})
        lines = [f"{self.figure.title}, {self.budget} budget: {len(self.specs)} runs "
                 f"({len(panels)} task{'' if len(panels) == 1 else 's'}, seeds {','.join(map(str, seeds)) or '-'}), "
                 f"{sum(s.config.steps for s in self.specs if ALGORITHMS[s.config.algo].x_axis == 'step') / 1e6:.2f}M "
                 f"env steps in all"]
        for p in panels:
            labels = ", ".join(dict.fromkeys(s.label for s in self.specs if s.task == p.task)) or "none"
            lines.append(f"  {p.task}: {steps.get(p.task, p.steps):,} env steps; {labels}")
        for (task, why), labels in _grouped(self.missing).items():
            lines.append(f"  cannot run {task} ({', '.join(labels)}): {why}")
        return "\n".join(lines)

    def standing(self) -> str:
        """Where the runs stand in their directory: finished, part-way (their last metrics row and the checkpoint
        they resume from), not started."""
        other = other_settings(self.specs)  # (training refuses those: `check_existing`)
        states = [(s, run_state(s.run_dir, s.config.steps)) for s in self.specs if s.run_dir not in other]
        partial = [s for s, state in states if state == "partial"]
        done = sum(state == "done" for _, state in states)
        lines = [f"so far: {done} finished, {len(partial)} part-way, {len(states) - done - len(partial)} not started"
                 + (f", {len(other)} with other settings (training refuses them)" if other else "")]
        lines += [f"  {run_dir}: differs in {', '.join(diff)}" for run_dir, diff in other.items()]
        for s in partial:
            start, at = resume_step(s.run_dir), last_metrics_step(s.run_dir)  # (BC: no env step)
            where = f"at env step {at:,} of {s.config.steps:,}" if at else "unfinished"
            resumes = f"its checkpoint at {start:,}" if start is not None else "it starts again from the beginning"
            lines.append(f"  {s.run_dir}: {where} ({resumes})")
        return "\n".join(lines)


def plan(number: int, budget: str, out: str | Path, demos: Mapping[str, str] | None = None,
         steps: int | None = None, seeds=None, tasks=None, overrides: Mapping[str, str] | None = None,
         algos=None) -> Plan:
    """The runs of figure ``number`` at ``budget`` under ``out``. ``steps``, ``seeds``, ``tasks`` and ``algos``
    (labels) narrow or shrink the budget (for a try or a test: the figure is then not the paper's);
    ``overrides`` add to the budget's settings (KEY=VALUE as `smiling experiment --set`)."""
    if number not in FIGURES:
        raise ValueError(f"figure {number}: the paper's figures here are {', '.join(map(str, FIGURES))}")
    if budget not in BUDGETS:
        raise ValueError(f"budget {budget!r}: choose {' or '.join(BUDGETS)}")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    for name, given in (("--seeds", seeds), ("--tasks", tasks), ("--algos", algos)):
        if given is not None and not len(given):  # (an empty one planned the whole figure)
            raise ValueError(f"{name} is empty: leave it out for the figure's own")
    figure = FIGURES[number]
    spec = figure.budgets[budget]
    demos = dict(demos or {})
    panels = spec.panels
    if tasks:
        known = [p.task for p in panels]
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise ValueError(f"figure {number} ({budget}) has no panel {unknown[0]!r}; its tasks: {', '.join(known)}")
        panels = tuple(p for p in panels if p.task in tasks)
    if algos:
        known = {label for p in panels for label in p.labels}
        unknown = [a for a in algos if a not in known]
        if unknown:
            raise ValueError(f"figure {number} ({budget}) draws no {unknown[0]!r}; "
                             f"its labels: {', '.join(sorted(known))}")
        panels = tuple(dataclasses.replace(p, labels=tuple(x for x in p.labels if x in algos)) for p in panels)
    stray = sorted(set(demos) - {p.task for p in panels})
    if stray:
        raise ValueError(f"--demos names tasks that are not in figure {number}: {', '.join(stray)}")
    settings = {**spec.settings, **dict(overrides or {})}
    specs, missing = [], []
    for p in panels:
        try:
            demo = load_demos(demos.get(p.task) or p.task, task=p.task)
        except (DemoError, FileNotFoundError, ValueError) as e:
            why = f"{e} (--demos {p.task}=FILE; `smiling train-expert` then `smiling demos` make one)"
            missing.extend((p.task, label, why) for label in p.labels)
            continue
        for label in p.labels:
            cells = expand(out, [p.task], [label], list(seeds if seeds is not None else spec.seeds),
                           steps if steps is not None else p.steps, settings,
                           {p.task: demos[p.task]} if p.task in demos else None)
            if demo.actions is None and needs_actions(cells[0].config):
                missing.append((p.task, label, "its demonstrations hold no actions"))
                continue
            specs.extend(cells)
    flags = [f"--steps {steps}" if steps else "",
             f"--seeds {','.join(map(str, seeds))}" if seeds is not None else "",
             f"--tasks {','.join(tasks)}" if tasks else "", f"--algos {','.join(algos)}" if algos else "",
             " ".join(f"--demos {t}={f}" for t, f in demos.items()),
             ("--set " + " ".join(f"{k}={v}" for k, v in overrides.items())) if overrides else ""]
    return Plan(figure, budget, tuple(specs), tuple(missing), " ".join(f for f in flags if f))


def make_figure(number: int, budget: str = "cpu", out: str | Path | None = None, demos=None, steps=None,
                seeds=None, tasks=None, overrides=None, executor: str = "local", workers: int | None = None,
                address: str | None = None, cpus_per_run: float = 1.0, quiet: bool = False,
                dry_run: bool = False, algos=None, train: bool = True, gpus_per_run: float = 0.0) -> dict:
    """Run (or resume) the runs of a figure that are not finished, then draw it from its run directories.
    Returns ``{"plan", "results", "paths", "table"}``; with ``dry_run`` only the plan (nothing trained or drawn);
    with ``train=False`` nothing is trained and the figure is drawn from the runs so far.
    """
    out = Path(out or f"runs/figures/{budget}")
    check_executor(executor, workers)  # (a dry run too says what its training would refuse)
    if not train and not dry_run and not out.is_dir():
        raise FileNotFoundError(f"figure {number}: {out}: no such directory (drawing only draws the runs in it)")
    p = plan(number, budget, out, demos, steps, seeds, tasks, overrides, algos)
    if not quiet:
        print(p.describe(), flush=True)
    if dry_run:
        if not quiet:
            print(p.standing(), flush=True)
        return {"plan": p, "results": [], "paths": [], "table": ""}
    if not p.specs:
        raise ValueError(f"figure {number} ({budget}): none of its runs can be run here (see the list above)")
    check_existing(list(p.specs))
    if train:
        results = run_specs(list(p.specs), executor, workers, address, cpus_per_run, quiet,
                            what=f"figure {number} ({budget}): {len(p.specs)} runs", gpus_per_run=gpus_per_run)
    else:
        results = [{"run_dir": str(s.run_dir), "state": "not trained", "label": s.label} for s in p.specs]
    paths, table = draw(p, out, partial=not train)
    return {"plan": p, "results": results, "paths": paths, "table": table}


def draw(p: Plan, out: str | Path, partial: bool = False) -> tuple[list[Path], str]:
    """Draw a figure from the runs of its plan that have evaluations: OUT/figure<N>.png and .svg (one panel per
    task, normalized return), and OUT/figure<N>.md (the summary table and where every run came from)."""
    out = Path(out)
    runs = [s.run_dir for s in p.specs if (s.run_dir / "metrics.csv").exists()]
    evaluated = [r for r in runs if any(row.get("eval_return") for row in read_metrics(r))]
    if not evaluated:
        raise ValueError(f"figure {p.figure.number}: no run has evaluations yet")
    by_task: dict[str, tuple[int, list[Path]]] = {}  # a panel's runs and budget (a longer run is cut at it)
    for s in p.specs:
        if s.run_dir in evaluated:
            by_task.setdefault(s.task, (s.config.steps, []))[1].append(s.run_dir)
    groups = {t: collect(dirs, "normalized", until=steps)[t] for t, (steps, dirs) in by_task.items()}
    order = [panel.task for panel in p.figure.budgets[p.budget].panels]
    groups = {t: groups[t] for t in order if t in groups}
    paths = plot_experiment(groups, out / f"figure{p.figure.number}",
                            title=f"{p.figure.title} ({p.budget} budget)")
    table = summary_table(groups)
    commits = sorted({str(c or "not recorded") for r in runs for c in run_commits(read_json(r / "config.json"))})
    unfinished = [str(s.run_dir) for s in p.specs if s.run_dir in runs and run_state(s.run_dir, s.config.steps)
                  != "done"]
    not_started = [str(s.run_dir) for s in p.specs if s.run_dir not in runs]
    lines = [f"# {p.figure.title} ({p.budget} budget)", "",
             f"Drawn {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `smiling figure {p.figure.number} "
             + " ".join(f for f in (f"--budget {p.budget}", p.narrowed, f"--out {out}",
                                    "--draw-only" if partial else "") if f)
             + f"` from {len(runs)} run directories.", "",
             f"The paper's claim: {p.figure.claim}.", "", table, "",
             "Final: the last evaluation's normalized return; AUC: the mean normalized return over training "
             "(trapezoids over evaluations); best: each seed's highest evaluation (how the paper reports BC; "
             "biased upward by evaluation noise); mean ± standard error over seeds.", "",
             f"Source commits of the runs: {', '.join(commits)}."]
    if unfinished:
        lines += ["", f"Not finished yet ({len(unfinished)}): " + ", ".join(unfinished)]
    if not_started:
        lines += ["", f"Not started yet ({len(not_started)}): " + ", ".join(not_started)]
    if p.missing:
        lines += ["", "Not run here:"] + [f"- {t} ({', '.join(labels)}): {why}"
                                          for (t, why), labels in _grouped(p.missing).items()]
    md = out / f"figure{p.figure.number}.md"
    atomic_write_text(md, "\n".join(lines) + "\n")
    return [*paths, md], table


def _grouped(missing) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for task, label, why in missing:
        out.setdefault((task, why), []).append(label)
    return out
