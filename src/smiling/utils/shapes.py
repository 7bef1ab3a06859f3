"""Padding to a few distinct shapes, so that jitted functions fed growing data recompile only O(log n) times."""

from __future__ import annotations

import numpy as np


def pow2_ceil(n: int) -> int:
    """The smallest power of two >= n (n >= 1)."""
    return 1 << (int(n) - 1).bit_length()


def pad_rows_pow2(rows: np.ndarray) -> np.ndarray:
    """``rows`` (n, d) as float32, zero-padded to pow2_ceil(n) rows; callers must draw only from the first n."""
    out = np.zeros((pow2_ceil(len(rows)), rows.shape[1]), np.float32)
    out[:len(rows)] = rows
    return out
