"""The registry: every algorithm and RL backend, and what the library builds from them.

`ALGORITHMS` and `BACKENDS` are the only lists of names. From them come the full `TrainConfig` (the shared
`RunConfig` plus one settings group per backend and per algorithm), the agent of a run (`make_agent`), the
dispatch to a loop (`train`), the grid's labels (`apply_label`) and the one name of a run (`run_label`) used for
folders, legends and titles. The CLI, `smiling experiment` and the plots read these, never their own lists.

Adding an algorithm: write its module (its frozen config; a reward model, an agent or its own loop) with an
`Algorithm` record, and add the record to `ALGORITHMS`, or keep the module outside the library and name it in
``SMILING_PLUGINS`` (`smiling.algos.plugins`, added here before `TrainConfig` is built; docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import sys
import time
import warnings
from pathlib import Path

from smiling._version import __version__
from smiling.algos import offpolicy, plugins
from smiling.algos.base import (RESUMABLE_CHANGES, Algorithm, Backend, RunConfig, Variant, actions_variant,
                               replace_in)
from smiling.algos.bc import ALGORITHM as BC
from smiling.algos.bco import ALGORITHM as BCO
from smiling.algos.iqlearn import ALGORITHM as IQLEARN
from smiling.algos.presets import apply_preset, matches
from smiling.data import DemoError, load_demos
from smiling.envs import make_env
from smiling.rewards import DacConfig, DacReward, SmilingConfig, SmilingReward
from smiling.rewards.smiling import NORMALIZATIONS
from smiling.rl import SAC, SACConfig
from smiling.rl.dreamer import Dreamer, DreamerConfig
from smiling.runs import StopSignals, TrainingStopped, run_lock
from smiling.utils.config import field_types, from_dict, to_dict
from smiling.utils.io import read_json
from smiling.utils.provenance import source_commit, usable_cpus


def _paper(cfg) -> bool:
    return matches(cfg, "paper")


def _smiling_variants() -> tuple[Variant, ...]:
    def linear(c):
        return replace_in(c, "smiling", score=dataclasses.replace(c.smiling.score, linear=True))

    default = SmilingConfig().normalization
    norms = tuple(Variant(n, lambda c, n=n: replace_in(c, "smiling", normalization=n),
                          lambda c, n=n: c.smiling.normalization == n != default and not _paper(c),
                          group="normalization")
                  for n in NORMALIZATIONS)
    return (actions_variant("smiling"), Variant("linear", linear, lambda c: c.smiling.score.linear), *norms,
            Variant("uncapped", lambda c: replace_in(c, "smiling", cap_errors=False),
                    lambda c: not c.smiling.cap_errors and not _paper(c)),
            Variant("paper", lambda c: apply_preset(c, "paper"), _paper, preset=True))


def _smiling_details(cfg) -> str:
    sm = cfg.smiling
    sched = sm.score.schedule
    text = f"K={sm.num_levels}, {sched.kind}" + (f" T={sched.steps}" if sched.steps != 1000 else "")
    switches = ((sm.normalization, True), ("actions", sm.use_actions), ("linear", sm.score.linear),
                ("raw states", not sm.standardize), ("even levels", sm.levels == "even"),
                ("scores s", sm.score_state == "current"), (f"fifo {sm.memory // 1000}k", sm.memory_kind == "fifo"),
                ("capped errors", sm.cap_errors))
    return text + "".join(f", {name}" for name, on in switches if on)


SAC_ALGO = Algorithm(
    "sac", "learn from the env's true reward (an expert for demonstrations; `smiling train-expert`)",
    imitation=False, backends=("sac", "dreamer"))

SMILING = Algorithm(
    "smiling", "SMILING (paper Algorithm 1): SAC on minus the diffusion score-matching cost of Eq. 4; --smiling.*",
    config=SmilingConfig, backends=("sac", "dreamer"), variants=_smiling_variants(), describe=_smiling_details,
    reward_model=lambda cfg, demos: SmilingReward.from_demos(demos, cfg.smiling, seed=cfg.seed))

DAC = Algorithm(
    "dac", "discriminator-actor-critic: SAC on a discriminator's reward (the adversarial baseline); --dac.*",
    config=DacConfig, backends=("sac", "dreamer"),
    variants=(actions_variant("dac"),
              Variant("linear", lambda c: replace_in(c, "dac", linear=True), lambda c: c.dac.linear)),
    reward_model=lambda cfg, demos: DacReward.from_demos(demos, cfg.dac, seed=cfg.seed))

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (SAC_ALGO, SMILING, DAC, IQLEARN, BC, BCO)}
"""Every algorithm, by name (the order of --help and of the settings groups)."""

def _dreamer_check(cfg) -> None:
    if cfg.relabel != "sample":
        raise ValueError("--rl dreamer relabels each sampled sequence; use relabel=sample")
    if cfg.seed_steps < cfg.dreamer.seq_len:
        raise ValueError(f"seed_steps ({cfg.seed_steps}) must be >= dreamer.seq_len ({cfg.dreamer.seq_len})")


BACKENDS: dict[str, Backend] = {
    "sac": Backend("sac", "soft actor-critic (model-free)", SACConfig, lambda cfg, o, a: SAC(o, a, cfg.sac),
                   variants=(Variant("paper-sac", lambda c: apply_preset(c, "paper-sac"),
                                     lambda c: matches(c, "paper-sac"), preset=True),)),
    "dreamer": Backend("dreamer", "DreamerV3 (model-based)", DreamerConfig,
                       lambda cfg, o, a: Dreamer(o, a, cfg.dreamer), check=_dreamer_check),
}
"""Every RL backend (``--rl``), by name; the first is the default."""

ALGORITHMS, BACKENDS = plugins.register(ALGORITHMS, BACKENDS)  # and those of modules outside the library


def _validate(cfg) -> None:
    """Checks across settings groups (each group and `RunConfig` check themselves on construction)."""
    algo = ALGORITHMS[cfg.algo]
    if cfg.rl not in (algo.backends or ("sac",)):
        runs = [a.name for a in ALGORITHMS.values() if cfg.rl in a.backends]
        raise ValueError(f"--rl {cfg.rl} runs {', '.join(runs)}; {cfg.algo} runs on "
                         f"{', '.join(algo.backends) if algo.backends else 'no RL backend'}")
    backend = BACKENDS[cfg.rl]
    if backend.check is not None:
        backend.check(cfg)
    if algo.reward_model is not None and cfg.buffer_capacity < cfg.reward_update_every:
        raise ValueError(f"buffer_capacity ({cfg.buffer_capacity}) must be >= reward_update_every "
                         f"({cfg.reward_update_every}): each reward-model update reads the newest transitions")
    if algo.check is not None:
        algo.check(cfg)


def _check_names(cfg) -> None:
    RunConfig.__post_init__(cfg)
    if cfg.algo not in ALGORITHMS:
        hint = _PLUGIN_HINT if "+" not in cfg.algo else " (variants are labels of smiling experiment)"
        raise ValueError(f"unknown algo {cfg.algo!r}; choose one of {', '.join(ALGORITHMS)}{hint}")
    if cfg.rl not in BACKENDS:
        raise ValueError(f"unknown rl backend {cfg.rl!r}; choose one of {', '.join(BACKENDS)}{_PLUGIN_HINT}")


_PLUGIN_HINT = f" (one of a plug-in? name its module in {plugins.ENV_VAR}: docs/extending.md)"


def _group(name: str, typ: type):
    return name, typ, dataclasses.field(default_factory=typ)


TrainConfig = dataclasses.make_dataclass(
    "TrainConfig",
    [_group(b.name, b.config) for b in BACKENDS.values()] + [_group(a.name, a.config) for a in ALGORITHMS.values()
                                                             if a.config is not None],
    bases=(RunConfig,), frozen=True, namespace={"__post_init__": _check_names, "validate": _validate})
TrainConfig.__module__, TrainConfig.__qualname__ = __name__, "TrainConfig"
TrainConfig.__doc__ = ("Configuration of a training run: `RunConfig`, plus one settings group per RL backend and per "
                       "algorithm (`BACKENDS`, `ALGORITHMS`). Frozen; validates itself on construction, and across "
                       "groups with ``validate()``.")


def config_to_dict(cfg) -> dict:
    return to_dict(cfg)


def config_from_dict(d: dict):
    """A TrainConfig from its JSON form; missing keys take today's defaults, except settings whose default
    changed since a run was written (so an old run resumes and is labelled as it ran)."""
    if not isinstance(d, dict):
        raise ValueError(f"config: expected an object, got {type(d).__name__}")
    d = dict(d)
    for key, known in (("algo", ALGORITHMS), ("rl", BACKENDS)):
        if isinstance(d.get(key), str) and d[key] not in known:  # (else its settings group was the unknown field)
            raise ValueError(f"{key} {d[key]!r} is not registered here; choose one of {', '.join(known)}"
                             f"{_PLUGIN_HINT}")
    fields = field_types(TrainConfig)
    for key in [k for k, v in d.items() if k not in fields and isinstance(v, dict)]:
        del d[key]  # the settings group of a plug-in not found here, saved by a run of another algorithm
    if isinstance(d.get("smiling"), dict) and "normalization" not in d["smiling"]:
        d["smiling"] = {**d["smiling"], "normalization": "moments"}   # written before the option existed
    if isinstance(d.get("smiling"), dict) and "cap_errors" not in d["smiling"]:
        d["smiling"] = {**d["smiling"], "cap_errors": False}          # likewise
    return from_dict(TrainConfig, d)


def load_config(run_dir: str | Path):
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no config.json, not a run directory")
    saved = read_json(path)
    if not isinstance(saved, dict) or "config" not in saved:
        raise ValueError(f"{path}: no \"config\" object in it (not a run's config.json)")
    try:
        return config_from_dict(saved["config"])
    except ValueError as e:  # a field of the wrong type, or a value its config refuses
        raise ValueError(f"{path}: {e}") from None


def make_agent(cfg, obs_dim: int, act_dim: int, demos=None):
    """The RL agent of a run: the algorithm's own (IQ-Learn's critic), or its backend's (SAC, DreamerV3).
    ``demos`` only matter to training (IQ-Learn samples expert batches); loading a policy needs none."""
    algo = ALGORITHMS[cfg.algo]
    if algo.agent is not None:
        return algo.agent(cfg, obs_dim, act_dim, demos)
    return BACKENDS[cfg.rl].agent(cfg, obs_dim, act_dim)


def make_reward_model(cfg, demos=None):
    """The reward model of an imitation run (None if its algorithm has none), fitted on ``demos`` (default: the
    run's demonstrations)."""
    algo = ALGORITHMS[cfg.algo]
    if algo.reward_model is None:
        return None
    return algo.reward_model(cfg, demos if demos is not None else load_demos(cfg.demos or cfg.task, task=cfg.task))


# --- names of runs -----------------------------------------------------------------------------------------------

def variants_of(cfg) -> tuple[Variant, ...]:
    """The variants a config's algorithm takes on its backend, in label order."""
    algo = ALGORITHMS[cfg.algo]
    own = BACKENDS[cfg.rl].variants if cfg.rl in algo.backends else ()
    return algo.variants + own


def all_variants() -> list[str]:
    """Every variant name a label may carry (variants of algorithms and backends, and the backends)."""
    names = [v.name for a in ALGORITHMS.values() for v in a.variants]
    names += [v.name for b in BACKENDS.values() for v in b.variants] + [b for b in BACKENDS if b != "sac"]
    return list(dict.fromkeys(names))


def label_presets(label: str) -> list[str]:
    """The presets a label names, in order ('smiling+paper+paper-sac' -> ['paper', 'paper-sac'])."""
    presets = {v.name for a in ALGORITHMS.values() for v in a.variants if v.preset}
    presets |= {v.name for b in BACKENDS.values() for v in b.variants if v.preset}
    return [v for v in label.split("+")[1:] if v in presets]


def apply_label(cfg, label: str):
    """``cfg`` with a label's algorithm, backend and variants ('smiling+actions', 'dac+linear+dreamer'). Preset
    variants are only checked here: the grid applies them first, so that ``--set`` overrides them."""
    name, *names = label.split("+")
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm {name!r} in {label!r}: choose from {', '.join(ALGORITHMS)}")
    algo = ALGORITHMS[name]
    known = all_variants()
    unknown = [v for v in names if v not in known]
    if unknown:
        raise ValueError(f"{label!r}: unknown variant {unknown[0]!r}; variants: {', '.join(known)}")
    twice = [v for v in names if names.count(v) > 1]
    if twice:
        raise ValueError(f"{label!r}: variant {twice[0]!r} given twice")
    cfg = dataclasses.replace(cfg, algo=name)
    for v in names:
        if v in BACKENDS:
            if v not in algo.backends:
                runs = [a.name for a in ALGORITHMS.values() if v in a.backends]
                raise ValueError(f"{label!r}: the {v} backend runs {', '.join(runs)}")
            cfg = dataclasses.replace(cfg, rl=v)
    offered = {v.name: v for v in variants_of(cfg)}
    groups: dict[str, str] = {}
    for v in (x for x in names if x not in BACKENDS):
        if v not in offered:
            takers = [a.name for a in ALGORITHMS.values() if v in {x.name for x in a.variants}]
            takers += [f"{a.name} on {b.name}" for b in BACKENDS.values() if v in {x.name for x in b.variants}
                       for a in ALGORITHMS.values() if b.name in a.backends]
            only = " only" if len(takers) == 1 else ""
            raise ValueError(f"{label!r}: the {v} variant applies to {', '.join(takers)}{only}")
        variant = offered[v]
        if variant.group and groups.setdefault(variant.group, v) != v:
            raise ValueError(f"{label!r}: {groups[variant.group]} and {v} are both {variant.group} variants; "
                             f"give one of them")
        if not variant.preset:
            cfg = variant.apply(cfg)
    return cfg


def needs_actions(cfg) -> bool:
    """Whether a run needs demonstrations with actions (BC always; others with ``use_actions``)."""
    return ALGORITHMS[cfg.algo].actions or bool(getattr(getattr(cfg, cfg.algo, None), "use_actions", False))


def run_label(cfg, detail: bool = False) -> str:
    """The one name of a run, from its config: the algorithm, the variants it carries, and its backend unless
    SAC ('smiling+actions', 'dac+dreamer', 'smiling+paper+paper-sac'); the grid's folders and legends, run
    titles and default run directories all use it. ``detail`` adds the settings an algorithm lists
    ('smiling K=8, cosine, robust, capped errors') and reward caching."""
    variants = [v.name for v in variants_of(cfg) if v.present(cfg)]
    if not detail:
        return "+".join([cfg.algo, *variants] + ([cfg.rl] if cfg.rl != "sac" else []))
    describe = ALGORITHMS[cfg.algo].describe
    head = f"{cfg.algo} {describe(cfg)}" if describe else "+".join([cfg.algo, *variants])
    cached = ["cached rewards"] if cfg.relabel == "update" and ALGORITHMS[cfg.algo].reward_model is not None else []
    return ", ".join([head, *cached] + ([cfg.rl] if cfg.rl != "sac" else []))


def run_metadata(cfg, demos=None) -> dict:
    """What config.json holds besides the config: the algorithm, the run's name, its curve's x axis, the source
    commit (None outside a git checkout), the CPUs it may use (`usable_cpus`) and, when the demonstrations carry
    them, the expert's and the random policy's mean returns (``references``: what normalized returns and plots
    measure against)."""
    meta = {"config": config_to_dict(cfg), "algo": cfg.algo, "label": run_label(cfg),
            "x_axis": ALGORITHMS[cfg.algo].x_axis, "smiling_version": __version__,
            "commit": source_commit(), "cpus": usable_cpus()}
    if demos is not None and demos.references is not None:
        meta["references"] = dict(zip(("expert", "random"), demos.references))
    return meta


# --- training ----------------------------------------------------------------------------------------------------

def _settings(cfg) -> list[str]:
    """The fields a run's results depend on: all but the settings groups of other algorithms."""
    others = {a.name for a in ALGORITHMS.values() if a.config is not None and a.name != cfg.algo}
    return [f.name for f in dataclasses.fields(cfg) if f.name not in others]


def config_differences(cfg, run_dir: str | Path) -> list[str]:
    """The settings (top-level fields and groups) in which ``cfg`` differs from the run saved in ``run_dir``,
    ignoring the settings groups of other algorithms."""
    return _differences(cfg, load_config(run_dir))


def _differences(cfg, saved) -> list[str]:
    return [n for n in _settings(cfg) if getattr(cfg, n) != getattr(saved, n)]


def learning_differences(cfg, saved) -> list[str]:
    """The settings in which ``cfg`` differs from a run's ``saved`` config (`load_config`), less
    `RESUMABLE_CHANGES`: those that would make the run another run."""
    return [d for d in _differences(cfg, saved) if d not in RESUMABLE_CHANGES]


def check_run_dir(cfg, run_dir: Path, resume: bool) -> None:
    """Refuse, before anything is created: a fresh run into a run directory, or resuming a directory that holds
    no run or a run with other settings (only `RESUMABLE_CHANGES` may change, e.g. steps to extend a run)."""
    if resume:
        saved = load_config(run_dir)
        diff = learning_differences(cfg, saved)
        if diff:
            raise ValueError(f"{run_dir}: resuming with a config that differs from the saved one in {diff}; "
                             f"only {', '.join(RESUMABLE_CHANGES)} may change")
        if cfg.steps < saved.steps:
            raise ValueError(f"{run_dir}: resuming with steps={cfg.steps}, fewer than the run's {saved.steps}; a "
                             f"budget can only grow (`smiling plot --until STEP` compares runs at a shorter budget)")
        off = [f"{name} ({getattr(cfg, name):,})" for name in ("horizon", "eval_every")  # (off-policy loop only:
               if cfg.steps > saved.steps and saved.steps % getattr(cfg, name)              # BC, BCO start again)
               and ALGORITHMS[cfg.algo].train is None]
        if off:  # (its last episode was cut short, or its evaluations fall elsewhere than a longer run's)
            warnings.warn(f"{run_dir}: extending a run whose budget, {saved.steps:,} steps, is no multiple of its "
                          f"{' and '.join(off)}: it will not go as one run of {cfg.steps:,} steps would", stacklevel=2)
    elif (run_dir / "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume {run_dir} to continue it, "
                              f"or choose another --out")
    else:  # (a fresh run appended its rows to a metrics.csv it found, and deleted the checkpoints it found)
        found = [name for name in ("metrics.csv", "checkpoints") if (run_dir / name).exists()]
        if found:
            raise FileExistsError(f"{run_dir} holds {' and '.join(found)} but no config.json: not a run that can "
                                  f"be continued; move them away or choose another --out")


def train(cfg, run_dir: str | Path, resume: bool = False, quiet: bool = False) -> dict:
    """Train ``cfg.algo`` on ``cfg.task``, writing to ``run_dir``; returns a summary dict.

    Everything a run needs (demonstrations, env, agent, reward model) is built and checked before the run
    directory is touched, so a refused run leaves nothing behind. With ``resume=True`` the run continues from
    the newest checkpoint in ``run_dir``; ``cfg`` must equal the saved config except in `RESUMABLE_CHANGES` (a
    larger ``steps`` extends the run; config.json records every change).
    """
    run_dir = Path(run_dir)
    cfg.validate()
    check_run_dir(cfg, run_dir, resume)
    algo = ALGORITHMS[cfg.algo]
    demos = load_demos(cfg.demos or cfg.task, task=cfg.task) if algo.imitation else None
    if demos is not None and not demos.has_actions and needs_actions(cfg):
        raise DemoError(f"{cfg.demos or cfg.task}: state-only demonstrations (no actions); {run_label(cfg)} needs "
                        f"(state, action) pairs: use demonstrations recorded with actions")
    if demos is not None and demos.references is not None and demos.horizon != cfg.horizon:
        # (printed, not warnings.warn: a grid worker's later runs would not repeat it in their own log.txt)
        print(f"warning: {cfg.demos or cfg.task}: the demonstrations' episodes are {demos.horizon} steps long, this "
              f"run's are {cfg.horizon} (horizon): its returns do not compare with the demonstrator's, and "
              f"normalized returns mean little; --horizon {demos.horizon} matches them", file=sys.stderr)
    meta = run_metadata(cfg, demos)
    if algo.train is not None:  # an algorithm with its own loop (BC, BCO)
        loop = functools.partial(algo.train, cfg, run_dir, meta, demos, resume, quiet)
    else:
        env, eval_env, agent, reward_model = _offpolicy_pieces(cfg, demos, quiet)
        loop = functools.partial(offpolicy.train, cfg, run_dir, meta, env, eval_env, agent, reward_model, resume,
                                 quiet)
    with run_lock(run_dir):  # (one process per run directory at a time)
        return loop()


def _offpolicy_pieces(cfg, demos, quiet: bool) -> tuple:
    """The pieces the off-policy loop receives: env, eval env, agent and reward model (None for plain RL)."""
    env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    eval_env = make_env(cfg.task, cfg.horizon, cfg.keep_termination)
    agent = make_agent(cfg, env.observation_space.shape[0], env.action_space.shape[0], demos)
    reward_model = None
    if ALGORITHMS[cfg.algo].reward_model is not None:
        if not quiet:
            print(f"{cfg.algo}: building the reward model from the demonstrations...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        # (fitting the expert's score model takes seconds to minutes: a stop signal meanwhile lets the fit finish,
        # so that it is cached, then stops the run before it starts, as the loop does at an episode's end)
        with StopSignals("stopping once the reward model is built, before training") as stop:
            if stop.requested is None:  # (a grid's worker told to stop while the run was set up: no fit)
                reward_model = make_reward_model(cfg, demos)
        if stop.requested:
            raise TrainingStopped(f"stopped by {signal.Signals(stop.requested).name} before training, with nothing "
                                  f"written: run the same command again", stop.requested)
        if not quiet:
            print(f"{cfg.algo}: reward model ready in {time.perf_counter() - t0:.0f} s ({reward_model.origin})",
                  file=sys.stderr)
    return env, eval_env, agent, reward_model
