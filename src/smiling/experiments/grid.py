"""Experiments: a grid of tasks x algorithms x seeds, run by a local process pool or on a Ray cluster.

Layout: ``DIR/experiment.json`` (the grid) and one ordinary run directory per cell,
``DIR/<task>/<label>/s<seed>`` (task id with ':' and '/' replaced by '-'), so every run can also be resumed,
evaluated or plotted on its own. A label is an algorithm with optional variants joined by '+' (the registry's
`smiling.algos.registry.apply_label`): ``smiling+actions`` matches (state, action) pairs (paper §6.2, Fig. 4),
``dac+linear`` uses networks without activations (Fig. 5), ``smiling+paper`` and ``+paper-sac`` apply the
reference code's settings (`smiling.algos.presets`; before ``--set`` overrides, so those still apply).

Resuming: `run_grid` skips finished runs (their newest checkpoint has reached the budget, or an algorithm with
its own loop marked them finished) and resumes unfinished ones from their newest checkpoint (`resume_step`; an
algorithm with its own loop starts them again), so an interrupted grid is continued by running the same command
again. A larger ``steps`` extends finished runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
import traceback
import typing
from pathlib import Path

from smiling.algos.plugins import ENV_VAR as PLUGINS_VAR
from smiling.algos.presets import apply_preset
from smiling.algos.registry import (TrainConfig, apply_label, config_from_dict, config_to_dict,
                                    label_presets, learning_differences, load_config, run_label, train)
from smiling.data import load_demos
from smiling.runs import Checkpoints, StopSignals, TrainingStopped, last_metrics_step
from smiling.utils.cache import enable_compilation_cache
from smiling.utils.config import field_types
from smiling.utils.io import atomic_write_json, read_json
from smiling.utils.provenance import usable_cpus

EXECUTORS = ("local", "ray")
POLL_S = 2.0  # how often the progress bar reads the running runs' metrics


@dataclasses.dataclass(frozen=True)
class RunSpec:
    task: str
    label: str
    seed: int
    run_dir: Path
    config: TrainConfig


MAX_SEEDS = 10_000
"""Most seeds one range of ``--seeds`` may name (``0-100000000`` planned a hundred million runs)."""


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0..4]; '0,2,5' -> [0, 2, 5]; '1-2,7' -> [1, 2, 7]."""
    seeds: list[int] = []
    for part in str(text).split(","):
        if part.strip().startswith("-"):
            raise ValueError(f"seeds {text!r}: seeds must be >= 0")
        try:
            lo, sep, hi = part.strip().partition("-")
            lo_i = int(lo)
            hi_i = int(hi) if sep else lo_i
        except ValueError:
            raise ValueError(f"seeds {text!r}: expected a list like '0-4' or '0,2,5'") from None
        if hi_i - lo_i >= MAX_SEEDS:
            raise ValueError(f"seeds {text!r}: more than {MAX_SEEDS:,} seeds in {part.strip()!r} (a typo?)")
        if hi_i < lo_i:
            raise ValueError(f"seeds {text!r}: range {part.strip()!r} runs backwards")
        seeds.extend(range(lo_i, hi_i + 1))
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"seeds {text!r}: seeds must be distinct and >= 0")
    return seeds


def split_list(text: str | list[str], what: str) -> list[str]:
    items = [x.strip() for x in (text.split(",") if isinstance(text, str) else text) if x.strip()]
    if not items:
        raise ValueError(f"no {what} given")
    if len(set(items)) != len(items):
        raise ValueError(f"{what} {items}: listed twice")
    return items


def task_slug(task: str) -> str:
    return task.replace(":", "-").replace("/", "-")


