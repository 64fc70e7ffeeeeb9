"""Epsilon-greedy exploration: now and then the last slot shows a random eligible candidate.

Randomness is keyed by (seed, customer id), so a customer's draw does not depend on who
else is in the batch, and the propensity of what was shown is logged with the Pick: an
explored slot's reason is `explore(p=0.0125)`, and a slot that did not explore keeps its
own reason with `;p=0.9625` appended (`propensity_marker`), so every pick of a campaign
that explores is a round for off-policy evaluation (`recs.offpolicy`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from recs.matrix import splitmix_uniform


def propensity_marker(propensity: float) -> str:
    """What the reason of a last slot that did not explore ends with: `;p=0.9625`."""
    return f";p={propensity:.4g}"


def explore(
    customer_ids: Sequence[str],
    pool: np.ndarray,
    shown: np.ndarray,
    *,
    epsilon: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rows explore, the pool position shown in their last slot, and its propensity.

    `pool` (rows × width) holds each row's candidate items, -1 in empty slots anywhere in
    the row; `shown` (rows × n) the items the greedy policy shows, -1 when empty. The
    eligible positions of a row are its non-empty pool slots whose item is not in one of
    the other (first n − 1) shown slots: the last slot's own greedy item stays eligible.
    With m eligible positions, a row explores with probability ε when m > 0 and then shows
    one of them drawn uniformly. The returned propensity is P(the item in the last slot)
    under this policy: ε / m for an explored item, plus (1 − ε) when it is also the greedy
    item; a row with m = 0 always shows its greedy item (propensity 1). Positions are -1
    for rows that do not explore.
    """
    n_rows = len(pool)
    keys = np.array([zlib.crc32(c.encode()) for c in customer_ids], dtype=np.uint64)
    coin = splitmix_uniform(keys, seed)
    draw = splitmix_uniform(keys, seed + 1)
    n = shown.shape[1]
    others = shown[:, : max(n - 1, 0)]
    eligible = pool >= 0
    for slot in range(others.shape[1]):
        eligible &= pool != np.where(others[:, slot] >= 0, others[:, slot], -2)[:, None]
    m = eligible.sum(axis=1)
    does = (coin < epsilon) & (m > 0) & (n > 0)
    # The k-th eligible position (k uniform in [0, m)): the first whose running count > k.
    k = np.minimum((draw * m).astype(np.int64), np.maximum(m - 1, 0))
    position = np.argmax(np.cumsum(eligible, axis=1) > k[:, None], axis=1)
    position = np.where(does, position, -1)
    greedy = shown[:, -1] if n else np.full(n_rows, -1)
    rows = np.arange(n_rows)
    last = np.where(does, pool[rows, np.maximum(position, 0)], greedy)
    last_eligible = np.zeros(n_rows, dtype=bool)
    if pool.shape[1]:
        last_eligible = (eligible & (pool == last[:, None]) & (last[:, None] >= 0)).any(axis=1)
    propensity = np.where(last_eligible, epsilon / np.maximum(m, 1), 0.0) + np.where(
        last == greedy, 1.0 - epsilon, 0.0
    )
    propensity = np.where(m > 0, propensity, 1.0)
    return does, position, propensity
