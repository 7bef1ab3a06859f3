"""The `smiling` command-line tool. Run `smiling --help` or `smiling <command> --help`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys
import typing
from pathlib import Path

import tyro

from smiling.algos.plugins import PluginError

try:  # the registry loads the plug-ins SMILING_PLUGINS names: one that fails is a usage error, not a traceback
    from smiling.algos.registry import ALGORITHMS, BACKENDS, TrainConfig, load_config, train, variants_of
except PluginError as e:
    print(f"smiling: error: {e}", file=sys.stderr)
    sys.exit(2)
from smiling.algos.presets import apply_preset
from smiling.api import default_run_dir
from smiling.data import DemoError, describe, load_demos, save_npz
from smiling.diffusion import Schedule, ScoreConfig, estimate_ds_divergence
from smiling.envs import NoGLBackendError, UnknownTaskError, list_tasks, module_tasks
from smiling.evaluation import demos_from_run, evaluate_run
from smiling.experiments.grid import apply_overrides, parse_demos, parse_overrides, parse_seeds, run_grid, split_list
from smiling.experiments.figures import make_figure
from smiling.experiments.report import collect, is_experiment, plot_experiment, summary_table
from smiling.runs import TrainingStopped, plot_run
from smiling.utils.cache import enable_compilation_cache
from smiling.utils.config import field_types


@dataclasses.dataclass
class Tasks:
    """List the task ids: the dm_control and humanoid tasks, and every registered Gymnasium id (those with
    continuous (Box) actions run; the others are refused by name when built)."""

    prefix: str | None = None
    """Only ids starting with this (e.g. dmc or gym)."""
    module: str | None = None
    """Import this module of your own first and list the ids it registers, in the form a task takes
    (gym:<module>:<id>)."""


@dataclasses.dataclass(frozen=True)
class RunFlags:
    out: str | None = None
    """Run directory (default runs/<task>-<run label>-s<seed>-<time>, e.g. runs/dmc-cheetah-run-smiling-s0-...)."""
    resume: str | None = None
    """Continue the run in this directory from its newest checkpoint (its saved config is used)."""
    extend_to: int | None = None
    """With --resume: train on to this many env steps in total (config.json is updated)."""
    quiet: bool = False
    """No progress bar."""


def _suppressed(name: str):
    """A field of TrainConfig hidden from a command's flags (its default stays)."""
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    typ = field_types(TrainConfig)[name]
    if field.default_factory is not dataclasses.MISSING:
        return name, tyro.conf.Suppress[typ], dataclasses.field(default_factory=field.default_factory)
    return name, tyro.conf.Suppress[typ], field.default


_IMITATION_ONLY = ("algo", "demos", "reward_update_every", "relabel")
TrainExpert = dataclasses.make_dataclass(
    "TrainExpert",
    [_suppressed(n) for n in _IMITATION_ONLY] + [_suppressed(a.name) for a in ALGORITHMS.values() if a.config],
    bases=(RunFlags, TrainConfig), frozen=True)
TrainExpert.__module__, TrainExpert.__qualname__ = __name__, "TrainExpert"
TrainExpert.__doc__ = ("Train an RL agent (" + " or ".join(f"{b.name}: {b.summary}" for b in BACKENDS.values())
                       + ", with --rl) on a task's true reward (an expert for demonstrations).")

_ALGO_HELP = "Imitation algorithm: " + "; ".join(f"{a.name}: {a.summary}" for a in ALGORITHMS.values()
                                                 if a.imitation) + "."


@dataclasses.dataclass(frozen=True)
class Imitate(RunFlags, TrainConfig):
    """Imitate demonstrations with an RL agent (SAC, or DreamerV3 with --rl dreamer) on an imitation reward
    (SMILING: paper Algorithm 1, cost Eq. 4).

    The env's true return is logged for evaluation only; it is never used for learning.
    """

    algo: typing.Annotated[str, tyro.conf.arg(help=_ALGO_HELP)] = "smiling"
    use_actions: bool = False
    """Match (state, action) pairs instead of states (paper §6.2); needs demos with actions."""
    linear: bool = False
    """Score networks (with --algo dac: the discriminator) without activations (paper Fig. 5 ablation)."""
    num_noise_samples: int | None = None
    """K noise levels per state in the cost (default: --smiling.num-levels)."""
    schedule: str | None = None
    """Noise schedule kind: ddpm, cosine or ou (default: --smiling.score.schedule.kind); its other settings stay."""
    preset: tuple[str, ...] = ()
    """Presets whose values become the defaults that the other flags then override: paper (SMILING's reward side
    as the authors' code: raw states, DDPM T=5000, K=500 even levels, cost of s, per-batch z-score, FIFO
    learner memory; add --relabel update on a CPU), paper-sac (their SAC: 2x1024, batch 1024, lr 1e-4).
    README, "Paper preset", lists every field."""


