"""Business rules applied to ranked candidates: exclusions and the per-category cap."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp


def in_rows(columns: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray:
    """For a (rows × k) array of item columns, which entries are stored in `matrix`'s row.

    `matrix` has one row per row of `columns` (e.g. each customer's purchases); -1
    columns are never members. Vectorised: no loop over customers.
    """
    matrix = matrix.tocsr()
    n_items = matrix.shape[1]
    nonzero = matrix.data != 0
    row_of_entry = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    stored = row_of_entry[nonzero] * n_items + matrix.indices[nonzero]
    asked = np.arange(columns.shape[0], dtype=np.int64)[:, None] * n_items + columns
    return np.isin(asked, stored) & (columns >= 0)


def capped_top(
    columns: np.ndarray, valid: np.ndarray, categories: np.ndarray, *, n: int, cap: int
) -> np.ndarray:
    """Mask of the first `n` valid entries per row, skipping any past `cap` per category.

    Rows of `columns` must already be in rank order. Fully vectorised: each entry's rank
    within its (row, category) group comes from one stable sort.
    """
    n_rows, k = columns.shape
    if n_rows == 0 or k == 0:
        return np.zeros_like(valid, dtype=bool)
    n_categories = int(categories.max()) + 1 if categories.size else 1
    category = categories[np.where(valid, columns, 0)]
    group = (np.arange(n_rows, dtype=np.int64)[:, None] * n_categories + category).ravel()
    positions = np.flatnonzero(valid.ravel())
    # Stable: within a group, entries stay in rank order, so their offset is their rank.
    ordered = positions[np.argsort(group[positions], kind="stable")]
    groups = group[ordered]
    starts = np.r_[True, groups[1:] != groups[:-1]] if len(groups) else np.empty(0, bool)
    offsets = np.arange(len(ordered)) - np.maximum.accumulate(
        np.where(starts, np.arange(len(ordered)), 0)
    )
    rank_in_category = np.full(n_rows * k, np.iinfo(np.int64).max)
    rank_in_category[ordered] = offsets
    keep = valid & (rank_in_category.reshape(n_rows, k) < cap)
    return keep & (np.cumsum(keep, axis=1) <= n)


def top_up(
    chosen: list[int],
    ranked: Iterable[int],
    categories: np.ndarray,
    *,
    n: int,
    cap: int | None,
    excluded: set[int],
) -> list[int]:
    """Append items from `ranked` to `chosen` until it holds `n`, honouring the cap if any.

    Skips excluded and already chosen items; returns only the newly added columns.
    """
    taken = set(chosen)
    per_category: dict[int, int] = {}
    for column in chosen:
        category = int(categories[column])
        per_category[category] = per_category.get(category, 0) + 1
    added: list[int] = []
    for column in ranked:
        if len(chosen) + len(added) >= n:
            break
        column = int(column)
        if column in taken or column in excluded:
            continue
        category = int(categories[column])
        if cap is not None and per_category.get(category, 0) >= cap:
            continue
        added.append(column)
        taken.add(column)
        per_category[category] = per_category.get(category, 0) + 1
    return added
