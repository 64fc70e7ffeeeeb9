"""The fitted recommender: vectors, index and rules for one data snapshot."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from recs.config import RecConfig
from recs.embed import customer_vectors, item_vectors
from recs.errors import RecsError
from recs.index import ItemIndex
from recs.interactions import Interactions, build_interactions
from recs.popularity import item_popularity, popularity_order, popularity_prior
from recs.rules import capped_top, in_rows, top_up
from recs.version import model_version
from retail.types import Event, Pick, Product

logger = logging.getLogger(__name__)

#: Reason codes, indexed by the `reasons` array of `RecModel.recommend_columns`.
REASONS = ("similar-to-history", "seen-before", "popular-fallback")
SIMILAR, SEEN, POPULAR = range(len(REASONS))
# Customers are scored in chunks so 100k customers × 100 candidates never sit in memory at once.
_CHUNK = 8_192


@dataclass(frozen=True, eq=False)
class RecModel:
    """A recommender fitted on one catalog and event snapshot; reuse it for many calls.

    Column j everywhere is product `item_ids[j]` (catalog sorted by id).
    """

    config: RecConfig
    seed: int
    version: str
    interactions: Interactions
    #: items × d, unit length (zero for items nobody interacted with).
    item_vectors: np.ndarray
    #: category code per item, and the names the codes stand for.
    categories: np.ndarray
    category_names: tuple[str, ...]
    in_stock: np.ndarray
    #: decayed audience interest per item, and the same mapped to [0, 1].
    popularity: np.ndarray
    prior: np.ndarray
    #: in-stock item columns, most popular first.
    popular: np.ndarray
    #: searchable in-stock items that have a vector.
    index: ItemIndex

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Product id of each column."""
        return self.interactions.item_ids

    def recommend(
        self, customer_ids: Sequence[str], *, n: int = 3, candidates: int = 100
    ) -> dict[str, Pick]:
        """One Pick per distinct customer id, in the order asked.

        Customers with history get in-stock products similar to it (blended with a little
        popularity), minus anything they bought, at most `config.max_per_category` per
        category while the catalog allows. Customers without history get recent popular
        in-stock products under the same cap. With fewer than `n` eligible products a Pick
        holds what there is; a customer who already bought every in-stock product gets no
        Pick (the dict lacks that id), since an empty Pick has nothing to show.
        """
        unique = list(dict.fromkeys(customer_ids))
        rows = np.array([self.interactions.customer_index.get(c, -1) for c in unique], np.int64)
        columns, scores, reasons = self.recommend_columns(rows, n=n, candidates=candidates)
        picks: dict[str, Pick] = {}
        item_ids = self.item_ids
        for customer_id, cols, row_scores, row_reasons in zip(
            unique, columns.tolist(), scores.tolist(), reasons.tolist(), strict=True
        ):
            size = next((i for i, c in enumerate(cols) if c < 0), len(cols))
            if size == 0:
                continue
            picks[customer_id] = Pick(
                customer_id=customer_id,
                product_ids=tuple(item_ids[c] for c in cols[:size]),
                scores=tuple(round(s, 6) for s in row_scores[:size]),
                reasons=tuple(REASONS[r] for r in row_reasons[:size]),
                model_version=self.version,
            )
        if len(picks) < len(unique):
            logger.info("%d customers had nothing left to recommend", len(unique) - len(picks))
        return picks

    def recommend_columns(
        self, rows: np.ndarray, *, n: int = 3, candidates: int = 100
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batched core of `recommend` for interaction-matrix rows (-1 = unknown customer).

        Returns (columns, scores, reasons), each rows × n, best first; unfilled slots
        hold column -1, score NaN and reason -1. Score = (1 - w)·similarity + w·prior with
        w = `config.popularity_weight`; similarity is 0 for customers without history.
        """
        if n < 1:
            raise RecsError(f"n must be at least 1, got {n}")
        if candidates < 1:
            raise RecsError(f"candidates must be at least 1, got {candidates}")
        rows = np.asarray(rows, dtype=np.int64)
        columns = np.full((len(rows), n), -1, dtype=np.int64)
        scores = np.full((len(rows), n), np.nan, dtype=np.float64)
        reasons = np.full((len(rows), n), -1, dtype=np.int8)
        for start in range(0, len(rows), _CHUNK):
            part = slice(start, start + _CHUNK)
            self._recommend_chunk(
                rows[part], columns[part], scores[part], reasons[part], n, max(candidates, n)
            )
        return columns, scores, reasons

    def _recommend_chunk(
        self,
        rows: np.ndarray,
        columns: np.ndarray,
        scores: np.ndarray,
        reasons: np.ndarray,
        n: int,
        k: int,
    ) -> None:
        weight = self.config.popularity_weight
        cap = self.config.max_per_category
        known = np.flatnonzero(rows >= 0)
        vectors = np.zeros((len(rows), self.item_vectors.shape[1]), dtype=np.float32)
        vectors[known] = customer_vectors(self.interactions.weights[rows[known]], self.item_vectors)
        warm = np.flatnonzero(np.any(vectors != 0, axis=1))

        # Customers with history: Faiss candidates, rescored, filtered, capped — all batched.
        similarity, cand = self.index.search(vectors[warm], k)
        purchased = self.interactions.purchased[rows[warm]]
        valid = (cand >= 0) & ~in_rows(cand, purchased)
        blended = (1 - weight) * similarity + weight * self.prior[np.maximum(cand, 0)]
        blended = np.where(valid, blended, -np.inf)
        order = np.argsort(-blended, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        blended = np.take_along_axis(blended, order, axis=1)
        valid = np.take_along_axis(valid, order, axis=1)
        seen = in_rows(cand, self.interactions.weights[rows[warm]])
        keep = capped_top(cand, valid, self.categories, n=n, cap=cap)
        r, c = np.nonzero(keep)
        slot = np.cumsum(keep, axis=1)[r, c] - 1
        columns[warm[r], slot] = cand[r, c]
        scores[warm[r], slot] = blended[r, c]
        reasons[warm[r], slot] = np.where(seen[r, c], SEEN, SIMILAR)

        # Customers without history or purchases all get one popular list: work it out once.
        position = np.full(len(rows), -1, dtype=np.int64)
        position[warm] = np.arange(len(warm))
        # Purchase count per row, with a trailing 0 that row -1 (unknown customer) reads.
        purchases = np.append(np.diff(self.interactions.purchased.indptr), 0)
        bought_any = purchases[rows] > 0
        plain_cold = np.flatnonzero((position < 0) & ~bought_any)
        if len(plain_cold):
            shared = [column for column, _ in self._top_up([], set(), [], n)]
            columns[plain_cold, : len(shared)] = shared
            scores[plain_cold, : len(shared)] = weight * self.prior[shared]
            reasons[plain_cold, : len(shared)] = POPULAR

        # Whoever else is still short of n (candidates used up, or a tiny catalog) is topped
        # up one by one; in a healthy catalog that is a handful of customers.
        short = columns[:, -1] < 0
        short[plain_cold] = False  # the shared list already holds all it can
        for b in np.flatnonzero(short).tolist():
            row, i = int(rows[b]), int(position[b])
            ranked = cand[i][valid[i]].tolist() if i >= 0 else []
            chosen = [c for c in columns[b].tolist() if c >= 0]
            added = self._top_up(chosen, _row_columns(self.interactions.purchased, row), ranked, n)
            interacted = _row_columns(self.interactions.weights, row)
            for slot_index, (column, from_candidates) in enumerate(added, len(chosen)):
                columns[b, slot_index] = column
                reasons[b, slot_index] = (
                    (SEEN if column in interacted else SIMILAR) if from_candidates else POPULAR
                )
                similarity_b = float(vectors[b] @ self.item_vectors[column])
                scores[b, slot_index] = (1 - weight) * similarity_b + weight * self.prior[column]

    def _top_up(
        self, chosen: list[int], bought: set[int], ranked: list[int], n: int
    ) -> list[tuple[int, bool]]:
        """Columns to append to `chosen`, each flagged True if it came from the candidates.

        Popular items under the category cap come first, so a Pick stays diverse whenever
        the catalog allows; only then do the remaining candidates, and after them popular
        items, fill it regardless of category.
        """
        cap = self.config.max_per_category
        added: list[tuple[int, bool]] = []
        steps = ((self.popular, cap, False), (ranked, None, True), (self.popular, None, False))
        for source, step_cap, from_candidates in steps:
            new = top_up(
                chosen + [c for c, _ in added],
                source,
                self.categories,
                n=n,
                cap=step_cap,
                excluded=bought,
            )
            added += [(c, from_candidates) for c in new]
        return added


def _row_columns(matrix: sp.csr_matrix, row: int) -> set[int]:
    """Stored columns of one CSR row (-1 = no row), without building a sliced matrix."""
    if row < 0:
        return set()
    return set(matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]].tolist())


def fit(
    products: Sequence[Product],
    events: Sequence[Event],
    *,
    now: datetime,
    seed: int = 0,
    config: RecConfig | None = None,
) -> RecModel:
    """Fit a recommender on a catalog and the events known at `now`.

    Deterministic: the same products, events, `now`, seed and config give the same model
    and the same `version`. Raises RecsError if no product is in stock, since then
    nothing could ever be recommended.
    """
    config = config or RecConfig()
    in_stock_count = sum(p.in_stock for p in products)
    if in_stock_count == 0:
        raise RecsError(
            f"no product is in stock ({len(products)} in the catalog): nothing can be "
            "recommended; load a catalog with in_stock products"
        )
    interactions = build_interactions(
        products,
        events,
        now=now,
        half_life_days=config.half_life_days,
        event_weights=config.event_weights,
    )
    by_id = {p.id: p for p in products}
    products_in_order = [by_id[pid] for pid in interactions.item_ids]
    category_names = tuple(sorted({p.category for p in products}))
    code = {name: i for i, name in enumerate(category_names)}
    categories = np.array([code[p.category] for p in products_in_order], dtype=np.int64)
    in_stock = np.array([p.in_stock for p in products_in_order], dtype=bool)

    vectors = item_vectors(interactions.weights, dim=config.dim, seed=seed)
    popularity = item_popularity(interactions.weights)
    # Only in-stock items with a vector are searchable: out-of-stock ones could never be
    # shown, and would take candidate slots from ones that can.
    searchable = np.flatnonzero(in_stock & np.any(vectors != 0, axis=1))
    index = ItemIndex(
        vectors[searchable],
        searchable,
        hnsw_threshold=config.hnsw_threshold,
        threads=config.threads,
    )
    model = RecModel(
        config=config,
        seed=seed,
        version=model_version(interactions, products, config, seed),
        interactions=interactions,
        item_vectors=vectors,
        categories=categories,
        category_names=category_names,
        in_stock=in_stock,
        popularity=popularity,
        prior=popularity_prior(popularity),
        popular=popularity_order(popularity, in_stock),
        index=index,
    )
    logger.info(
        "fitted recs model %s: %d customers, %d products (%d in stock, %d searchable), "
        "dim %d, %s index; skipped %d events for unknown products, %d after now",
        model.version,
        len(interactions.customer_ids),
        len(interactions.item_ids),
        in_stock_count,
        len(index),
        vectors.shape[1],
        index.kind,
        interactions.unknown_product_events,
        interactions.future_events,
    )
    return model