def _coerce(text: str, typ, key: str):
    """Parse an override's text into the field's declared type ``typ``; ``none`` sets an ``X | None`` field to
    None (it was parsed by the field's current value, so a field whose default is None kept the text: a typo
    failed only inside the run, after the experiment had recorded it)."""
    args = typing.get_args(typ)
    if type(None) in args:
        if text.lower() == "none":
            return None
        typ, = (a for a in args if a is not type(None))
        args = typing.get_args(typ)
    if typing.get_origin(typ) is typing.Literal:
        if text not in map(str, args):
            raise ValueError(f"--set {key}={text}: expected one of {', '.join(map(str, args))}")
        return text
    if typ is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"--set {key}={text}: expected true or false")
    if typing.get_origin(typ) is tuple:  # e.g. sac.hidden_dims=256,256
        elem = args[0] if args else str
        try:
            return tuple(elem(x) for x in text.split(","))
        except ValueError:
            raise ValueError(f"--set {key}={text}: expected comma-separated {elem.__name__} values") from None
    if typ in (int, float):
        try:
            return typ(text)
        except ValueError:
            raise ValueError(f"--set {key}={text}: expected {typ.__name__}") from None
    return text


def apply_override(cfg, key: str, text: str):
    """A copy of dataclass ``cfg`` with the dotted field ``key`` (e.g. ``smiling.expert_steps``) set from text."""
    return apply_overrides(cfg, {key: text})


def apply_overrides(cfg, overrides: typing.Mapping[str, str], prefix: str = ""):
    """A copy of dataclass ``cfg`` with every dotted field of ``overrides`` set from text. Each group of settings
    is rebuilt once with all of its changes, so fields that are checked together (``bc.steps`` a multiple of
    ``bc.eval_every``) can be given in any order."""
    types = field_types(type(cfg))
    names = set(types)
    changes, groups = {}, {}
    for key, text in overrides.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise ValueError(f"--set {prefix}{key}: {type(cfg).__name__} has no field {head!r} "
                             f"(fields: {', '.join(sorted(names))})")
        current = getattr(cfg, head)
        if rest and not dataclasses.is_dataclass(current):
            raise ValueError(f"--set {prefix}{key}: {prefix}{head} is not a group of settings")
        if not rest and dataclasses.is_dataclass(current):
            raise ValueError(f"--set {prefix}{key}: name one of its fields ({prefix}{key}.<field>)")
        if rest:
            groups.setdefault(head, {})[rest] = text
        else:
            changes[head] = _coerce(text, types[head], prefix + key)
    for head, group in groups.items():
        changes[head] = apply_overrides(getattr(cfg, head), group, f"{prefix}{head}.")
    return dataclasses.replace(cfg, **changes)


def _field(cfg, dotted: str):
    """The value of a dotted field (``dac.linear``) of a config."""
    for name in dotted.split("."):
        cfg = getattr(cfg, name)
    return cfg


