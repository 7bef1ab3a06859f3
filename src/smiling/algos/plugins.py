"""Algorithms and RL backends from modules outside the library (plug-ins), found before the registry is built.

A plug-in is an `Algorithm` or `Backend` record (or a tuple of them) in a module of your own, named
``module:attribute``:

* in the environment variable ``SMILING_PLUGINS`` (comma-separated, e.g. ``SMILING_PLUGINS=my_algo:ALGORITHM``;
  the module must be importable: on ``PYTHONPATH`` or installed). A plug-in named here that cannot be loaded
  stops the import of the library with `PluginError`: it was asked for;
* or as an entry point of an installed package, in the group ``smiling.plugins`` (``[project.entry-points.
  "smiling.plugins"] my_algo = "my_pkg.algo:ALGORITHM"`` in its pyproject.toml). One that cannot be loaded is
  left out with a warning naming it: another package's fault should not stop the library.

The registry adds them to `ALGORITHMS` and `BACKENDS` before it builds `TrainConfig`, so a plug-in's settings group,
its ``--<name>.*`` flags, grid labels, run names and saved runs work as the library's own do, in every process
that finds the same plug-ins (grid workers inherit ``SMILING_PLUGINS``; a Ray worker on another node needs the
module installed there). A saved run of a plug-in's algorithm loads only where that plug-in is found.
docs/extending.md walks through writing one.
"""

from __future__ import annotations

import dataclasses
import importlib
import keyword
import os
import warnings
from importlib import metadata
from typing import Iterable

from smiling.algos.base import Algorithm, Backend, RunConfig

ENV_VAR = "SMILING_PLUGINS"
GROUP = "smiling.plugins"


class PluginError(ImportError):
    """A plug-in named in ``SMILING_PLUGINS`` cannot be loaded or is not a record the registry can take."""


def _load(spec: str) -> tuple:
    """The records ``module:attribute`` names, as a tuple; PluginError naming what is wrong."""
    module, sep, attr = (part.strip() for part in spec.partition(":"))
    if not sep or not module or not attr:
        raise PluginError(f"plug-in {spec!r}: expected module:attribute, e.g. my_algo:ALGORITHM")
    try:
        obj = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any failure of the user's module, named with it
        raise PluginError(f"plug-in {spec!r}: importing {module} failed ({type(e).__name__}: {e})") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"plug-in {spec!r}: {module} has no {attr}")
        obj = getattr(obj, part)
    records = tuple(obj) if isinstance(obj, (tuple, list)) else (obj,)
    wrong = [type(r).__name__ for r in records if not isinstance(r, (Algorithm, Backend))]
    if wrong or not records:
        raise PluginError(f"plug-in {spec!r}: expected a smiling.algos.base.Algorithm or Backend (or a tuple of "
                          f"them), got {', '.join(wrong) or 'an empty tuple'}")
    return records


def requested(environ=os.environ) -> list[str]:
    """The plug-ins ``SMILING_PLUGINS`` names."""
    return [s.strip() for s in environ.get(ENV_VAR, "").split(",") if s.strip()]


def find(environ=os.environ, entry_points: Iterable | None = None) -> list[tuple[str, Algorithm | Backend, bool]]:
    """(where it came from, record, asked for) of every plug-in: the entry points of group ``smiling.plugins``
    (left out with a warning when they fail to load), then those of ``SMILING_PLUGINS`` (asked for: PluginError
    when they fail)."""
    found = []
    eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    for ep in eps:
        try:
            records = _load(ep.value)
        except PluginError as e:
            warnings.warn(f"{e} (entry point {ep.name!r} of group {GROUP}); left out", stacklevel=2)
            continue
        found += [(f"plug-in {ep.value} (entry point {ep.name})", r, False) for r in records]
    for spec in requested(environ):
        found += [(f"plug-in {spec} ({ENV_VAR})", r, True) for r in _load(spec)]
    return found


