"""Seeds derived from a run seed, so that each episode's randomness does not depend on history."""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 31-bit seed that is a fixed function of the integer ``parts`` (numpy SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


TRAIN_STREAM, EVAL_STREAM = 0, 1