@dataclasses.dataclass
class Evaluate:
    """Evaluate a run's newest checkpoint (or the one at --checkpoint) with the mean action (or --stochastic)."""

    run_dir: tyro.conf.Positional[str]
    episodes: int = 10
    seed: int = 0
    checkpoint: int | None = None
    """Env step of the checkpoint to evaluate (default: the newest); older ones exist with --keep-policies."""
    video: str | None = None
    """Write the first episode to this file (.mp4 or .gif); needs a MuJoCo GL backend (EGL or OSMesa)."""
    json: bool = False
    """Print one JSON object instead of text."""
    stochastic: bool = False
    """Sample actions from the policy (Dreamer: latents too, as DreamerV3 evaluates) instead of the mean action."""


@dataclasses.dataclass
class Demos:
    """Roll out a trained expert and save demonstrations (.npz), with the random-policy return."""

    expert: str
    """Run directory of the expert (from `smiling train-expert`)."""
    out: str
    """Output .npz file."""
    episodes: int = 5
    stochastic: bool = False
    """Sample actions from the policy instead of using its mean action."""
    seed: int = 0
    random_episodes: int = 10
    """Episodes of a uniform random policy, measured for normalization."""
    checkpoint: int | None = None
    """Env step of the expert's checkpoint to roll out (default: the newest)."""
    force: bool = False
    """Overwrite --out if it exists."""


@dataclasses.dataclass
class DemosInfo:
    """Summarize a demonstrations file (`smiling demos info FILE`)."""

    file: tyro.conf.Positional[str]
    """.npz file, Minari dataset directory, D4RL .hdf5 file, or a task id with bundled demos."""


@dataclasses.dataclass
class Divergence:
    """Estimate the DS divergence of a learner's states from an expert's (paper Eq. 2, noise-prediction units).

    Fits a score model to each state set (standardized with the expert's statistics) and averages
    ||g_expert - eps||^2 - ||g_learner - eps||^2 over held-out learner states; 0 means indistinguishable.
    """

    expert: str
    """Expert demonstrations: .npz, Minari dir, D4RL .hdf5, or a task id with bundled demos."""
    learner: str
    """Learner states, in any of the same forms."""
    steps: int = 5000
    """Score-matching steps for each model."""
    num_levels: int = 64
    """Noise levels per state (stratified)."""
    schedule: str = "cosine"
    """Noise schedule: ddpm, cosine or ou."""
    seed: int = 0
    json: bool = False
    """Print one JSON object."""


@dataclasses.dataclass
class Plot:
    """Plot learning curves. A run directory: its curve to RUN_DIR/curve.png. An experiment directory (or any
    directory holding runs): one panel per task, one colour per algorithm, mean ± standard error over seeds,
    to DIR/curves.png and DIR/curves.svg, and the summary table."""

    run_dir: tyro.conf.Positional[str]
    out: str | None = None
    """Output file (a run: .png; runs: the stem of the .png and .svg)."""
    metric: str = "normalized"
    """normalized ((R - random)/(expert - random), from the demos' metadata) or raw return."""
    algos: str | None = None
    """Only these algorithm labels, comma-separated (e.g. smiling,smiling+actions for the paper's Fig. 4)."""
    tasks: str | None = None
    """Only these task ids, comma-separated."""
    until: int | None = None
    """Only the evaluations up to this env step (runs compared at a shorter budget than they ran: final is then
    the last evaluation at or before it, AUC the average over 0..it)."""