def parse_overrides(items: typing.Iterable[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. eval_every=5000")
        out[key.strip()] = value.strip()
    return out


def parse_demos(items: typing.Iterable[str]) -> dict[str, str]:
    """['dmc:cheetah-run=my.npz', ...] -> {task: demos}."""
    out = {}
    for item in items:
        task, sep, path = item.rpartition("=")
        if not sep or not task or not path:
            raise ValueError(f"--demos {item!r}: expected TASK=FILE, e.g. dmc:cheetah-run=demos.npz")
        if task in out:
            raise ValueError(f"--demos names {task} twice ({out[task]} and {path})")
        out[task] = path
    return out


def expand(out: str | Path, tasks, algos, seeds, steps: int, overrides: dict[str, str] | None = None,
           demos: dict[str, str] | None = None) -> list[RunSpec]:
    """The grid's runs in a fixed order (task, label, seed), each with its validated config. ``demos`` maps a
    task to its demonstrations (default: the task's bundled demos)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: a file, not a directory for the grid's runs")
    demos = dict(demos or {})
    stray = sorted(set(demos) - set(tasks))
    if stray:
        raise ValueError(f"--demos names tasks that are not in the grid: {', '.join(stray)}")
    if "demos" in (overrides or {}):
        raise ValueError("--set demos=... would give every task the same demos: use --demos TASK=FILE")
    for task, path in demos.items():  # (a missing or wrong file failed every run of its task, one by one)
        load_demos(path, task=task)
    owned = [key for key in ("task", "algo", "seed", "steps") if key in (overrides or {})]
    if owned:  # (the grid set them anyway, while experiment.json recorded the --set)
        raise ValueError(f"--set {owned[0]}=...: the grid sets {owned[0]} itself; use --{owned[0]}s"
                         .replace("--stepss", "--steps"))
    specs, given = [], {}
    for task in tasks:
        for name in algos:
            base = TrainConfig(steps=steps)
            for preset in label_presets(name):  # presets first: --set overrides them
                base = apply_preset(base, preset)
            base = apply_overrides(base, overrides or {})
            for seed in seeds:
                cfg = dataclasses.replace(base, task=task, seed=seed, demos=demos.get(task))
                cfg = apply_label(cfg, name)
                for key, text in (overrides or {}).items():  # a label's variant set after --set wins: say so
                    if not _same_value(_field(cfg, key), _field(apply_overrides(cfg, {key: text}), key)):
                        raise ValueError(f"--set {key}={text} contradicts --algos {name}, which sets {key} to "
                                         f"{_field(cfg, key)!r}")
                cfg.validate()
                # runs are named by what they are (--set may add a variant, e.g. rl=dreamer), so the folder,
                # the summary and `smiling plot` agree
                label = run_label(cfg)
                if given.setdefault(label, name) != name:
                    raise ValueError(f"--algos {given[label]} and {name} are the same runs ({label})")
                specs.append(RunSpec(task, label, seed, out / task_slug(task) / label / f"s{seed}", cfg))
    return specs


def run_state(run_dir: Path, steps: int) -> str:
    """'new' (no run yet), 'done' (reached ``steps``, or marked finished by an algorithm with its own loop: with a
    budget of at least ``steps`` env steps, or learning from none, as BC; a copy without checkpoints: its metrics
    reach ``steps``) or 'partial' (resumable)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        return "new"
    saved = read_json(run_dir / "config.json")
    if "finished" in saved:  # an algorithm with its own loop, which restarts an unfinished run in place
        finished = saved["finished"] and (saved.get("x_axis") == "grad_steps" or saved["config"]["steps"] >= steps)
        return "done" if finished else "partial"
    start = _checkpoint_step(run_dir)
    if start is not None:
        return "done" if start >= steps else "partial"
    # no checkpoint: killed before its first one, or a copy of a finished run without checkpoints (as committed
    # under docs/), which its metrics tell
    return "done" if last_metrics_step(run_dir) >= steps else "partial"


def resume_step(run_dir: Path) -> int | None:
    """The env step a run continues from when resumed: its newest checkpoint's. None without a checkpoint, or for
    an algorithm with its own loop (its config.json says whether it ``finished``), which starts an unfinished
    run again from the beginning."""
    run_dir = Path(run_dir)
    return None if "finished" in read_json(run_dir / "config.json") else _checkpoint_step(run_dir)


def _checkpoint_step(run_dir: Path) -> int | None:
    """The env step of an off-policy run's newest checkpoint; None without one."""
    latest = Checkpoints(run_dir).latest()
    return None if latest is None else int(read_json(latest / "loop.json")["step"])


_worker_signals: WorkerStop | None = None
"""A local pool's worker keeps SIGTERM/SIGINT from ending it and shares its grid's stop (`_init_worker`)."""


def run_one(config: dict, run_dir: str) -> dict:
    """Train one cell of the grid (fresh or resumed); its stdout/stderr go to RUN_DIR/log.txt. Runs in a worker
    process (local pool or Ray), so it takes and returns plain data. A pool's worker told to stop starts nothing
    (state "not started", with the signal's number)."""
    if _worker_signals is not None and _worker_signals.requested is not None:
        return {"run_dir": run_dir, "state": "not started", "signum": _worker_signals.requested}
    enable_compilation_cache()
    cfg = config_from_dict(config)
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    state = run_state(path, cfg.steps)
    if state == "done":
        return {"run_dir": run_dir, "state": "skipped"}
    with open(path / "log.txt", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {'resuming' if state == 'partial' else 'starting'} "
              f"{cfg.algo} on {cfg.task}, seed {cfg.seed}, {cfg.steps} steps", flush=True)
        try:
            summary = train(cfg, path, resume=state == "partial", quiet=True)
        except BaseException:
            traceback.print_exc(file=log)
            raise
    return {"run_dir": run_dir, "state": "resumed" if state == "partial" else "trained", **summary}


def _other_values(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """The keys of two --set dicts that set other values: a key in one of them only, or a value other by value
    (eval_every=050 is eval_every=50). A key set to its default is not the key unset: a label's preset, applied
    before --set, may hold another value."""
    keys = sorted(set(before) | set(now))
    try:
        a, b = apply_overrides(TrainConfig(), before), apply_overrides(TrainConfig(), now)
    except (ValueError, TypeError, AttributeError):  # (one of them no longer applies, or a hand-edited record)
        return [k for k in keys if before.get(k) != now.get(k)]
    return [k for k in keys if k not in before or k not in now or not _same_value(_field(a, k), _field(b, k))]


def _same_value(x, y) -> bool:
    """Whether two settings' values are equal, NaN being itself."""
    return x == y or x != x and y != y


def _write_grid(out: Path, tasks, algos, seeds, steps, overrides, demos) -> None:
    path = out / "experiment.json"
    grid = {"tasks": list(tasks), "algos": list(algos), "seeds": list(seeds), "steps": steps,
            "overrides": dict(overrides), "demos": dict(demos)}
    if path.exists():
        old = read_json(path)
        if not (isinstance(old, dict) and all(isinstance(old.get(k), list) for k in ("tasks", "algos", "seeds"))
                and isinstance(old.get("steps"), int) and isinstance(old.get("overrides", {}), dict)):
            raise ValueError(f"{path}: not an experiment's record (tasks, algos, seeds, steps): move it away, or use "
                             f"another --out")
        before, now = old.get("overrides", {}), grid["overrides"]
        changed = [f"{k}: {before.get(k, '(not set)')} -> {now.get(k, '(not set)')}"
                   for k in _other_values(before, now)]
        if changed:
            raise ValueError(f"{out} holds an experiment with other --set values ({'; '.join(changed)}): use another "
                             f"--out, or the same --set")
        grid = {"tasks": list(dict.fromkeys(old["tasks"] + grid["tasks"])),
                "algos": list(dict.fromkeys(old["algos"] + grid["algos"])),
                "seeds": sorted(set(old["seeds"]) | set(grid["seeds"])), "steps": max(steps, old["steps"]),
                "overrides": grid["overrides"], "demos": {**old.get("demos", {}), **grid["demos"]}}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, grid)


GPU_MEMORY_VARS = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION",
                   "XLA_PYTHON_CLIENT_ALLOCATOR")


def worker_env(environ=os.environ) -> dict[str, str]:
    """Environment variables a grid's worker processes get beside the parent's: on a GPU JAX preallocates 75% of
    the device's memory per process, so a second run on the same device would fail out of memory; the workers
    therefore allocate as they need (``XLA_PYTHON_CLIENT_PREALLOCATE=false``) unless the user set how JAX uses
    GPU memory, and then they get the user's settings (a Ray worker on another node does not inherit them).
    Changes nothing on a CPU. ``SMILING_PLUGINS`` is passed on too: a Ray worker must load the same plug-ins
    (`smiling.algos.plugins`; their modules importable there)."""
    mine = {v: environ[v] for v in GPU_MEMORY_VARS if v in environ}
    plugins = {v: environ[v] for v in (PLUGINS_VAR,) if environ.get(v)}
    return {**(mine or {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}), **plugins}


def cpu_shares(workers: int, cpus: typing.Iterable[int] | None = None) -> list[list[int]] | None:
    """The CPUs each of ``workers`` pool processes keeps to: ``cpus`` (default: this process's) split into
    ``workers`` contiguous shares, e.g. 2 workers on 4 CPUs: [[0, 1], [2, 3]]. None (no pinning) for one worker or
    for more workers than CPUs. Unpinned, each run's XLA thread pool spreads over every CPU and the runs
    contend for them; pinned, each run's pool is sized to its share (timed in docs/benchmarks.md)."""
    if cpus is None:
        if not hasattr(os, "sched_getaffinity"):
            return None
        cpus = os.sched_getaffinity(0)
    cpus = sorted(cpus)
    if workers < 2 or workers > len(cpus):
        return None
    size, extra = divmod(len(cpus), workers)
    shares, start = [], 0
    for i in range(workers):
        end = start + size + (i < extra)
        shares.append(cpus[start:end])
        start = end
    return shares


def _init_worker(env: dict[str, str], shares: list[list[int]] | None = None, counter=None, stop=None) -> None:
    """A pool process's set-up, before its first JAX computation (which reads both): `worker_env`, and its own
    share of the CPUs (`cpu_shares`), the n-th process started taking the n-th share.

    It also takes SIGTERM/SIGINT (Ctrl-C and a cluster's preemption reach every process): a worker ended by one
    while idle would break the pool, which then kills the other workers before their runs' checkpoints. The first
    one is recorded instead (`WorkerStop`): `run_one` starts no more runs, and a run training meanwhile (or set
    up: its loop's `StopSignals` takes the request over) stops at its next checkpoint. A second signal to the same
    process ends it (its first one stops it gently even when the grid is already stopping: Ctrl-C and a
    preemption reach every process, some later than others). ``stop`` (`stop_value`) is the grid's stop, shared
    by the grid and all its workers."""
    global _worker_signals
    _worker_signals = WorkerStop(stop).install()
    os.environ.update(env)
    if shares and counter is not None:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        os.sched_setaffinity(0, shares[index % len(shares)])


class WorkerStop(StopSignals):
    """A pool worker's `StopSignals`, kept installed between runs, whose request is its grid's: ``stop`` is an
    integer shared by the grid's process and all its workers (0, or the number of the first stop signal any of
    them got). A signal to one process alone (`timeout`, `docker stop` or `kill PID` on the grid's process, or a
    ``kill`` of one worker) so stops the whole grid as one to every process would: no run starts after it, and
    each running run stops at its next checkpoint."""

    def __init__(self, stop=None):
        super().__init__(message=None)
        self._stop = stop

    @property
    def requested(self) -> int | None:
        own = super().requested
        return own if own is not None or self._stop is None else self._stop.value or None

    @requested.setter
    def requested(self, signum: int | None) -> None:
        self._requested = signum

    def _request(self, signum: int) -> None:
        super()._request(signum)
        if self._stop is not None and not self._stop.value:
            self._stop.value = signum


def default_workers() -> int:
    return usable_cpus()


def run_grid(out: str | Path, tasks, algos, seeds, steps: int, overrides: dict[str, str] | None = None,
             demos: dict[str, str] | None = None, executor: str = "local", workers: int | None = None,
             address: str | None = None, cpus_per_run: float = 1.0, quiet: bool = False,
             gpus_per_run: float = 0.0) -> list[dict]:
    """Run every cell of the grid that is not finished; returns one result per cell (skipped ones included), in
    grid order, each with the cell's ``label`` (its algorithm name, with any variant ``overrides`` add).
    Executors and workers as in `run_specs`."""
    check_executor(executor, workers)
    out = Path(out)
    overrides = dict(overrides or {})
    specs = expand(out, tasks, algos, seeds, steps, overrides, demos)
    check_existing(specs)
    _write_grid(out, tasks, algos, seeds, steps, overrides, demos or {})
    what = f"experiment {out}: {len(specs)} runs ({len(tasks)} tasks x {len(algos)} algorithms x {len(seeds)} seeds)"
    return run_specs(specs, executor, workers, address, cpus_per_run, quiet, what, gpus_per_run=gpus_per_run)


def check_executor(executor: str, workers: int | None) -> None:
    """Refuse an unknown executor or a number of workers below one (None: the CPUs this process may use)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose {' or '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (or unset: the CPUs this process may use), got {workers}")


def other_settings(specs: list[RunSpec]) -> dict:
    """{run directory: the settings its saved run differs in} for the specs whose directory holds a run with other
    settings than the spec's (`learning_differences`: only `RESUMABLE_CHANGES` may differ)."""
    out = {}
    for s in specs:
        if (s.run_dir / "config.json").exists():
            diff = learning_differences(s.config, load_config(s.run_dir))
            if diff:
                out[s.run_dir] = diff
    return out


def check_existing(specs: list[RunSpec]) -> None:
    """Refuse a grid whose run directories hold runs with other settings than the grid gives them (only the
    settings of `RESUMABLE_CHANGES` may differ: a larger number of steps extends a run; the others do not change
    what it learns), so a finished run is never counted for a cell it does not belong to."""
    wrong = [f"{run_dir} (differs in {', '.join(diff)})" for run_dir, diff in other_settings(specs).items()]
    if wrong:
        raise ValueError(f"{len(wrong)} run directories hold runs with other settings than this grid's: "
                         + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else "")
                         + ". Use another output directory, or move those runs away.")


