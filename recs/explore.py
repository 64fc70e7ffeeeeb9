"""Epsilon-greedy exploration: now and then the last slot shows a random eligible candidate.

Randomness is keyed by (seed, customer id), so a customer's draw does not depend on who
else is in the batch, and the propensity of what was shown is logged with the Pick.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from recs.matrix import splitmix_uniform


def explore(
    customer_ids: Sequence[str],
    chosen: np.ndarray,
    pool_size: np.ndarray,
    *,
    epsilon: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rows explore, the pool position shown in their last slot, and its propensity.

    `chosen` (rows × n) holds the greedy pool positions; a row explores with probability
    `epsilon` and then shows a uniform pick among its `pool_size` eligible positions not
    already in its other slots. Propensity = P(this item in the last slot) under the policy:
    ε / m, plus (1 − ε) when it is also the greedy choice.
    """
    keys = np.array([zlib.crc32(c.encode()) for c in customer_ids], dtype=np.uint64)
    coin = splitmix_uniform(keys, seed)
    draw = splitmix_uniform(keys, seed + 1)
    n = chosen.shape[1]
    others = n - 1
    # Eligible = pool positions not used by the other slots; the last slot's own greedy item
    # stays eligible, so the number of choices is pool − (filled other slots).
    filled_others = (chosen[:, :others] >= 0).sum(axis=1)
    choices = np.maximum(pool_size - filled_others, 0)
    does = (coin < epsilon) & (choices > 0) & (n > 0)
    pick = np.full(len(chosen), -1, dtype=np.int64)
    propensity = np.ones(len(chosen))
    for r in np.flatnonzero(does).tolist():
        used = set(chosen[r, :others].tolist())
        free = [p for p in range(int(pool_size[r])) if p not in used]
        pick[r] = free[int(draw[r] * len(free))]
    greedy = chosen[:, -1] if n else np.full(len(chosen), -1)
    m = np.maximum(choices, 1)
    explore_p = epsilon / m
    propensity = np.where(pick == greedy, explore_p + (1 - epsilon), explore_p)
    return does, pick, propensity
