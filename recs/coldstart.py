"""Cold start: popular items for users without history, content similarity for new items."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recs.history import History
from recs.matrix import dense_top_k, row_normalize

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def group_popular(
    history: History, groups: np.ndarray | None, allowed: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per group code, the `k` most popular allowed items among that group's users.

    Returns (items, scores) of shape (n_groups + 1, k): the last row is everyone's list,
    used for users without a group and to top up small groups.
    """
    n_groups = int(groups.max()) + 1 if groups is not None and len(groups) else 0
    pop = np.log1p(history.item_decayed)
    rows = [pop]
    if groups is not None and n_groups:
        log = history.log
        user_group = groups[log.user]
        keep = user_group >= 0
        by_group = np.zeros((n_groups, history.n_items))
        np.add.at(by_group, (user_group[keep], log.item[keep]), 1.0)
        # Group counts first, everyone's popularity as the tie-break and the top-up.
        rows = [*np.log1p(by_group) + pop / (pop.max() + 1.0) * 1e-3, pop]
    scores = np.vstack(rows)
    scores[:, ~allowed] = -np.inf
    scores[:, history.item_count == 0] = -np.inf
    return dense_top_k(scores, k)


def tfidf(texts: Sequence[str]) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows (word unigrams, lower-cased) for item titles/categories/brands."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for token in set(_TOKEN.findall(text.lower())):
            rows.append(i)
            cols.append(vocab.setdefault(token, len(vocab)))
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(texts), max(len(vocab), 1))
    )
    df = np.asarray((m > 0).sum(axis=0)).ravel()
    # No +1 smoothing: a word every item shares (the shop's name) must weigh nothing.
    idf = np.log((1 + len(texts)) / (1 + df))
    m = m @ sp.diags(idf.astype(np.float32))
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return (sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m).tocsr()


class ContentSimilarity:
    """Items nobody interacted with yet, scored by text similarity to the user's history."""

    def __init__(self, history: History, allowed: np.ndarray) -> None:
        """Index the allowed cold items of `history` (no-op when items have no text)."""
        texts = history.log.item_text
        self.cold = np.flatnonzero((history.item_count == 0) & allowed)
        self.vectors = tfidf(texts) if texts is not None and len(self.cold) else None
        self.seen = history.weights

    def best(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per user, the most similar cold item and its cosine (-1 and 0 when none)."""
        if self.vectors is None or len(self.cold) == 0:
            return np.full(len(users), -1), np.zeros(len(users))
        profile = row_normalize(self.seen[users]) @ self.vectors
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
        sims = np.asarray((profile @ self.vectors[self.cold].T).todense())
        sims = np.divide(sims, norms[:, None], out=np.zeros_like(sims), where=norms[:, None] > 0)
        best = np.argmax(sims, axis=1)
        return self.cold[best], sims[np.arange(len(users)), best]
