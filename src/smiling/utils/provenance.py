"""Where a result came from: the source commit of the running code, and the CPUs it ran on."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of the smiling source that is running ('<sha>', or '<sha>+dirty' when tracked files differ
    from it), or None outside a git checkout (an installed wheel) or without git."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "."],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def usable_cpus() -> int:
    """How many CPUs this process may run on (its affinity: `taskset`, or a grid worker's share). XLA's CPU
    thread pool is sized to it and splits some sums by it, so a run repeats its results bitwise only on the same
    count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