_ALGOS_HELP = (
    "Algorithms, comma-separated: " + ", ".join(ALGORITHMS) + "; each with optional variants joined by + ("
    + "; ".join(f"{a.name}: {', '.join(v.name for v in a.variants)}" for a in ALGORITHMS.values() if a.variants)
    + "; " + "; ".join(f"on {b.name}: {', '.join(v.name for v in b.variants)}" for b in BACKENDS.values() if b.variants)
    + "; the backend: " + ", ".join(f"{b} (" + ", ".join(a.name for a in ALGORITHMS.values() if b in a.backends) + ")"
                                    for b in BACKENDS if b != "sac")
    + "), e.g. smiling+actions. README, 'Experiments', says what each does.")


@dataclasses.dataclass(frozen=True)
class Where:
    """Where the runs train: worker processes on this machine, or tasks on a Ray cluster."""

    executor: str = "local"
    """local (worker processes on this machine) or ray (tasks on a Ray cluster; pip install -e '.[ray]' in smiling's
    checkout)."""
    workers: int | None = None
    """local: runs at once (default: the CPUs this process may use)."""
    address: str | None = None
    """ray: cluster address (default: start a local Ray instance); every node must be able to write the runs."""
    cpus_per_run: float = 1.0
    """ray: CPUs reserved per run."""
    gpus_per_run: float = 0.0
    """ray: GPUs reserved per run (a fraction shares one, e.g. 0.25: four runs per GPU); with 0 the runs see no
    GPU (Ray hides the GPUs from tasks that reserve none)."""


@dataclasses.dataclass
class Experiment:
    """Run a grid of tasks x algorithms x seeds (each cell a run directory DIR/<task>/<algo>/s<seed>), then
    print the summary table and plot the curves. Rerun the same command to resume an interrupted grid:
    finished runs are skipped, unfinished ones resume from their newest checkpoint."""

    tasks: str
    """Task ids, comma-separated (e.g. dmc:ball_in_cup-catch,dmc:cheetah-run)."""
    algos: typing.Annotated[str, tyro.conf.arg(help=_ALGOS_HELP)]
    out: str
    """Experiment directory."""
    seeds: str = "0-2"
    """Seeds: a range 0-4 or a list 0,2,5."""
    steps: int = 100_000
    """Env steps per run."""
    set: tuple[str, ...] = ()
    """Config overrides KEY=VALUE for every run, dotted for groups (e.g. --set eval_every=5000
    smiling.num_levels=16); `smiling imitate --help` lists the keys."""
    demos: tuple[str, ...] = ()
    """Demonstrations per task, TASK=FILE (.npz, Minari dir, D4RL .hdf5); default: each task's bundled demos."""
    where: typing.Annotated[Where, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=Where)
    quiet: bool = False


@dataclasses.dataclass
class Figure:
    """Run the paper's Figure 3, 4 or 5 (resumable: finished runs are skipped) and draw it in the paper's layout
    with its summary table. Budgets: cpu (tasks with bundled demos, 100k-200k env steps, seeds 2-4) or paper
    (the paper's tasks, 0.4M/3M env steps, seeds 0-4; tasks without demos need --demos and are listed as not
    runnable without them). All figures of a budget share one directory of runs."""

    number: tyro.conf.Positional[int]
    """3 (state-only demos), 4 (state-action demos) or 5 (linear networks, cheetah-run)."""
    budget: str = "cpu"
    """cpu or paper."""
    out: str | None = None
    """Directory of runs and figures (default runs/figures/<budget>)."""
    demos: tuple[str, ...] = ()
    """Demonstrations per task, TASK=FILE (default: each task's bundled demos)."""
    dry_run: bool = False
    """Print the figure's runs, what cannot run here and how far the runs in --out have come; train and draw
    nothing."""
    draw_only: bool = False
    """Train nothing: draw the figure from the runs there are so far (figure<N>.md lists the unfinished and the
    not started ones), e.g. to look at a figure whose runs are still going."""
    steps: int | None = None
    """Env steps per run for every panel instead of the budget's (a try or a test: no longer the paper's)."""
    seeds: str | None = None
    """Seeds instead of the budget's (e.g. 0 or 0-1)."""
    tasks: str | None = None
    """Only these panels' task ids, comma-separated."""
    algos: str | None = None
    """Only these curves' labels, comma-separated (e.g. smiling,dac)."""
    set: tuple[str, ...] = ()
    """Config overrides KEY=VALUE for every run, after the budget's (as smiling experiment --set)."""
    where: typing.Annotated[Where, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=Where)
    quiet: bool = False