def run_specs(specs: list[RunSpec], executor: str = "local", workers: int | None = None,
              address: str | None = None, cpus_per_run: float = 1.0, quiet: bool = False,
              what: str = "", gpus_per_run: float = 0.0) -> list[dict]:
    """Train every run of ``specs`` that is not finished (new ones start, partial ones resume); returns one
    result per spec, in order, each with its ``label``.

    ``executor="local"``: at most ``workers`` runs at once (default: the CPUs this process may use), each in its
    own process (one worker runs them in this process, one after another). ``executor="ray"``: each run is a Ray
    task needing ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (Ray hides the GPUs from a task that reserves
    none), on the cluster at ``address`` (or the Ray instance already initialized in this process, or a new local
    one); the run directories must be paths every node can write. Worker processes get `worker_env`, so several
    runs can share a GPU. A failed run does not stop the others; the failures are raised together at the end.
    """
    check_executor(executor, workers)
    todo = [s for s in specs if run_state(s.run_dir, s.config.steps) != "done"]
    results = [{"run_dir": str(s.run_dir), "state": "skipped"} for s in specs if s not in todo]
    if not quiet:
        print(f"{what or f'{len(specs)} runs'}, {len(specs) - len(todo)} finished already, {len(todo)} to run "
              f"({executor} executor)", file=sys.stderr, flush=True)
    if not todo:
        return _in_grid_order(specs, results)
    payloads = [(config_to_dict(s.config), str(s.run_dir)) for s in todo]
    failures: list[str] = []
    from tqdm.auto import tqdm

    target = {str(s.run_dir): s.config.steps for s in todo}
    reached: dict[str, int] = {}

    def reach(d: str) -> None:  # a run's progress: its metrics' last row, up to its budget
        reached[d] = min(target[d], last_metrics_step(Path(d)))

    for d in target:  # (resumed runs start part-way)
        reach(d)
    # steps/s and the time left from the steps taken by this call: not from those resumed runs had before it
    bar = tqdm(total=sum(target.values()), initial=sum(reached.values()), unit="step", disable=quiet,
               dynamic_ncols=True, desc="runs", mininterval=2.0)

    n = max(1, min(workers or default_workers(), len(payloads)))  # the local executor's runs at once

    def progress(pending_dirs) -> None:
        """Draw the bar; ``pending_dirs``: the runs not ended, running or waiting for a worker."""
        for d in pending_dirs:  # only runs not ended move
            reach(d)
        # a trained or failed run counts whole; a running or stopped one up to its last row
        bar.n = sum(target[d] if d in ended and d not in mid_way else reached[d] for d in target)
        shown = {"runs": f"{len(ended) - len(mid_way)}/{len(todo)}"}
        if executor == "local":  # (on Ray, the cluster's free CPUs decide how many of them run)
            shown["running"] = min(n, len(pending_dirs))
        bar.set_postfix(shown, refresh=False)
        bar.refresh(nolock=True)  # one thread draws at a time; tqdm's lock would stay held by a poller that died

    ended: set[str] = set()  # trained, failed or stopped after its start: not to be started again by this call
    stops: list[int] = []  # the signals that stopped runs
    mid_way: list[str] = []  # the runs they stopped before their budget

    def record(run_dir: str, result: dict | None, error: BaseException | None) -> None:
        if result is not None and result["state"] == "not started":  # by a worker that got a stop signal
            stops.append(result["signum"])
            return
        if isinstance(error, TrainingStopped):  # checkpointed: not a failure (nor unfinished, in its last episode)
            stops.append(error.signum)
            state = run_state(Path(run_dir), target[run_dir])
            if state == "new":  # stopped while its reward model was built: not started
                return
            reach(run_dir)
            mid_way.extend([] if state == "done" else [run_dir])
            result = {"run_dir": run_dir, "state": "trained" if state == "done" else "stopped", "error": str(error)}
            error = None
        ended.add(run_dir)
        if error is not None:
            failures.append(f"{run_dir}: {type(error).__name__}: {error} (see {run_dir}/log.txt)")
            result = {"run_dir": run_dir, "state": "failed", "error": str(error)}
        results.append(result)

    signum = None  # a stop signal the local pool got
    try:
        if executor == "ray":
            _run_ray(payloads, address, cpus_per_run, gpus_per_run, record, progress)
        else:
            if n == 1:
                for cfg_dict, run_dir in payloads:
                    try:
                        with _polled(progress, run_dir, not quiet):  # (the run trains in this thread)
                            result = run_one(cfg_dict, run_dir)
                        record(run_dir, result, None)
                    except TrainingStopped as e:  # SIGTERM/Ctrl-C: checkpointed; start no more runs
                        record(run_dir, None, e)
                        break
                    except Exception as e:  # noqa: BLE001 - reported with the others at the end
                        record(run_dir, None, e)
            else:
                signum = _run_pool(payloads, n, record, progress)
        progress([])
    finally:
        bar.close()
    if stops or signum:
        signum = signum or stops[0]
        raise TrainingStopped(f"stopped by {signal.Signals(signum).name} (of {len(todo)} runs to do: "
                              f"{len(mid_way)} checkpointed mid-way, {len(todo) - len(ended)} not started, "
                              f"{len(failures)} failed): rerun the same command to continue", signum)
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(todo)} runs failed:\n  " + "\n  ".join(failures))
    return _in_grid_order(specs, results)


