"""From a fitted pipeline to one Pick per customer: ranking, then the campaign's rules."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from recs.coldstart import ContentSimilarity, group_popular
from recs.errors import RecsError
from recs.explore import explore, propensity_marker
from recs.matrix import in_rows
from recs.pipeline import Pipeline
from recs.rules import Rules, allowed_items, item_boosts, normalise, purchase_exclusions, select
from retail.types import Pick

logger = logging.getLogger(__name__)


def serve(
    pipeline: Pipeline,
    customer_ids: Sequence[str],
    *,
    n: int = 3,
    now: datetime,
    rules: Rules | None = None,
    groups: Mapping[str, str] | None = None,
) -> dict[str, Pick]:
    """One Pick per distinct customer id, in the order asked, from a fitted pipeline.

    Never recommends an out-of-stock or blocked product, nor one the customer bought
    (unless the rules let that category come back after `repurchase_days`). Customers
    with no history get (group) popularity; a customer left with nothing gets no Pick.
    Each reason is machine-readable, one of: a ranked pick
    `source=als+cooc;top=recency_item,cat_affinity` (`top=rrf` when no ranker could be
    trained), popularity `fallback=popular` or `fallback=popular-locale`, a new product
    `content(sim=0.42)`, or the exploration slot `explore(p=0.0125)` (its propensity).
    When the rules explore (ε > 0) and the last slot did not, its own reason ends with
    that slot's propensity, `;p=0.9625` (1 − ε + ε/m): every pick logs the propensity of
    its last slot (`recs.offpolicy` reads both forms).
    """
    if n < 1:
        raise RecsError(f"n must be at least 1, got {n}")
    if pipeline.history is None:
        raise RecsError("the pipeline is not fitted: call fit(log, now=...) first")
    rules = rules or Rules()
    unique = list(dict.fromkeys(customer_ids))
    shared = _Shared(pipeline, now.timestamp(), n, rules, groups)
    picks: dict[str, Pick] = {}
    # In batches: the pool, reasons and content similarities are dense per customer, so a
    # whole customer base at once would not fit in memory. Every draw and rule is per
    # customer, so the batching does not change any Pick.
    size = pipeline.config.batch_users
    for begin in range(0, len(unique), size):
        picks.update(_serve_batch(shared, unique[begin : begin + size]))
    if len(picks) < len(unique):
        logger.info("%d customers had nothing left to recommend", len(unique) - len(picks))
    return picks


class _Shared:
    """What every batch of `serve` reads: the rules applied to the catalog, once."""

    def __init__(
        self,
        pipeline: Pipeline,
        now: float,
        n: int,
        rules: Rules,
        groups: Mapping[str, str] | None,
    ) -> None:
        history = pipeline.history
        assert history is not None
        self.pipeline = pipeline
        self.history = history
        self.n = n
        self.rules = rules
        self.groups = groups
        log = history.log
        self.index = {u: i for i, u in enumerate(log.user_ids)}
        self.allowed = allowed_items(log, rules)
        self.exclude = purchase_exclusions(log, now=now, rules=rules)
        self.boosts = item_boosts(log, rules)
        self.pool = max(rules.pool, n)
        self.popular_items, _ = group_popular(history, None, self.allowed, self.pool)
        self._fallback: tuple[np.ndarray, np.ndarray, dict[str, int]] | None = None
        self._content: ContentSimilarity | None = None

    def fallback(self) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """(items, scores) of (group) popularity per group code, and the codes by name."""
        if self._fallback is None:
            codes, code_of = _group_codes(self.history.log.user_ids, self.groups)
            items, scores = group_popular(self.history, codes, self.allowed, 2 * self.pool)
            self._fallback = (items, scores, code_of)
        return self._fallback

    def content(self) -> ContentSimilarity:
        """Never-interacted items, indexed by text (built on first use)."""
        if self._content is None:
            self._content = ContentSimilarity(self.history, self.allowed)
        return self._content


def _serve_batch(shared: _Shared, unique: list[str]) -> dict[str, Pick]:
    """The Picks of one batch of distinct customer ids (see `serve`)."""
    pipeline, history, n, rules = shared.pipeline, shared.history, shared.n, shared.rules
    log = history.log
    rows = np.array([shared.index.get(c, -1) for c in unique], dtype=np.int64)
    allowed, exclude, boosts = shared.allowed, shared.exclude, shared.boosts
    categories = log.item_category

    pool = shared.pool
    # Ranked candidates, then popular ones below them, so that the diversity rule can
    # reach other categories even for a single-minded customer.
    width = 2 * pool
    items = np.full((len(unique), width), -1, dtype=np.int64)
    scores = np.full((len(unique), width), -np.inf)
    reasons = np.full((len(unique), width), "", dtype=object)
    popular_items = shared.popular_items
    warm = np.flatnonzero((rows >= 0) & (history.user_count[np.maximum(rows, 0)] > 0))
    if len(warm):
        ranked = pipeline.rank(rows[warm], pool, exclude=exclude, allowed=allowed, explain=True)
        items[warm, :pool] = ranked.items
        scores[warm, :pool] = normalise(ranked.scores)
        head = np.full(pool, -1, dtype=np.int64)
        head[: popular_items.shape[1]] = popular_items[-1]
        extra = np.broadcast_to(head, (len(warm), pool))
        taken = sp.csr_matrix(
            (np.ones(int((ranked.items >= 0).sum())), np.nonzero(ranked.items >= 0)),
            shape=ranked.items.shape,
        )
        taken = sp.csr_matrix(
            (taken.data, np.maximum(ranked.items, 0)[ranked.items >= 0], taken.indptr),
            shape=(len(warm), history.n_items),
        )
        usable = (extra >= 0) & ~in_rows(extra, exclude[rows[warm]]) & ~in_rows(extra, taken)
        items[warm, pool:] = np.where(usable, extra, -1)
        scores[warm, pool:] = np.where(usable, -1.0 - np.arange(pool) / pool, -np.inf)
        reasons[warm, pool:] = "fallback=popular"
        scores[warm] += np.where(items[warm] >= 0, boosts[np.maximum(items[warm], 0)], 0.0)
        sources = np.full((len(unique), width), -1, dtype=np.int64)
        sources[warm, :pool] = ranked.sources
    cold = np.setdiff1d(np.arange(len(unique)), warm)
    if len(cold):
        fallback_items, fallback_scores, code_of = shared.fallback()
        group = np.full(len(cold), len(fallback_items) - 1)
        if code_of:
            groups = shared.groups or {}
            asked = np.array([code_of.get(groups.get(unique[i], ""), -1) for i in cold])
            group = np.where(asked >= 0, asked, group)
        got = fallback_items.shape[1]
        items[cold, :got] = fallback_items[group]
        scores[cold, :got] = normalise(fallback_scores[group])
        scores[cold] += np.where(items[cold] >= 0, boosts[np.maximum(items[cold], 0)], 0.0)
        is_group = group < len(fallback_items) - 1
        reasons[cold] = np.where(is_group, "fallback=popular-locale", "fallback=popular")[:, None]

    chosen, chosen_scores = select(items, scores, categories, n, rules)
    rowsr = np.arange(len(unique))[:, None]
    picked = np.where(chosen >= 0, items[rowsr, np.maximum(chosen, 0)], -1)
    picked_reason = np.where(chosen >= 0, reasons[rowsr, np.maximum(chosen, 0)], "")
    if len(warm) and ranked.features is not None:
        # SHAP values only for the shown items: the pool is ten times larger.
        shown_r, shown_c = np.nonzero((chosen[warm] >= 0) & (chosen[warm] < pool))
        x = ranked.features[shown_r, chosen[warm][shown_r, shown_c]]
        for i, top in enumerate(pipeline.top_features(x)):
            row_i, col_i = warm[shown_r[i]], shown_c[i]
            bits = int(sources[row_i, chosen[row_i, col_i]])
            picked_reason[row_i, col_i] = pipeline.reason(bits, top)

    # A never-bought-by-anyone product similar to the customer's history takes one slot
    # (not the exploration slot), so new arrivals can be shown before they sell.
    if len(warm):
        cold_item, similarity = shared.content().best(rows[warm])
        slot = n - 2 if n >= 2 else 0
        for r in np.flatnonzero(
            (cold_item >= 0) & (similarity >= rules.cold_item_similarity)
        ).tolist():
            row = warm[r]
            others = np.delete(picked[row], slot)
            same = (
                0
                if categories is None
                else int((categories[others[others >= 0]] == categories[cold_item[r]]).sum())
            )
            if cold_item[r] not in picked[row] and (
                rules.diversity != "cap" or same < rules.max_per_category
            ):
                picked[row, slot] = cold_item[r]
                chosen_scores[row, slot] = float(similarity[r])
                picked_reason[row, slot] = f"content(sim={similarity[r]:.2f})"

    # The pool has empty (-1) slots anywhere in a row: exploration draws among the filled
    # ones not shown in the other slots, so its logged propensity is exact.
    explores, position, propensity = explore(
        unique, items, picked, epsilon=rules.epsilon, seed=rules.seed
    )
    picks: dict[str, Pick] = {}
    for r, customer_id in enumerate(unique):
        row_items = picked[r].tolist()
        row_scores = chosen_scores[r].tolist()
        row_reasons = picked_reason[r].tolist()
        if explores[r]:
            row_items[-1] = int(items[r, position[r]])
            row_scores[-1] = float(scores[r, position[r]])
            row_reasons[-1] = f"explore(p={propensity[r]:.4g})"
        elif rules.epsilon > 0 and row_items[-1] >= 0:
            # The greedy product's propensity too: every pick is then a logged round.
            row_reasons[-1] += propensity_marker(float(propensity[r]))
        keep = [i for i, item in enumerate(row_items) if item >= 0]
        if not keep:
            continue
        picks[customer_id] = Pick(
            customer_id=customer_id,
            product_ids=tuple(log.item_ids[row_items[i]] for i in keep),
            scores=tuple(round(float(row_scores[i]), 6) for i in keep),
            reasons=tuple(str(row_reasons[i]) for i in keep),
            model_version=pipeline.version,
        )
    return picks


def _group_codes(
    user_ids: Sequence[str], groups: Mapping[str, str] | None
) -> tuple[np.ndarray | None, dict[str, int]]:
    """Group code per user (-1 = none), and the code of each group name."""
    if not groups:
        return None, {}
    names = sorted(set(groups.values()))
    code_of = {g: i for i, g in enumerate(names)}
    codes = np.array([code_of.get(groups.get(u, ""), -1) for u in user_ids], dtype=np.int64)
    return codes, code_of


def reason_counts(picks: Mapping[str, Pick]) -> tuple[dict[str, int], dict[str, int]]:
    """(slots per candidate source, slots per kind of reason) over all picks."""
    sources: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for pick in picks.values():
        for reason in pick.reasons:
            head = reason.split(";", 1)[0]
            if head.startswith("source="):
                kinds["ranked"] += 1
                sources.update(head.removeprefix("source=").split("+"))
            else:
                kinds[head.split("(", 1)[0]] += 1
    return dict(sources), dict(kinds)
