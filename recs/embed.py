"""Item and customer vectors from a truncated SVD of the interaction matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

# BM25 constants as in implicit's bm25_weight: K1 saturates repeated interest, B
# discounts customers who touch everything, so heavy browsers do not dominate the factors.
_BM25_K1 = 100.0
_BM25_B = 0.8


def damped(weights: sp.csr_matrix) -> sp.csr_matrix:
    """log1p of each entry: ten views say more than one, but not ten times more."""
    out = weights.astype(np.float64, copy=True)
    out.data = np.log1p(out.data)
    return out


def bm25(weights: sp.csr_matrix) -> sp.csr_matrix:
    """BM25-weight a customer × item matrix (customers are documents, items are terms).

    Items bought by nearly everyone get a small (never negative) weight, and a customer's
    entries are scaled down the more they interacted overall.
    """
    x = damped(weights).tocoo()
    n_customers = max(x.shape[0], 1)
    document_frequency = np.bincount(x.col, minlength=x.shape[1])
    idf = np.maximum(np.log(n_customers) - np.log1p(document_frequency), 0.0) + 1e-3
    row_sums = np.asarray(x.sum(axis=1)).ravel()
    mean_length = row_sums.mean() if row_sums.size and row_sums.mean() > 0 else 1.0
    length_norm = (1.0 - _BM25_B) + _BM25_B * row_sums / mean_length
    data = x.data * (_BM25_K1 + 1.0) / (_BM25_K1 * length_norm[x.row] + x.data) * idf[x.col]
    return sp.csr_matrix((data, (x.row, x.col)), shape=x.shape)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length; all-zero rows stay zero (they have no direction)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def item_vectors(weights: sp.csr_matrix, *, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit-length item vectors (items × d, float32) whose inner products follow co-interest.

    `d = min(dim, rank the matrix can support)`. The same matrix and seed always give the
    same vectors: ARPACK starts from a seeded vector and each factor's sign is fixed.
    Items nobody interacted with get the zero vector.
    """
    # BM25 rather than plain log1p: on MovieLens-100K (random 80/10/10 split, dim 32-64)
    # it gave recall@10 0.19-0.21 against 0.18-0.19, and it was better on synthetic shops.
    x = bm25(weights)
    if x.nnz == 0:
        return np.zeros((x.shape[1], 1), dtype=np.float32)
    smaller = min(x.shape)
    if smaller <= dim + 1:
        # ARPACK needs k < min(shape); a matrix this thin is cheaper densely anyway.
        _, s, vt = np.linalg.svd(x.toarray(), full_matrices=False)
        s, vt = s[:dim], vt[:dim]
    else:
        rng = np.random.default_rng(seed)
        _, s, vt = svds(
            x, k=dim, solver="arpack", v0=rng.uniform(-1.0, 1.0, size=smaller), random_state=seed
        )
        order = np.argsort(-s, kind="stable")
        s, vt = s[order], vt[order]
    keep = s > s.max() * 1e-9  # drop numerically empty factors: they carry only noise
    s, vt = s[keep], vt[keep]
    # An SVD factor is only defined up to sign; pin it so reruns give identical vectors.
    pivot = np.argmax(np.abs(vt), axis=1)
    vt = vt * np.sign(vt[np.arange(len(vt)), pivot])[:, None]
    # V·S reproduces the item co-interest Gram matrix, so cosine here is item-item cosine.
    return normalize_rows((vt.T * s).astype(np.float32))


def customer_vectors(weights: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Unit-length customer vectors: the interest-weighted mean of their items' vectors.

    `weights` holds the customers' rows (any number, same columns as `items` has rows);
    a customer without usable history gets the zero vector.
    """
    return normalize_rows(np.asarray(damped(weights) @ items, dtype=np.float32))
