from __future__ import annotations

import math
from datetime import datetime

import pytest

from recs.errors import RecsError
from recs.interactions import build_interactions
from tests.recs.factories import NOW, event, product

CATALOG = [product("B"), product("A"), product("C")]


def test_rows_and_columns_are_sorted_by_id() -> None:
    data = build_interactions(CATALOG, [event("c2", "C"), event("c1", "A")], now=NOW)
    assert data.item_ids == ("A", "B", "C")
    assert data.customer_ids == ("c1", "c2")
    assert data.item_index["C"] == 2 and data.customer_index["c2"] == 1


def test_weights_follow_event_type_and_halve_every_half_life() -> None:
    events = [
        event("c1", "A", "view", days_ago=0),
        event("c1", "B", "cart", days_ago=0),
        event("c1", "C", "purchase", days_ago=30),
    ]
    data = build_interactions(CATALOG, events, now=NOW, half_life_days=30)
    row = data.weights.toarray()[0]
    assert row == pytest.approx([1.0, 3.0, 2.5])


def test_repeated_events_add_up() -> None:
    events = [event("c1", "A", days_ago=0), event("c1", "A", days_ago=0)]
    data = build_interactions(CATALOG, events, now=NOW, half_life_days=math.inf)
    assert data.weights[0, 0] == pytest.approx(2.0)


def test_campaign_feedback_events_carry_no_weight() -> None:
    events = [event("c1", "A", kind, days_ago=0) for kind in ("exposure", "open", "click")]
    events.append(event("c1", None, "unsubscribe", days_ago=0))
    data = build_interactions(CATALOG, events, now=NOW)
    assert data.weights.nnz == 0
    assert data.customer_ids == ()


def test_unknown_product_ids_are_ignored_and_counted() -> None:
    events = [event("c1", "A"), event("c1", "GONE"), event("c2", "ALSO-GONE", "purchase")]
    data = build_interactions(CATALOG, events, now=NOW)
    assert data.unknown_product_events == 2
    assert data.customer_ids == ("c1",)
    assert data.weights.nnz == 1


def test_events_after_now_are_not_yet_known() -> None:
    events = [event("c1", "A", days_ago=1), event("c1", "B", "purchase", days_ago=-1)]
    data = build_interactions(CATALOG, events, now=NOW)
    assert data.future_events == 1
    assert data.weights[0, 1] == 0 and data.purchased.nnz == 0


def test_purchases_are_remembered_whatever_their_age_or_weight() -> None:
    events = [event("c1", "B", "purchase", days_ago=3_000)]
    data = build_interactions(CATALOG, events, now=NOW, event_weights={})
    assert data.purchased[0, 1]
    assert data.weights.nnz == 0


def test_duplicate_product_ids_are_refused() -> None:
    with pytest.raises(RecsError, match="'A' occurs twice"):
        build_interactions([product("A"), product("A")], [], now=NOW)


def test_now_must_carry_a_time_zone() -> None:
    with pytest.raises(RecsError, match="time zone"):
        build_interactions(CATALOG, [], now=datetime(2026, 5, 1))