@dataclasses.dataclass
class Demo:
    """A short SMILING run on bundled state-only demonstrations, with progress and a learning-curve plot."""

    out: str = "runs/demo"
    steps: int = 30_000
    seed: int = 0
    task: str = "dmc:ball_in_cup-catch"
    quiet: bool = False


def cmd_tasks(a: Tasks) -> None:
    tasks = module_tasks(a.module) if a.module is not None else list_tasks()
    for t in tasks:
        if a.prefix is None or t.startswith(a.prefix):
            print(t)


def _variant_flag(cfg: TrainConfig, flag: str, name: str) -> TrainConfig:
    """``cfg`` with its algorithm's variant ``name`` (the --use-actions and --linear shortcuts)."""
    offered = {v.name: v for v in variants_of(cfg)}
    if name not in offered:
        takers = [a.name for a in ALGORITHMS.values() if name in {v.name for v in a.variants}]
        raise ValueError(f"{flag} applies to {', '.join(takers)}, not {cfg.algo}")
    return offered[name].apply(cfg)


def _config_of(a) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: getattr(a, k) for k in fields})
    if isinstance(a, Imitate):
        if a.use_actions:
            cfg = _variant_flag(cfg, "--use-actions", "actions")
        if a.linear:
            cfg = _variant_flag(cfg, "--linear", "linear")
        # shortcuts for one field each: --schedule sets the kind alone (its T and betas, e.g. the paper preset's, stay)
        shortcuts = {"smiling.score.schedule.kind": a.schedule, "smiling.num_levels": a.num_noise_samples}
        cfg = apply_overrides(cfg, {key: str(v) for key, v in shortcuts.items() if v is not None})
    return cfg


def _run(a) -> None:
    if a.extend_to is not None and not a.resume:
        raise ValueError("--extend-to needs --resume RUN_DIR")
    if a.resume:
        cfg = load_config(a.resume)
        if a.extend_to is not None:
            if a.extend_to < 1:
                raise ValueError(f"--extend-to must be >= 1 (the run's total budget in env steps), got {a.extend_to}")
            cfg = dataclasses.replace(cfg, steps=a.extend_to)
        out = a.resume
        print(f"resuming {out} with its saved config ({cfg.algo} on {cfg.task}, {cfg.steps} steps, "
              f"seed {cfg.seed})", file=sys.stderr)
    else:
        cfg = _config_of(a)
        out = a.out or default_run_dir(cfg)
    summary = train(cfg, out, resume=bool(a.resume), quiet=a.quiet)
    print(json.dumps(summary))


def cmd_train_expert(a: TrainExpert) -> None:
    _run(a)


def cmd_imitate(a: Imitate) -> None:
    if not ALGORITHMS[a.algo].imitation:
        raise ValueError(f"--algo {a.algo} learns from the true reward: use `smiling train-expert`")
    _run(a)


def cmd_evaluate(a: Evaluate) -> None:
    res = evaluate_run(a.run_dir, a.episodes, a.seed, a.video, step=a.checkpoint, stochastic=a.stochastic)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{res['task']}: return {res['return_mean']:.1f} +- {res['return_std']:.1f} "
              f"over {res['episodes']} episodes ({'sampled actions' if a.stochastic else 'mean action'}), "
              f"checkpoint at step {res['checkpoint_step']}")
        if a.video:
            print(f"video: {res['video']}")


def cmd_demos(a: Demos) -> None:
    if Path(a.out).suffix != ".npz":
        raise ValueError(f"--out {a.out}: demonstrations are written as .npz")
    if Path(a.out).exists() and not a.force:
        raise FileExistsError(f"--out {a.out} exists: pass --force to overwrite it")
    demos = demos_from_run(a.expert, a.episodes, a.stochastic, a.seed, a.random_episodes, step=a.checkpoint)
    save_npz(demos, a.out)
    print(describe(demos))
    print(f"saved {a.out}")


def cmd_demos_info(a: DemosInfo) -> None:
    print(describe(load_demos(a.file)))


