"""Business rules after ranking: exclusions, boosts and blocks, and diversity.

All batched over users: `select` fills the slots one at a time for every user at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog
from recs.errors import RecsError
from recs.history import PURCHASE
from recs.matrix import SECONDS_PER_DAY, last_time_matrix

#: what a boosted category or brand adds to a candidate's normalised score (best 1, worst 0)
BOOST = 0.3


def fold_name(name: str) -> str:
    """A category or brand name as rules compare it: case and spacing do not count."""
    return " ".join(name.casefold().split())


def catalog_spelling(
    given: Iterable[str], known: Iterable[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """`given` names spelt as in `known` ("lumen" → "Lumen"), and for each name `known` lacks
    in any spelling, up to three close ones (most likely it is a typo of one of them).

    Unknown names are kept: a standing block list may name brands not sold right now.
    """
    known = sorted(set(known))
    spelling = {fold_name(k): k for k in known}
    names: list[str] = []
    unknown: dict[str, list[str]] = {}
    for name in given:
        found = spelling.get(fold_name(name))
        names.append(found or name)
        if found is None:
            unknown[name] = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return names, unknown


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({str(k): float(v) for k, v in mapping.items()})


@dataclass(frozen=True)
class Rules:
    """What a campaign allows and prefers; applied after the ranker, never learned."""

    #: a bought item may come back after this many days, but only in `repurchase_categories`
    #: (consumables); None = a bought item never comes back
    repurchase_days: float | None = None
    repurchase_categories: frozenset[str] = frozenset()
    #: "cap": at most `max_per_category` items per category while the pool allows;
    #: "mmr": maximal marginal relevance, trading relevance for new categories by `mmr_lambda`
    diversity: Literal["cap", "mmr"] = "cap"
    max_per_category: int = 2
    mmr_lambda: float = 0.7
    #: probability that the last slot shows a random eligible candidate instead
    epsilon: float = 0.05
    #: added to the user-normalised score (best candidate 1, worst 0) of matching items
    boost_categories: Mapping[str, float] = field(default_factory=dict)
    boost_brands: Mapping[str, float] = field(default_factory=dict)
    block_categories: frozenset[str] = frozenset()
    block_brands: frozenset[str] = frozenset()
    #: a never-interacted item this similar (TF-IDF cosine) to the user's history takes a slot
    cold_item_similarity: float = 0.3
    #: ranked candidates per user the rules choose from
    pool: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise RecsError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.max_per_category < 1:
            raise RecsError(f"max_per_category must be at least 1, got {self.max_per_category}")
        if self.diversity not in ("cap", "mmr"):
            raise RecsError(f"diversity must be 'cap' or 'mmr', got {self.diversity!r}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise RecsError(f"mmr_lambda must be in [0, 1], got {self.mmr_lambda}")
        if self.pool < 1:
            raise RecsError(f"pool must be at least 1, got {self.pool}")
        # Frozen copies, so a caller mutating its dict later cannot change a running campaign.
        for name in ("boost_categories", "boost_brands"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in ("repurchase_categories", "block_categories", "block_brands"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))

    def params(self) -> dict[str, Any]:
        """The rules as a JSON-able dict."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, Mapping):
                value = dict(sorted(value.items()))
            out[name] = value
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Rules:
        """The rules `params()` gave (as the audit log keeps them); names it does not know
        (a later version's) are ignored. Raises RecsError for values out of range."""
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        for name in ("repurchase_categories", "block_categories", "block_brands"):
            if name in known:
                known[name] = frozenset(known[name])
        return cls(**known)


def allowed_items(log: InteractionLog, rules: Rules) -> np.ndarray:
    """Bool per item: in stock (when known) and not blocked by category or brand."""
    ok = np.ones(log.n_items, dtype=bool) if log.item_in_stock is None else log.item_in_stock.copy()
    if rules.block_categories and log.item_category is not None:
        blocked = [i for i, c in enumerate(log.categories) if c in rules.block_categories]
        ok &= ~np.isin(log.item_category, blocked)
    if rules.block_brands and log.item_brand is not None:
        blocked = [i for i, b in enumerate(log.brands) if b in rules.block_brands]
        ok &= ~np.isin(log.item_brand, blocked)
    return ok


