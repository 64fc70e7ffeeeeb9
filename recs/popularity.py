"""Recent popularity: what the whole audience has been interested in lately."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def item_popularity(weights: sp.csr_matrix) -> np.ndarray:
    """Decayed interest per item, each customer's share damped by log1p.

    The damping keeps one customer who viewed an item fifty times from outweighing many
    customers who each looked at it once.
    """
    damped = weights.astype(np.float64, copy=True)
    damped.data = np.log1p(damped.data)
    return np.asarray(damped.sum(axis=0), dtype=np.float64).ravel()


def popularity_prior(popularity: np.ndarray) -> np.ndarray:
    """Popularity mapped to [0, 1] on a log scale (the most popular item gets 1)."""
    top = float(popularity.max()) if popularity.size else 0.0
    if top <= 0:
        return np.zeros_like(popularity, dtype=np.float64)
    return np.log1p(popularity) / np.log1p(top)


def popularity_order(popularity: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Columns of eligible items, most popular first; ties go to the lower column (id order)."""
    columns = np.flatnonzero(eligible)
    return columns[np.argsort(-popularity[columns], kind="stable")]
