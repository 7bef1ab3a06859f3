"""Run directories: config, metrics, checkpoints, plots.

Layout of a run directory::

    config.json            everything needed to rerun (the dataclass config, the package version)
    metrics.csv            one row per finished episode (env step, wall time, returns, losses)
    tb/                    TensorBoard events (only with --tensorboard)
    checkpoints/latest.json -> name of the newest complete checkpoint folder
    checkpoints/step-<N>/  agent.msgpack (Flax msgpack), buffer.npz, loop.json (counters, RNG states)
    curve.png              learning curve (written at the end)

A checkpoint folder is written under a temporary name and renamed into place; only then is latest.json
(atomically) pointed at it, so a run killed at any moment resumes from its last complete checkpoint. An off-policy
run sent SIGTERM or SIGINT (Ctrl-C) loses nothing: it checkpoints at the end of its episode and stops
(`StopSignals`); BC, and the algorithms that reuse its run set-up, stop after their next evaluation and start
again from the beginning when resumed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

from smiling.utils.io import MismatchError, atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

CORE_COLUMNS = ["step", "episode", "wall_time", "train_return", "eval_return", "eval_return_std", "steps_per_sec"]
"""The columns every metrics.csv starts with; the metrics an agent or reward model returns follow as they appear."""


class MetricsLogger:
    """Appends rows to metrics.csv (flushed per row), and to TensorBoard when asked.

    The header starts as ``columns`` (or an existing file's header, plus any of ``columns`` it lacks) and grows
    when a row carries a new key: the file is rewritten with the new column (earlier rows leave it empty), so
    every logged metric reaches the file and a resumed run's rows line up with the old ones."""

    def __init__(self, run_dir: Path, columns: list[str], tensorboard: bool = False, wandb: dict | None = None):
        self.path = Path(run_dir) / "metrics.csv"
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), [])
            self.columns = header + [c for c in columns if c not in header]
            if self.columns != header:
                _rewrite_header(self.path, self.columns)
        else:
            self.columns = list(columns)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        self._open()
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise RuntimeError("--tensorboard needs tensorboardX: pip install -e '.[tb]' in smiling's "
                                   "checkout") from None
            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))
        self._wandb = _wandb_run(Path(run_dir), wandb) if wandb else None

    def _open(self) -> None:
        self._f = open(self.path, "a", newline="")
        self._w = csv.DictWriter(self._f, fieldnames=self.columns)

    def log(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self.columns]
        if new:
            self._f.close()
            self.columns += new
            _rewrite_header(self.path, self.columns)
            self._open()
        self._w.writerow({k: _fmt(row.get(k)) for k in self.columns})
        self._f.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and v == v:
                    self._tb.add_scalar(k, v, int(row["step"]))
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and v == v})

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def wandb_settings(cfg, meta: dict) -> dict | None:
    """What `MetricsLogger` gives ``wandb.init`` for a run (None without ``--wandb``): project, run name
    (label, task, seed), group (the task), tags and the run's config."""
    if not getattr(cfg, "wandb", False):
        return None
    return {"project": cfg.wandb_project, "name": f"{meta['label']} {cfg.task} s{cfg.seed}", "group": cfg.task,
            "tags": [meta["label"]], "config": meta["config"]}


def _wandb_run(run_dir: Path, settings: dict):
    """A W&B run logging into RUN_DIR/wandb; its id is kept in RUN_DIR/wandb-id.txt, so a resumed run logs to the
    same W&B run (rows after the last checkpoint are logged again: W&B numbers them on)."""
    try:
        import wandb
    except ImportError:
        raise RuntimeError("--wandb needs the wandb package: pip install -e '.[wandb]' in smiling's checkout") from None
    id_file = run_dir / "wandb-id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
    atomic_write_text(id_file, run_id + "\n")
    return wandb.init(id=run_id, resume="allow", dir=str(run_dir), **settings)


def _rewrite_header(path: Path, columns: list[str]) -> None:
    """Rewrite metrics.csv with the header ``columns`` (a superset of its own): rows keep their values, new
    columns are empty."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, out.getvalue())


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def read_metrics(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv (``path``: the file or its run directory), less a last row cut short (a
    live run's still being written, or one a crash left: fields missing, no step)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.csv (is this a run directory?)")
    with open(path, newline="", errors="replace") as f:
        rows = list(csv.DictReader(f))
    return rows[:-1] if rows and not _whole(rows[-1]) else rows


def _row_step(row: dict) -> int | None:
    """A metrics row's env step, or None where the row holds none (a damaged row)."""
    try:
        return int(float(row.get("step") or "x"))
    except ValueError:
        return None