def item_boosts(log: InteractionLog, rules: Rules) -> np.ndarray:
    """Score bonus per item from the campaign's category and brand boosts."""
    boost = np.zeros(log.n_items, dtype=np.float64)
    if log.item_category is not None:
        by_code = np.array([rules.boost_categories.get(c, 0.0) for c in log.categories] or [0.0])
        boost += by_code[log.item_category]
    if log.item_brand is not None:
        by_code = np.array([rules.boost_brands.get(b, 0.0) for b in log.brands] or [0.0])
        boost += by_code[log.item_brand]
    return boost


def purchase_exclusions(log: InteractionLog, *, now: float, rules: Rules) -> sp.csr_matrix:
    """Users × items, nonzero where a past purchase keeps the item out of the Pick.

    A purchase blocks its item for good, unless the item's category is a repurchase
    category and the last purchase is at least `repurchase_days` old.
    """
    bought = (log.kind == PURCHASE) & (log.time < now)
    last = last_time_matrix(
        log.user[bought], log.item[bought], log.time[bought], (log.n_users, log.n_items)
    ).tocoo()
    keep = np.ones(last.nnz, dtype=bool)
    if rules.repurchase_days is not None and log.item_category is not None:
        codes = [i for i, c in enumerate(log.categories) if c in rules.repurchase_categories]
        consumable = np.isin(log.item_category[last.col], codes)
        old = (now - last.data) >= rules.repurchase_days * SECONDS_PER_DAY
        keep = ~(consumable & old)
    return sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (last.row[keep], last.col[keep])), shape=last.shape
    )


def normalise(scores: np.ndarray) -> np.ndarray:
    """Per row, finite scores mapped to [0, 1] (best 1); -inf stays -inf."""
    finite = np.isfinite(scores)
    hi = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    lo = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = np.where(finite, (scores - lo) / span, -np.inf)
    return np.where(np.isfinite(hi), out, -np.inf)


def select(
    items: np.ndarray, scores: np.ndarray, categories: np.ndarray | None, n: int, rules: Rules
) -> tuple[np.ndarray, np.ndarray]:
    """Choose `n` slots per row from a ranked pool under the diversity rule.

    Returns (positions into the pool, -1 when empty; the score each was chosen with).
    With "cap", a category already at `max_per_category` is skipped while any other
    candidate remains; with "mmr", the chosen score is λ·relevance − (1−λ)·[category seen]
    (at λ = 0 only a new category counts; ties go to the more relevant entry).
    """
    n_rows, width = items.shape
    chosen = np.full((n_rows, n), -1, dtype=np.int64)
    chosen_score = np.full((n_rows, n), -np.inf)
    taken = np.zeros(items.shape, dtype=bool)
    rel = np.where(items >= 0, scores, -np.inf)
    cat = (
        np.zeros(items.shape, np.int64) if categories is None else categories[np.maximum(items, 0)]
    )
    rows = np.arange(n_rows)
    for slot in range(min(n, width)):
        # same_cat[r, c]: how many chosen items share the category of pool entry c
        same = np.zeros(items.shape, dtype=np.int64)
        for prev in range(slot):
            pos = chosen[:, prev]
            prev_cat = np.where(pos >= 0, cat[rows, np.maximum(pos, 0)], -1)
            same += (cat == prev_cat[:, None]) & (pos[:, None] >= 0)
        score = np.where(taken, -np.inf, rel)
        finite = np.isfinite(score)
        if rules.diversity == "mmr":
            # Only finite entries are combined: at λ = 0, 0 × -inf would be NaN, and NaN
            # wins argmax, so an empty slot would be "chosen" and the row left empty.
            mmr = rules.mmr_lambda * np.where(finite, score, 0.0) - (1 - rules.mmr_lambda) * (
                same > 0
            )
            adjusted = np.where(finite, mmr, -np.inf)
        else:
            over = same >= rules.max_per_category
            # Over-cap entries stay eligible below everything else: a catalog with too few
            # categories still fills the Pick.
            adjusted = np.where(over & finite, score - 1e6, score)
        # Ties (all of a category at λ = 0) go to the more relevant entry.
        top = adjusted.max(axis=1, initial=-np.inf)
        best = np.argmax(np.where(adjusted == top[:, None], score, -np.inf), axis=1)
        ok = np.isfinite(adjusted[rows, best])
        chosen[ok, slot] = best[ok]
        chosen_score[ok, slot] = rel[ok, best[ok]]
        taken[rows[ok], best[ok]] = True
    return chosen, chosen_score