def cmd_divergence(a: Divergence) -> None:
    expert, learner = load_demos(a.expert), load_demos(a.learner)
    res = estimate_ds_divergence(expert.states(), learner.states(), ScoreConfig(schedule=Schedule(a.schedule)),
                                 steps=a.steps, num_levels=a.num_levels, seed=a.seed)
    res.update(expert=a.expert, learner=a.learner)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"DS divergence of {a.learner} from {a.expert}: {res['ds_divergence']:.4f} +- {res['stderr']:.4f} "
              f"(standard error over {res['learner_eval_states']} held-out learner states)")


def cmd_plot(a: Plot) -> None:
    if not Path(a.run_dir).exists():
        raise FileNotFoundError(f"{a.run_dir}: no such run or experiment directory")
    if not Path(a.run_dir).is_dir():
        raise FileNotFoundError(f"{a.run_dir}: a file; give the run (or experiment) directory that holds it")
    if not is_experiment(a.run_dir):
        print(plot_run(a.run_dir, a.out))
        return
    algos = split_list(a.algos, "algorithms") if a.algos else None
    tasks = split_list(a.tasks, "tasks") if a.tasks else None
    groups = collect(a.run_dir, a.metric, algos, tasks, a.until)
    print(summary_table(groups, a.metric))
    for path in plot_experiment(groups, a.out or Path(a.run_dir) / "curves", a.metric):
        print(path)


def cmd_experiment(a: Experiment) -> None:
    tasks, algos = split_list(a.tasks, "tasks"), split_list(a.algos, "algorithms")
    results = run_grid(a.out, tasks, algos, parse_seeds(a.seeds), a.steps, parse_overrides(a.set),
                       parse_demos(a.demos), quiet=a.quiet, **dataclasses.asdict(a.where))
    algos = list(dict.fromkeys(r["label"] for r in results))  # with variants --set adds
    counts = {k: sum(r["state"] == k for r in results) for k in ("trained", "resumed", "skipped")}
    print(f"runs: {counts['trained']} trained, {counts['resumed']} resumed, {counts['skipped']} already finished")
    try:  # (to this grid's budget: runs of a larger one in the same --out are cut to it)
        groups = collect(a.out, "normalized", algos, tasks, until=a.steps)
        metric = "normalized"
    except ValueError:
        groups, metric = collect(a.out, "raw", algos, tasks, until=a.steps), "raw"
    print(summary_table(groups, metric))
    for path in plot_experiment(groups, Path(a.out) / "curves", metric):
        print(path)


def cmd_figure(a: Figure) -> None:
    result = make_figure(a.number, a.budget, a.out, parse_demos(a.demos), a.steps,
                         parse_seeds(a.seeds) if a.seeds is not None else None,
                         split_list(a.tasks, "tasks") if a.tasks is not None else None,
                         parse_overrides(a.set), quiet=a.quiet, dry_run=a.dry_run,
                         algos=split_list(a.algos, "algorithms") if a.algos is not None else None,
                         train=not a.draw_only,
                         **dataclasses.asdict(a.where))
    if a.dry_run:
        return
    counts = {k: sum(r["state"] == k for r in result["results"]) for k in ("trained", "resumed", "skipped")}
    if a.draw_only:
        print("--draw-only: nothing trained (figure<N>.md lists the unfinished and not started runs)")
    else:
        print(f"runs: {counts['trained']} trained, {counts['resumed']} resumed, {counts['skipped']} already finished")
    print(result["table"])
    for path in result["paths"]:
        print(path)


def cmd_demo(a: Demo) -> None:
    out = Path(a.out)
    resume = (out / "config.json").exists()
    if resume and load_config(out).steps != a.steps:
        raise ValueError(f"{out} holds a demo run with another step count: remove it or pass --out")
    cfg = TrainConfig(task=a.task, steps=a.steps, seed=a.seed, eval_every=5000, eval_episodes=5,
                      checkpoint_every=5000, algo="smiling")
    meta = load_demos(a.task).metadata
    print(f"demo: SMILING on {a.task} for {a.steps} env steps, imitating the bundled state-only demos "
          f"(expert return {meta['expert_return_mean']:.0f}, random policy {meta['random_return_mean']:.0f}); "
          f"the true return is only reported, never learned from", file=sys.stderr)
    try:
        summary = train(cfg, out, resume=resume, quiet=a.quiet)
    except TrainingStopped as e:  # the demo resumes by itself: say so instead of --resume
        raise TrainingStopped(f"demo stopped by {signal.Signals(e.signum).name} at a checkpoint or before training, "
                              f"losing nothing: run the same command (make demo) again to continue", e.signum) from None
    png = plot_run(out)
    final = summary["final_eval_return"]
    norm = (final - meta["random_return_mean"]) / (meta["expert_return_mean"] - meta["random_return_mean"])
    print(f"final eval return {final:.1f} (normalized {norm:.2f}: random 0, expert 1); learning curve: {png}")


