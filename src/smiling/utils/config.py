"""Dataclass configs to and from JSON-able dicts (nested dataclasses, tuples), rejecting unknown fields."""

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
        elif typing.get_origin(t) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
