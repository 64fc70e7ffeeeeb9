"""The model registry stores models whole, gates approval, and serves the newest approved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recs.errors import RecsError
from recs.registry import Gate, Registry


def _save(text: str):
    return lambda folder: (folder / "model.bin").write_text(text)


def test_first_model_is_approved_when_it_beats_popularity(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    record = registry.register(
        "v1",
        _save("a"),
        data_hash="d1",
        params={"k": 1},
        metrics={"ndcg@10": 0.3, "baseline_ndcg@10": 0.1},
        gate=Gate(),
    )
    assert record.approved and record.approved_by == "gate"
    assert registry.approved().version == "v1"
    assert (registry.path("v1") / "model.bin").read_text() == "a"


def test_first_model_worse_than_popularity_is_not_approved(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    record = registry.register(
        "v1",
        _save("a"),
        data_hash="d",
        params={},
        metrics={"ndcg@10": 0.05, "baseline_ndcg@10": 0.1},
        gate=Gate(),
    )
    assert not record.approved and "does not beat popularity" in record.approval_note
    assert registry.approved() is None


def test_gate_allows_at_most_the_configured_drop(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.register(
        "v1", _save("a"), data_hash="d", params={}, metrics={"ndcg@10": 0.30}, gate=Gate()
    )
    time.sleep(0.01)
    slightly_worse = registry.register(
        "v2", _save("b"), data_hash="d2", params={}, metrics={"ndcg@10": 0.295}, gate=Gate()
    )
    assert slightly_worse.approved
    time.sleep(0.01)
    much_worse = registry.register(
        "v3", _save("c"), data_hash="d3", params={}, metrics={"ndcg@10": 0.28}, gate=Gate()
    )
    assert not much_worse.approved and "below" in much_worse.approval_note
    assert registry.approved().version == "v2"


def test_operator_approval_makes_a_model_current(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.register(
        "v1", _save("a"), data_hash="d", params={}, metrics={"ndcg@10": 0.3}, gate=Gate()
    )
    time.sleep(0.01)
    registry.register(
        "v2", _save("b"), data_hash="d", params={}, metrics={"ndcg@10": 0.1}, gate=Gate()
    )
    assert registry.approved().version == "v1"
    registry.approve("v2", by="operator", note="campaign needs the new catalog")
    assert registry.approved().version == "v2"
    with pytest.raises(RecsError, match="no model 'v9'"):
        registry.approve("v9", by="operator")


def test_a_failed_save_leaves_no_model_behind(tmp_path: Path) -> None:
    registry = Registry(tmp_path)

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        registry.register("v1", broken, data_hash="d", params={}, metrics={})
    assert registry.all() == []
    assert registry.get("v1") is None


def test_registering_the_same_version_twice_keeps_the_first(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    first = registry.register("v1", _save("a"), data_hash="d", params={}, metrics={})
    again = registry.register("v1", _save("b"), data_hash="d", params={}, metrics={})
    assert again == first
    assert (registry.path("v1") / "model.bin").read_text() == "a"


def test_a_product_click_from_an_email_counts_as_interest() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from recs.dataset import from_retail
    from retail.types import Event, Product

    product = Product(
        id="P1",
        title="Mug",
        brand="A",
        category="K",
        price=Decimal("1"),
        currency="EUR",
        image="m.jpg",
        url="https://s.example/p1",
    )
    at = datetime(2026, 1, 1, tzinfo=UTC)
    log = from_retail(
        [product],
        [
            Event(customer_id="C1", product_id="P1", type="click", timestamp=at),
            Event(customer_id="C2", type="open", timestamp=at),
            Event(customer_id="C2", type="click", timestamp=at),
        ],
    )
    assert log.user_ids == ("C1",) and list(log.item) == [0] and list(log.kind) == [0]
