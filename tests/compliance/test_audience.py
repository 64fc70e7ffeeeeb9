"""Only provable consent and no suppression gets anything; every exclusion has one reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from compliance.audience import Exclusion, select_audience, unsubscribed_in
from compliance.suppression import SuppressionList
from retail.types import Consent, Customer, Event


def _customer(cid: str, consent: Consent, proven: bool = True) -> Customer:
    return Customer(
        id=cid,
        email=f"{cid.lower()}@example.com",
        first_name="Ann",
        marketing_consent=consent,
        consent_timestamp=datetime(2025, 1, 1, tzinfo=UTC) if proven else None,
        consent_source="checkout" if proven else None,
    )


def test_only_granted_and_unsuppressed_customers_are_eligible() -> None:
    customers = [
        _customer("A", Consent.granted),
        _customer("B", Consent.denied),
        _customer("C", Consent.unknown),
        _customer("D", Consent.granted),
        _customer("E", Consent.granted, proven=False),
    ]
    audience = select_audience(customers, suppressed={"D"})
    assert [c.id for c in audience.eligible] == ["A"]
    assert audience.excluded == {
        "B": Exclusion.consent_denied,
        "C": Exclusion.consent_unknown,
        "D": Exclusion.suppressed,
        "E": Exclusion.consent_unproven,
    }
    assert audience.considered == 5
    assert sum(audience.counts().values()) == 4


def test_suppression_overrides_granted_consent_and_is_recorded_once(tmp_path: Path) -> None:
    suppression = SuppressionList(tmp_path / "state.sqlite")
    assert suppression.add(["A", "B"], reason="unsubscribe", source="test") == 2
    assert suppression.add(["A"], reason="bounce", source="test") == 0
    assert "A" in suppression and "Z" not in suppression
    audience = select_audience([_customer("A", Consent.granted)], suppressed=suppression.ids())
    assert audience.excluded == {"A": Exclusion.suppressed}


def test_unsubscribe_events_count_as_suppression() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event(customer_id="A", product_id="P1", type="view", timestamp=at),
        Event(customer_id="B", type="unsubscribe", timestamp=at),
    ]
    assert unsubscribed_in(events) == {"B"}