@contextlib.contextmanager
def _polled(progress, run_dir: str, poll: bool = True):
    """Move the progress bar every `POLL_S` seconds from a thread while ``run_dir`` trains in this process (if
    ``poll``). A poller that fails (stderr gone) stops; the main thread's next drawing raises the same error."""
    done = threading.Event()

    def poll_metrics() -> None:
        try:
            progress([run_dir])
            while not done.wait(POLL_S):
                progress([run_dir])
        except Exception:  # noqa: BLE001 - see above
            return

    poller = threading.Thread(target=poll_metrics, daemon=True)
    try:
        if poll:
            poller.start()
        yield
    finally:
        done.set()
        if poller.is_alive():
            poller.join()


def _in_grid_order(specs: list[RunSpec], results: list[dict]) -> list[dict]:
    by_dir = {r["run_dir"]: r for r in results}
    return [{**by_dir[str(s.run_dir)], "label": s.label} for s in specs]


def process_pool(workers: int, stop=None):
    """The local executor's pool: ``workers`` spawned processes (not forked: a forked JAX process can deadlock)
    with `worker_env` set, each kept to its own share of the CPUs where there are enough (`cpu_shares`);
    ``stop``: the grid's stop, an integer (`stop_value`) it and its workers share (`WorkerStop`)."""
    import concurrent.futures as cf

    ctx = _spawn()
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(worker_env(), cpu_shares(workers), ctx.Value("i", 0), stop))


