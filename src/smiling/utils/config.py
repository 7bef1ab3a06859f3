"""Dataclass configs to and from JSON-able dicts (nested dataclasses, tuples), rejecting unknown fields; checks that
configs run on construction."""

from __future__ import annotations

import dataclasses
import typing


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, d: dict, where: str = "config"):
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown config fields in {where}: {unknown}")
    kwargs = {}
    for name, value in d.items():
        t = hints[name]
        if dataclasses.is_dataclass(t):
            value = from_dict(t, value, f"{where}.{name}")
        else:
            if typing.get_origin(t) is tuple and isinstance(value, list):
                value = tuple(value)
            if not _is_a(value, t):
                raise ValueError(f"{where}.{name}: expected {_type_name(t)}, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def _is_a(value, t) -> bool:
    """Whether a JSON value fits the declared type ``t`` (an int where a float is declared does)."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        return value in args
    if type(None) in args:  # X | None
        return value is None or any(_is_a(value, a) for a in args if a is not type(None))
    if origin is tuple:
        return isinstance(value, tuple) and all(_is_a(v, args[0]) for v in value)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, t) if isinstance(t, type) else True


def _type_name(t) -> str:
    return t.__name__ if isinstance(t, type) else str(t).replace("typing.", "")


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