def _whole(row: dict) -> bool:
    """Whether a metrics row has all its fields, no more, and a step (a crash can leave a row cut short, or NUL
    bytes)."""
    return None not in row and None not in row.values() and _row_step(row) is not None


def last_metrics_step(run_dir: str | os.PathLike) -> int:
    """Env step of the last whole row of RUN_DIR/metrics.csv (0 if none): reads only the header and the file's
    tail, so polling a long run every few seconds stays cheap. A last row with fewer fields than the header is
    being written, or was cut short: it does not count."""
    try:
        with open(Path(run_dir) / "metrics.csv", "rb") as f:
            fields = f.readline().count(b",") + 1
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return 0
    for line in reversed(lines):
        head = line.split(b",", 1)[0]
        if head.isdigit() and line.count(b",") + 1 == fields:
            return int(head)
    return 0


def truncate_metrics(run_dir: Path, last_step: int) -> int:
    """Drop rows with step > last_step (written after the checkpoint we resume from) and rows that are not whole
    (a crash's debris: a row cut short, NUL bytes); returns rows kept."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return 0
    with open(path, newline="", errors="replace") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or CORE_COLUMNS
        rows = [r for r in reader if _whole(r) and _row_step(r) <= last_step]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, out.getvalue())
    return len(rows)


class Checkpoints:
    """Numbered checkpoint folders (``step-<N>``) with an atomically updated pointer to the newest complete one.

    The newest ``keep`` folders are kept whole; older ones are deleted, or with ``keep_policies`` stripped to
    ``agent.msgpack`` and ``loop.json`` (no replay buffer), so that every checkpoint can still be evaluated or
    rolled out (`at`) while only the newest can resume a run. A folder saved with ``keep_policies`` is marked
    (`KEPT`) and keeps its policy even if the run goes on without keep_policies.
    """

    KEPT = "policy-kept"

    def __init__(self, run_dir: Path, keep: int = 1, keep_policies: bool = False):
        self.root = Path(run_dir) / "checkpoints"
        self.keep = keep
        self.keep_policies = keep_policies

    @staticmethod
    def name(step: int) -> str:
        return f"step-{int(step):09d}"

    @staticmethod
    def step_of(path: Path) -> int:
        """Env step of a checkpoint folder."""
        return int(Path(path).name.removeprefix("step-"))

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder (None if there is none): latest.json's, or without it (deleted,
        or lost in a copy) the newest folder on disk, with a warning: folders are renamed into place whole."""
        ptr = self.root / "latest.json"
        if not ptr.exists():
            steps = self.steps()
            if not steps:
                return None
            warnings.warn(f"{ptr} is missing: using the newest checkpoint folder, {self.name(steps[-1])}",
                          stacklevel=2)
            return self.root / self.name(steps[-1])
        path = self.root / read_json(ptr)["name"]
        if not path.is_dir():
            raise FileNotFoundError(f"{ptr} points at {path}, which does not exist")
        return path

    def save(self, step: int, files: dict[str, bytes]) -> Path:
        name = self.name(step)
        final = self.root / name
        tmp = self.root / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for fname, data in {**files, **({self.KEPT: b""} if self.keep_policies else {})}.items():
            with open(tmp / fname, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_json(self.root / "latest.json", {"name": name, "step": step})
        old = sorted(p for p in self.root.glob("step-*") if p.is_dir() and p.name != name)
        for p in old[: max(0, len(old) - (self.keep - 1))]:
            # stripped already (kept before the marker existed) or saved with keep_policies: keep its policy
            kept = (p / self.KEPT).exists() or ((p / "agent.msgpack").exists() and not (p / "buffer.npz").exists())
            if not (self.keep_policies or kept):
                shutil.rmtree(p, ignore_errors=True)
                continue
            for f in p.iterdir():
                if f.name not in ("agent.msgpack", "loop.json", self.KEPT):
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
        return final

    def steps(self) -> list[int]:
        """Env steps of every checkpoint on disk whose agent can be loaded, ascending."""
        return sorted(self.step_of(p) for p in self.root.glob("step-*")
                      if p.is_dir() and p.name[5:].isdigit() and (p / "agent.msgpack").exists())

    def at(self, step: int | None = None) -> Path:
        """The checkpoint saved at env step ``step`` (the newest one if None); a clear error if there is none."""
        if step is None:
            latest = self.latest()
            if latest is None:
                raise FileNotFoundError(f"{self.root.parent}: no checkpoint yet")
            return latest
        path = self.root / self.name(step)
        if not (path / "agent.msgpack").exists():
            have = ", ".join(str(s) for s in self.steps()) or "none"
            raise FileNotFoundError(f"{self.root.parent}: no checkpoint at step {step} (checkpoints on disk: {have}; "
                                    "train with keep_policies=True to keep every checkpoint's policy)")
        return path


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold RUN_DIR/.lock (an advisory ``flock``) while a run trains: a second process that would train the same
    directory at once (a grid or figure started twice) is refused instead of mixing its metrics and checkpoints
    into the first one's. The system releases the lock when the process ends, however it ends (SIGKILL too), so a
    killed run never stays locked. Creates RUN_DIR, and removes what it created if the run is refused before it
    writes anything (BC on demos without actions, say). Without ``fcntl`` (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    run_dir = Path(run_dir)
    made = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # the folders made here, innermost first
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RuntimeError(f"{run_dir} is being trained by {holder} right now: wait for it, or stop it "
                               f"(SIGTERM checkpoints it) before training this run again") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield  # (closing the file releases the lock, whatever leaves this block)
        except BaseException:
            if made and [p.name for p in run_dir.iterdir()] == [".lock"]:  # refused before it wrote anything
                (run_dir / ".lock").unlink()
                for p in made:  # leave nothing behind, as a run refused before the lock does
                    with contextlib.suppress(OSError):
                        p.rmdir()
            raise


class TrainingStopped(KeyboardInterrupt):
    """A training loop stopped on a signal after saving a checkpoint; resuming the run continues it exactly."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

    def __reduce__(self):  # pickles whole, e.g. back from a grid's worker process
        return type(self), (str(self), self.signum)


class StopSignals:
    """For a training loop (`install` ... `restore`, or a ``with`` block): while installed, the first SIGTERM or
    SIGINT only sets ``requested`` (the signal's number), so that the loop can finish its episode, checkpoint and
    raise `TrainingStopped`; a second one acts as it would have without this (SIGINT: KeyboardInterrupt at once;
    SIGTERM: the previous handler, by default the end of the process), for when waiting is not wanted. So a
    cluster's preemption notice costs no steps. A signal that is being ignored (SIGINT in a job started with ``&``)
    stays ignored; only the main thread can receive signals, so in any other thread this does nothing.

    Installed inside another one (a run in a grid's worker process, which keeps one installed between runs), the
    first signal is the request of both, so that the second acts at once whichever of them it reaches, and a
    request the outer one has (had before, or gets later: a grid's worker told to stop by its grid) is this one's
    too. With ``message=None`` the first signal is taken silently."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, message: str | None = "stopping at the end of this episode after a checkpoint"):
        self.message = message
        self._requested: int | None = None
        self._outer: StopSignals | None = None  # the one installed before this one, if any
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> int | None:
        """The number of the first stop signal (this one's, or else the outer one's); None before any."""
        if self._requested is None and self._outer is not None:
            return self._outer.requested
        return self._requested

    @requested.setter
    def requested(self, signum: int | None) -> None:
        self._requested = signum

    def _received(self) -> int | None:
        """The first stop signal this process took (by this handler or an outer one): the next one acts at once.
        Not `requested`, which may also hold a request made elsewhere (a grid's, `WorkerStop`)."""
        if self._requested is None and self._outer is not None:
            return self._outer._received()
        return self._requested

    def _handle(self, signum, frame) -> None:
        if self._received() is None:
            self._request(signum)
            if self.message is not None:  # (the process's own stderr: a grid's run has its sys.stderr in its log)
                print(f"\nsmiling: {signal.Signals(signum).name}: {self.message} (send it again to stop now, losing "
                      f"the steps since the last checkpoint)", file=sys.__stderr__ or sys.stderr, flush=True)
            return
        previous = self._previous.get(signum)
        self.restore()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL, or None: a handler not set from Python
            signal.raise_signal(signum)

    def _request(self, signum: int) -> None:
        """Record the request here and in the outer one."""
        self._requested = signum
        if self._outer is not None and self._outer._received() is None:
            self._outer._request(signum)

    def install(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                previous = signal.getsignal(s)
                if previous != signal.SIG_IGN:
                    outer = getattr(previous, "__self__", None)
                    if isinstance(outer, StopSignals):  # (known before a signal can reach this one's handler)
                        self._outer = outer
                    self._previous[s] = signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        """Give the signals back their handlers from before `install` (a request already made stays in
        ``requested``)."""
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    __enter__ = install

    def __exit__(self, *exc) -> None:
        self.restore()


def read_checkpoint_file(path: Path, parse: Callable[[bytes], Any]):
    """``parse(bytes of path)``, or an error that names the file and says what is wrong with it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing from its checkpoint (an incomplete or damaged checkpoint)") from None
    try:
        return parse(data)
    except MismatchError as e:
        raise MismatchError(f"{path}: does not fit the run's config.json ({e}): saved by a run of another task or "
                            f"other settings?") from e
    except Exception as e:  # noqa: BLE001 - whatever the parser raises on damaged bytes
        raise ValueError(f"{path}: damaged checkpoint file, or one written by another version "
                         f"({type(e).__name__}: {e})") from e


def check_checkpoint_task(ckpt: Path, task: str) -> None:
    """Refuse a checkpoint folder whose loop.json names another task than ``task`` (the run's config.json): a
    config.json copied from a run of another task whose sizes match loaded silently. Checkpoints written before
    loop.json named its task pass."""
    saved = read_checkpoint_file(Path(ckpt) / "loop.json", json.loads).get("task", task)
    if saved != task:
        raise MismatchError(f"{Path(ckpt) / 'loop.json'}: a checkpoint of {saved}, but the run's config.json says "
                            f"{task}")


def run_commits(saved: dict) -> list[str | None]:
    """The source commits a run's code came from (from its config.json ``saved``): the one it started at, then
    each other one it was resumed at (``resumed_at``); None where the run recorded none (written before runs
    recorded their commit)."""
    return [saved.get("commit")] + [r["commit"] for r in saved.get("resumed_at", [])]


def plot_title(saved: dict, fallback: str) -> str:
    """'<task>: <run label>, seed <seed>' from a run's config.json (the label `smiling.algos.registry.run_label`
    wrote there; older runs: the algorithm, and the backend unless SAC)."""
    cfg = saved.get("config", {})
    if "task" not in cfg:
        return fallback
    label = saved.get("label") or "+".join([saved.get("algo", "?")] + ([cfg["rl"]] if cfg.get("rl", "sac") != "sac"
                                                                        else []))
    return f"{cfg['task']}: {label}, seed {cfg.get('seed', '?')}"


def curve_axis(saved: dict, rows: list[dict]) -> str:
    """The column a run's curve is drawn against: config.json's ``x_axis``, or for older runs grad_steps when
    no env step was used for learning (behavioural cloning)."""
    if saved.get("x_axis"):
        return saved["x_axis"]
    if rows and rows[0].get("grad_steps") and all(r.get("step") in ("0", "") for r in rows):
        return "grad_steps"
    return "step"


def plot_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Plot train and eval return against env steps, with the demonstrator's and the random policy's returns as
    dashed lines when config.json carries them; writes curve.png in the run directory by default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    saved = read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {}
    if not isinstance(saved, dict) or not isinstance(saved.get("config", {}), dict):
        raise ValueError(f"{run_dir / 'config.json'}: not a run's config (a JSON object with a \"config\" object)")
    x = curve_axis(saved, rows)

    def numbers(row, *columns):  # (x, *columns) as floats; an empty column (no std yet) reads 0
        try:
            return (float(row[x]), *(float(row[c] or 0) for c in columns))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{run_dir / 'metrics.csv'}: row {row} holds no number in {x!r} or one of "
                             f"{list(columns)}") from None

    tr = [numbers(r, "train_return") for r in rows if r.get("train_return")]
    ev = [numbers(r, "eval_return", "eval_return_std") for r in rows if r.get("eval_return")]
    if not tr and not ev:  # (an empty figure would replace the last curve.png)
        raise ValueError(f"{run_dir / 'metrics.csv'}: no return to plot yet (no episode ended, no evaluation ran)")
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    if tr:
        ax.plot(*zip(*tr), color="0.6", lw=1, label="train episode return")
    if ev:
        s, m, sd = zip(*ev)
        cfg = saved.get("config", {})
        policy = "sampled actions" if cfg.get("eval_stochastic") else "mean action"
        episodes = f" over {cfg['eval_episodes']} episodes" if cfg.get("eval_episodes") else ""
        ax.plot(s, m, color="C0", marker="o", ms=3, label=f"eval return ({policy}; band: ± std{episodes})")
        ax.fill_between(s, [a - b for a, b in zip(m, sd)], [a + b for a, b in zip(m, sd)], color="C0", alpha=0.2)
    refs = saved.get("references")
    if refs:  # the demonstrator and the uniform random policy, from the demonstrations' metadata
        ax.axhline(refs["expert"], color="0.3", ls="--", lw=0.8, label=f"demonstrator ({refs['expert']:.0f})")
        ax.axhline(refs["random"], color="0.6", ls=":", lw=0.8, label=f"random policy ({refs['random']:.0f})")
    ax.set_xlabel("gradient steps" if x == "grad_steps" else "environment steps")
    ax.set_ylabel("return")
    ax.set_title(plot_title(saved, run_dir.name))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out) if out else run_dir / "curve.png"
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out
