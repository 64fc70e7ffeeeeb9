from __future__ import annotations

from datetime import timedelta

import pytest

from recs import fit
from recs.evaluate import hit_rate_at_k, holdout_by_time, popularity_baseline, recall_at_k
from recs.synthetic import synthetic_shop
from tests.recs.factories import NOW, event


def test_recall_and_hit_rate_count_hits_in_the_top_k() -> None:
    recommended = {"a": ["x", "y", "z"], "b": ["x"]}
    relevant = {"a": {"y", "q"}, "b": {"z"}, "c": {"x"}, "d": set()}
    assert recall_at_k(recommended, relevant, 3) == pytest.approx((0.5 + 0 + 0) / 3)
    assert recall_at_k(recommended, relevant, 1) == 0.0
    assert hit_rate_at_k(recommended, relevant, 3) == pytest.approx(1 / 3)


def test_holdout_truth_is_new_purchases_after_the_cutoff() -> None:
    events = [
        event("c1", "a", "purchase", days_ago=10),
        event("c1", "a", "purchase", days_ago=1),  # a repeat: never re-offered, not truth
        event("c1", "b", "purchase", days_ago=1),
        event("c1", "c", "view", days_ago=1),
    ]
    train, relevant = holdout_by_time(events, NOW - timedelta(days=5))
    assert train == events[:1]
    assert relevant == {"c1": {"b"}}


def test_the_recommender_beats_popularity_on_a_planted_holdout() -> None:
    shop = synthetic_shop(n_customers=600, n_products=120, n_categories=6, seed=3)
    cutoff = shop.now - timedelta(days=15)
    train, relevant = holdout_by_time(shop.events, cutoff)
    asked = sorted(relevant)
    popular = popularity_baseline(shop.products, train, asked, now=cutoff, n=10)
    model = fit(shop.products, train, now=cutoff)
    picks = {c: p.product_ids for c, p in model.recommend(asked, n=10).items()}
    assert recall_at_k(picks, relevant, 10) > 1.5 * recall_at_k(popular, relevant, 10)