def _spawn():
    import multiprocessing as mp

    return mp.get_context("spawn")


def stop_value():
    """A shared integer for `process_pool`'s ``stop`` (0: no stop; else the signal's number). Without a lock: a
    process killed while holding one would leave the grid waiting on it forever, and two processes' racing first
    signals only decide which number is reported."""
    return _spawn().Value("i", 0, lock=False)


def _run_pool(payloads, workers: int, record, progress) -> int | None:
    """Run ``payloads`` on a local pool; returns the number of a stop signal it got (None: none)."""
    import concurrent.futures as cf

    # The first SIGTERM/SIGINT here or in a worker starts no more runs; each running run stops at its episode's
    # end after a checkpoint (Ctrl-C and a cluster's preemption send the signal to every process; `told`, the
    # grid's stop, tells every process of one sent to this one or to one worker alone).
    stop = StopSignals("starting no more runs; the running ones stop at their episode's end after a checkpoint")
    told, from_a_worker = stop_value(), False
    with stop, process_pool(workers, told) as pool:
        futures = {pool.submit(run_one, c, d): d for c, d in payloads}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
            if stop.requested and not told.value:
                told.value = stop.requested
            if told.value:
                if stop.requested is None and not from_a_worker:  # (its first signal here still stops gently)
                    from_a_worker = True
                    print(f"\nsmiling: a worker of this grid got {signal.Signals(told.value).name}: {stop.message}",
                          file=sys.__stderr__ or sys.stderr, flush=True)
                pending = {f for f in pending if not f.cancel()}  # the runs not started yet
            for f in done:
                e = f.exception()
                record(futures[f], None if e else f.result(), e)
            progress([futures[f] for f in pending])
    return told.value or stop.requested  # (a signal here after the loop's last look)


