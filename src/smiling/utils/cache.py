"""Caches: the root folder on disk, JAX's persistent compilation cache, and jitted functions shared in memory.

Root: ``$SMILING_CACHE`` (default ``~/.cache/smiling``). It holds fitted expert score models
(``expert_scores/``) and compiled XLA executables (``jax/``, or ``$SMILING_JAX_CACHE``; ``off`` disables it).
Reusing compiled executables across processes saves each new run (or grid worker) the compile time of its jitted
updates; an entry is keyed by the computation, the JAX version and the flags, so it never changes results.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("SMILING_CACHE", Path.home() / ".cache" / "smiling"))


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at the smiling cache (every compile is kept: entries are
    small). Called by the command-line tool and by experiment workers, not on import; returns the folder."""
    setting = os.environ.get("SMILING_JAX_CACHE")
    if setting == "off":
        return None
    path = Path(setting) if setting else cache_root() / "jax"
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


_SHARED_JITS: dict = {}


def jit_key_of(obj, *sizes) -> tuple:
    """The usual `shared_jit` key of an object's methods: its class, its sizes and its config's repr (objects
    built alike share their jitted functions)."""
    return type(obj), *sizes, repr(obj.config)


def shared_jit(key: typing.Hashable, fn: typing.Callable, **jit_kwargs) -> typing.Callable:
    """``jax.jit(fn, **jit_kwargs)``, made once per (``key``, the function's name, the jit options) in this process
    and kept. For the methods of objects built alike (key: the class, the sizes and the config's repr): each
    object's own ``jax.jit(self.method)`` would trace and lower anew, while objects with one key share one traced
    and compiled function, the first object's. So ``fn`` must depend on nothing but its arguments and what ``key``
    names (never on data an object holds, such as demonstrations or standardization statistics), and the cache
    keeps that first object alive. A lambda or a function defined inside another is refused: its name does not
    say what it closes over, so two of them under one key would silently share the first one's jit."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None or "<lambda>" in name or "<locals>" in name:
        raise ValueError(f"shared_jit needs a named method or module-level function (it names the jit), got {fn!r}")
    full = (key, name, tuple(sorted(jit_kwargs.items())))
    jitted = _SHARED_JITS.get(full)
    if jitted is None:
        import jax

        jitted = _SHARED_JITS[full] = jax.jit(fn, **jit_kwargs)
    return jitted
