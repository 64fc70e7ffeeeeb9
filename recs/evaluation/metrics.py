"""Top-k metrics as pure functions: arrays in, one number out.

`recommended` is users × k item indices, best first, -1 where a list ran short;
`relevant` is a users × items sparse matrix, row i the truth for `recommended[i]`.
Recall and NDCG follow RecBole's definitions exactly (`recbole/evaluator/metrics.py`):
averaged over users who have at least one relevant item (RecBole evaluates only those).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hits(recommended: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Users × k booleans: is the item at each rank relevant to that user?"""
    recommended = np.asarray(recommended)
    relevant = sp.csr_matrix(relevant, dtype=bool)
    if recommended.shape[0] != relevant.shape[0]:
        raise ValueError("one row of truth per row of recommendations")
    rows = np.repeat(np.arange(recommended.shape[0]), recommended.shape[1])
    cols = recommended.ravel()
    found = np.zeros(cols.shape, dtype=bool)
    valid = cols >= 0
    found[valid] = np.asarray(relevant[rows[valid], cols[valid]]).ravel()
    return found.reshape(recommended.shape)


def _scored(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> tuple[np.ndarray, ...]:
    """Hits in the top k and truth sizes, for the users who have any truth."""
    size = np.diff(sp.csr_matrix(relevant).indptr)
    keep = size > 0
    top = np.asarray(recommended)[keep, :k]
    return hits(top, sp.csr_matrix(relevant)[keep]), size[keep]


def recall_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> float:
    """Mean over users of |top-k ∩ relevant| / |relevant| (RecBole's Recall@k)."""
    found, size = _scored(recommended, relevant, k)
    return float(np.mean(found.sum(axis=1) / size)) if len(size) else 0.0


def ndcg_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> float:
    """Mean over users of DCG@k / ideal DCG@k with min(|relevant|, k) hits (RecBole's NDCG@k).

    Binary gains, discount 1 / log2(rank + 1), ranks from 1.
    """
    found, size = _scored(recommended, relevant, k)
    if not len(size):
        return 0.0
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (found * discount[: found.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(size, k) - 1]
    return float(np.mean(dcg / ideal))


def hit_rate_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> float:
    """Share of users with at least one relevant item in their top k (RecBole's Hit@k)."""
    found, size = _scored(recommended, relevant, k)
    return float(np.mean(found.any(axis=1))) if len(size) else 0.0


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalog's `n_items` that appear in at least one list."""
    shown = np.unique(np.asarray(recommended))
    return float(np.count_nonzero(shown >= 0) / n_items) if n_items else 0.0


def intra_list_diversity(recommended: np.ndarray, item_category: np.ndarray) -> float:
    """Mean over lists of the share of item pairs whose categories differ.

    A list of k items has k(k-1)/2 pairs; lists with fewer than two items are left out.
    1.0 means every item in every list is from its own category, 0.0 one category each.
    """
    recommended = np.asarray(recommended)
    category = np.where(recommended >= 0, np.asarray(item_category)[recommended], -1)
    valid = recommended >= 0
    n = valid.sum(axis=1)
    # Same-category pairs per list from the per-category counts: sum over c of C(n_c, 2).
    same = np.zeros(len(recommended))
    for c in np.unique(category[valid]):
        n_c = ((category == c) & valid).sum(axis=1)
        same += n_c * (n_c - 1) / 2
    pairs = n * (n - 1) / 2
    keep = pairs > 0
    return float(np.mean(1.0 - same[keep] / pairs[keep])) if keep.any() else 0.0
