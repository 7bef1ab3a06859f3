"""Dataclass configs to and from JSON-able dicts (nested dataclasses, tuples), rejecting unknown fields; checks that
configs run on construction."""

from __future__ import annotations

import dataclasses
import functools
import typing

import numpy as np


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, d: dict, where: str = "config"):
    """Build dataclass ``cls`` from a JSON-able dict, checking each field's declared type before the class's own
    checks run (groups of settings recursively; a list where a tuple is declared becomes the tuple)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    fields = {name: (t, group, test) for name, t, group, test in _fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"unknown config fields in {where}: {unknown}")
    kwargs = {}
    for name, value in d.items():
        t, group, test = fields[name]
        if group:
            value = from_dict(t, value, f"{where}.{name}")
        else:
            if typing.get_origin(t) is tuple and isinstance(value, list):
                value = tuple(value)
            if not test(value):
                raise ValueError(_mismatch(f"{where}.{name}", t, value))
        kwargs[name] = value
    return cls(**kwargs)


def field_types(cls) -> dict:
    """{field name: declared type} of dataclass ``cls`` (string annotations resolved; worked out once per class)."""
    return {name: t for name, t, _, _ in _fields(cls)}


def check_field_types(cfg, where: str = "") -> None:
    """Raise ValueError naming the first field of dataclass ``cfg`` (groups included) whose value is not of its
    declared type (``seed=1.5``, ``keep_termination="no"``, a dict for a group); a list where a tuple is declared
    becomes the tuple (``hidden_dims=[256, 256]``), as JSON and the command line give it, and a NumPy scalar the
    Python number."""
    for name, t, group, test in _fields(type(cfg)):
        value = getattr(cfg, name)
        if group:
            if not isinstance(value, t):
                raise ValueError(f"{where}{name}: expected a {t.__name__}, got {value!r}")
            check_field_types(value, f"{where}{name}.")
            continue
        if isinstance(value, list) and typing.get_origin(t) is tuple or isinstance(value, np.generic):
            value = tuple(value) if isinstance(value, list) else value.item()  # (np.int64(3): 3, which JSON takes)
            object.__setattr__(cfg, name, value)  # (frozen: set once, before anything reads it)
        if not test(value):
            raise ValueError(_mismatch(f"{where}{name}", t, value))


@functools.lru_cache(maxsize=None)
def _fields(cls) -> tuple:
    """(name, declared type, whether a group of settings, its type test) per field of a config class, worked
    out once per class: configs are built often (every `dataclasses.replace`), resolving types takes milliseconds."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name], dataclasses.is_dataclass(hints[f.name]), _test(hints[f.name]))
                 for f in dataclasses.fields(cls))


@functools.lru_cache(maxsize=None)
def _test(t):
    """A test of whether a value fits the declared type ``t`` (an int where a float is declared does), built once
    per type (configs are built often: every replace)."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        return lambda v: v in args
    if type(None) in args:  # X | None
        tests = [_test(a) for a in args if a is not type(None)]
        return lambda v: v is None or any(test(v) for test in tests)
    if origin is tuple:
        item = _test(args[0])
        return lambda v: isinstance(v, tuple) and all(item(x) for x in v)
    if t is float:
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if t is int:
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    return (lambda v: isinstance(v, t)) if isinstance(t, type) else (lambda v: True)


def _mismatch(name: str, t, value) -> str:
    if typing.get_origin(t) is typing.Literal:  # (as `check_choice` says it)
        return f"{name} must be one of {', '.join(map(str, typing.get_args(t)))}, got {value!r}"
    return f"{name}: expected {t.__name__ if isinstance(t, type) else str(t).replace('typing.', '')}, got {value!r}"


def at_least(cfg, minimum: int, *names: str, prefix: str = "") -> None:
    """Raise ValueError naming the first field of ``names`` below ``minimum``."""
    for name in names:
        if getattr(cfg, name) < minimum:
            raise ValueError(f"{prefix}{name} must be >= {minimum}, got {getattr(cfg, name)}")


def at_least_one(cfg, *names: str, prefix: str = "") -> None:
    at_least(cfg, 1, *names, prefix=prefix)


def check_choice(value, choices, name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