def _run_ray(payloads, address: str | None, cpus_per_run: float, gpus_per_run: float, record, progress) -> None:
    try:
        import ray
    except ImportError:
        raise ImportError("--executor ray needs Ray: pip install -e '.[ray]' in smiling's checkout") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0,
                      runtime_env={"env_vars": worker_env()})(run_one)
    refs = {task.remote(c, d): d for c, d in payloads}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
        for ref in done:
            try:
                record(refs[ref], ray.get(ref), None)
            except Exception as e:  # noqa: BLE001 - a RayTaskError wraps the run's own exception
                record(refs[ref], None, getattr(e, "cause", None) or e)
        progress([refs[r] for r in pending])


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory (one holding config.json with a training config) under ``root``, sorted; a config.json
    that is not valid JSON is named on stderr and left out."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    runs, damaged = [], []
    for path in sorted(root.rglob("config.json")):
        try:
            saved = read_json(path)
        except ValueError:  # (one damaged file failed the summary of a whole grid, after its training)
            damaged.append(path)
            continue
        if isinstance(saved, dict) and "config" in saved:
            runs.append(path.parent)
    if damaged:
        print(f"left out, config.json not valid JSON: {', '.join(map(str, damaged))}", file=sys.stderr)
    if not runs:
        raise FileNotFoundError(f"{root}: no run directories (with config.json) inside")
    return runs
