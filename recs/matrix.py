"""Sparse and dense array helpers every stage shares: matrices from a log, lookups, top-k.

Everything here is batched over users: no Python loop runs once per user.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog

SECONDS_PER_DAY = 86_400.0


def interaction_matrix(
    log: InteractionLog,
    *,
    now: float,
    kind_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    half_life_days: float | None = None,
    binary: bool = False,
) -> sp.csr_matrix:
    """Users × items, summed `kind_weight × 0.5 ** (age / half_life)` over the log's events.

    `binary` clips every stored entry to 1 (who touched what, not how much).
    """
    weight = np.asarray(kind_weights, dtype=np.float64)[log.kind]
    if half_life_days is not None:
        age_days = np.maximum(now - log.time, 0.0) / SECONDS_PER_DAY
        weight = weight * np.exp2(-age_days / half_life_days)
    keep = weight > 0
    m = sp.csr_matrix(
        (weight[keep], (log.user[keep], log.item[keep])), shape=(log.n_users, log.n_items)
    )
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m.astype(np.float32)


def last_time_matrix(
    users: np.ndarray, columns: np.ndarray, times: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Users × columns holding the latest time of any (user, column) event (0 = none)."""
    key = users.astype(np.int64) * shape[1] + columns
    order = np.lexsort((times, key))
    key, times = key[order], times[order]
    last = np.r_[key[1:] != key[:-1], True] if len(key) else np.empty(0, bool)
    key, times = key[last], times[last]
    return sp.csr_matrix((times, (key // shape[1], key % shape[1])), shape=shape)


def lookup(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """`matrix[rows[i], columns[i]]` for paired index arrays (0 where nothing is stored).

    One searchsorted over the stored keys, so millions of pairs cost a fraction of a second.
    """
    matrix = matrix.tocsr()
    matrix.sort_indices()
    n_cols = matrix.shape[1]
    entry_row = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    stored = entry_row * n_cols + matrix.indices
    asked = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(columns, dtype=np.int64)
    out = np.zeros(asked.shape, dtype=matrix.dtype)
    if stored.size == 0:
        return out
    at = np.minimum(np.searchsorted(stored, asked), stored.size - 1)
    hit = stored[at] == asked
    out[hit] = matrix.data[at[hit]]
    return out


def in_rows(columns: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray:
    """For (rows × k) item columns, which entries are stored (nonzero) in `matrix`'s row.

    `matrix` has one row per row of `columns`; -1 columns are never members.
    """
    rows = np.broadcast_to(np.arange(columns.shape[0])[:, None], columns.shape)
    found = lookup(matrix, rows.ravel(), np.maximum(columns, 0).ravel()).reshape(columns.shape)
    member: np.ndarray = (found != 0) & (columns >= 0)
    return member


def dense_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns per row of a dense score block, best first: (columns, scores).

    -inf entries are never returned; their slots hold column -1 and score -inf. Ties go to
    the lower column, so results do not depend on argpartition's internals.
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if k == 0:
        return np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n_cols else None
    if part is None:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    columns = np.take_along_axis(part, order, axis=1).astype(np.int64)
    values = np.take_along_axis(picked, order, axis=1).astype(np.float32)
    missing = ~np.isfinite(values) | (values == -np.inf)
    columns[missing] = -1
    values[missing] = -np.inf
    return columns, values


def sparse_top_k(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` stored entries per row of a sparse matrix, best first: (columns, scores).

    Rows with fewer than `k` stored entries are padded with column -1 and score -inf.
    """
    coo = matrix.tocoo()
    out_cols = np.full((matrix.shape[0], k), -1, dtype=np.int64)
    out_vals = np.full((matrix.shape[0], k), -np.inf, dtype=np.float32)
    if coo.nnz == 0 or k == 0:
        return out_cols, out_vals
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]
    starts = np.searchsorted(rows, np.arange(matrix.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    out_cols[rows[keep], rank[keep]] = cols[keep]
    out_vals[rows[keep], rank[keep]] = vals[keep]
    return out_cols, out_vals


def compact(
    columns: np.ndarray, scores: np.ndarray, valid: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first `k` valid entries of each row, in order, padding with -1 / -inf."""
    rank = np.cumsum(valid, axis=1) - 1
    keep = valid & (rank < k)
    out_cols = np.full((columns.shape[0], k), -1, dtype=np.int64)
    out_vals = np.full((columns.shape[0], k), -np.inf, dtype=np.float32)
    r, c = np.nonzero(keep)
    out_cols[r, rank[r, c]] = columns[r, c]
    out_vals[r, rank[r, c]] = scores[r, c]
    return out_cols, out_vals


def row_normalize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row scaled to sum 1 (empty rows stay empty)."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.diags(scale.astype(np.float32)) @ matrix


def splitmix_uniform(keys: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) number per integer key, the same for the same (key, seed) anywhere.

    Per-user randomness that does not depend on batch order or batch size.
    """
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