def register(algorithms: dict[str, Algorithm], backends: dict[str, Backend], environ=os.environ,
             entry_points: Iterable | None = None) -> tuple[dict[str, Algorithm], dict[str, Backend]]:
    """The library's algorithms and backends with the plug-ins' added (`find`): each checked (`check_name`; an
    algorithm's backends must exist); a backend's ``algorithms`` then run on it too."""
    algorithms, backends = dict(algorithms), dict(backends)
    found = find(environ, entry_points)

    def refuse(error: str, asked: bool) -> None:
        if asked:
            raise PluginError(error)
        warnings.warn(f"{error}; left out", stacklevel=3)

    for kind in (Backend, Algorithm):  # backends first: a plug-in algorithm may run on a plug-in backend
        for where, record, asked in found:
            if not isinstance(record, kind) or {**algorithms, **backends}.get(record.name) is record:
                continue  # (the same record by an entry point and SMILING_PLUGINS: once)
            try:
                check_name(record, algorithms, backends, where)
            except PluginError as e:
                refuse(str(e), asked)
                continue
            if kind is Algorithm:
                missing = [b for b in record.backends if b not in backends]
                if missing:
                    refuse(f"{where}: algorithm {record.name!r} names backends that are not registered: "
                           f"{', '.join(missing)}", asked)
                    continue
                algorithms[record.name] = record
            else:
                backends[record.name] = record
    for where, record, asked in found:
        if isinstance(record, Backend) and backends.get(record.name) is record:
            for name in record.algorithms:
                algo = algorithms.get(name)
                if algo is None:
                    refuse(f"{where}: backend {record.name!r} names algorithm {name!r}, which is not registered",
                           asked)
                elif not algo.backends or algo.agent is not None or algo.train is not None:
                    refuse(f"{where}: backend {record.name!r} names algorithm {name!r}, which trains "
                           f"{'no RL agent' if not algo.backends else 'an agent or loop of its own'}", asked)
                elif record.name not in algorithms[name].backends:
                    algorithms[name] = dataclasses.replace(algorithms[name],
                                                           backends=algorithms[name].backends + (record.name,))
    return algorithms, backends


def check_name(record: Algorithm | Backend, algorithms: dict, backends: dict, where: str) -> None:
    """Refuse a plug-in whose name cannot be a settings group and a label part, or is taken, and variants that
    would read as another's in a label."""
    kind = "algorithm" if isinstance(record, Algorithm) else "backend"
    name = record.name
    if not (isinstance(name, str) and name.isidentifier() and name == name.lower() and not keyword.iskeyword(name)
            and not name.startswith("_")):
        raise PluginError(f"{where}: {kind} name {name!r} must be a lower-case Python identifier, no keyword and "
                          f"not starting with _ (it is the settings group TrainConfig.{name} and a part of run "
                          f"labels)")
    variants = {v.name for r in (*algorithms.values(), *backends.values()) for v in r.variants}
    taken = {*algorithms, *backends, "validate"} | {f.name for f in dataclasses.fields(RunConfig)}
    if name in taken or kind == "backend" and name in variants:
        raise PluginError(f"{where}: {kind} name {name!r} is taken (by the library, another plug-in, a run "
                          f"setting or, for a backend, a variant of labels); rename it")
    if record.config is not None and not (dataclasses.is_dataclass(record.config)
                                          and record.config.__dataclass_params__.frozen):
        raise PluginError(f"{where}: {kind} {name!r}'s config must be a frozen dataclass")
    presets = {v.name for r in (*algorithms.values(), *backends.values()) for v in r.variants if v.preset}
    for v in record.variants:
        if v.preset or v.name in presets:  # (a preset is one of the library's `smiling.algos.presets`)
            raise PluginError(f"{where}: variant {v.name!r} of {kind} {name!r}: presets are the library's; give a "
                              f"plain variant another name")
        if not (v.name.isidentifier() or v.name.replace("-", "_").isidentifier()) or v.name in backends:
            raise PluginError(f"{where}: variant {v.name!r} of {kind} {name!r} must be a name (letters, digits, "
                              f"_ or -) other than a backend's")