COMMANDS = {
    "tasks": (Tasks, cmd_tasks),
    "train-expert": (TrainExpert, cmd_train_expert),
    "imitate": (Imitate, cmd_imitate),
    "evaluate": (Evaluate, cmd_evaluate),
    "demos": (Demos, cmd_demos),
    "demos-info": (DemosInfo, cmd_demos_info),
    "divergence": (Divergence, cmd_divergence),
    "plot": (Plot, cmd_plot),
    "experiment": (Experiment, cmd_experiment),
    "figure": (Figure, cmd_figure),
    "demo": (Demo, cmd_demo),
}


def _preset_names(args: list[str]) -> list[str]:
    """The values of --preset in a command line (``--preset a b``, ``--preset a,b`` or ``--preset=a``)."""
    names: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--preset":
            for value in args[i + 1:]:
                if value.startswith("-"):
                    break
                names += value.split(",")
        elif arg.startswith("--preset="):
            names += arg.split("=", 1)[1].split(",")
    return [n for n in names if n]


def _with_presets(cls, names: list[str]):
    """An instance of command class ``cls`` whose defaults carry the presets (explicit flags override them)."""
    cmd = cls()
    for name in names:
        cmd = apply_preset(cmd, name)
    return dataclasses.replace(cmd, preset=tuple(names))


class InputError(ValueError):
    """A setting the command line gave that a config refused on construction (e.g. an unknown task id)."""


def _one_line_errors():
    """While tyro parses: a config that refuses its values (its ``__post_init__`` raised ValueError) becomes an
    `InputError` that `main` prints as one line, instead of tyro's boxed usage error. Uses tyro's parse-error
    hook where this tyro has it (else tyro's box stays)."""
    errors = getattr(tyro, "_errors", None)
    hook, failure = getattr(errors, "on_parse_error", None), getattr(errors, "InstantiationFailure", None)
    if hook is None or failure is None:
        return contextlib.nullcontext()

    def handle(event) -> None:
        if isinstance(event, failure):  # named by its flag where tyro knows it ("--steps: invalid literal ...")
            flag = getattr(event.argument, "display_name", None)
            raise InputError(f"{flag()}: {event.message}" if callable(flag) else event.message)

    return hook(handle)


def parse_args(argv: list[str]):
    """The command object for a command line (``smiling imitate --preset ...`` puts the presets' values in the
    defaults, so flags given next to it override them)."""
    if argv[:2] == ["demos", "info"]:  # `smiling demos info FILE` is the demos-info command
        argv = ["demos-info", *argv[2:]]
    presets = _preset_names(argv[1:]) if argv[:1] == ["imitate"] else []
    with _one_line_errors():
        if presets:
            return tyro.cli(Imitate, args=argv[1:], prog="smiling imitate", default=_with_presets(Imitate, presets))
        return tyro.extras.subcommand_cli_from_dict(
            {name: cls for name, (cls, _) in COMMANDS.items()},
            args=argv, prog="smiling", description="Imitation learning from state-only demonstrations (SMILING).")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except ValueError as e:  # an unknown preset, or a setting a config refused
        print(f"smiling: error: {e}", file=sys.stderr)
        return 2
    handler = next(fn for cls, fn in COMMANDS.values() if type(args) is cls)
    enable_compilation_cache()
    try:
        handler(args)
    except (DemoError, UnknownTaskError, FileNotFoundError, FileExistsError, ValueError, NoGLBackendError,
            FloatingPointError, RuntimeError, ImportError) as e:
        print(f"smiling: error: {e}", file=sys.stderr)
        return 2
    except TrainingStopped as e:  # SIGTERM or Ctrl-C during training: checkpointed (own loops: at an evaluation)
        print(f"smiling: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("smiling: interrupted (continue with --resume RUN_DIR for imitate and train-expert; rerun the same "
              "command for experiment and figure, which keep finished runs)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
