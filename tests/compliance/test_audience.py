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
        country="DE",
    )


def test_opt_in_country_needs_granted_provable_consent_and_no_suppression() -> None:
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


def _in(country: str, cid: str, consent: Consent, proven: bool = True) -> Customer:
    return _customer(cid, consent, proven).model_copy(update={"country": country})


def test_opt_out_country_accepts_unknown_but_never_denied() -> None:
    customers = [
        _in("US", "U1", Consent.unknown, proven=False),
        _in("US", "U2", Consent.denied),
        _in("DE", "D1", Consent.unknown, proven=False),
        _in("DE", "D2", Consent.granted),
        _in("ZZ", "Z1", Consent.unknown, proven=False),  # unknown country: opt-in
    ]
    audience = select_audience(customers, suppressed=set())
    assert [c.id for c in audience.eligible] == ["U1", "D2"]
    assert audience.excluded == {
        "U2": Exclusion.consent_denied,
        "D1": Exclusion.consent_unknown,
        "Z1": Exclusion.consent_unknown,
    }


def test_consent_policy_is_configurable_per_country() -> None:
    from compliance.audience import ConsentPolicy

    policy = ConsentPolicy.with_overrides({"de": "opt-out", "US": "opt-in"})
    customers = [_in("DE", "D1", Consent.unknown, False), _in("US", "U1", Consent.unknown, False)]
    audience = select_audience(customers, suppressed=set(), policy=policy)
    assert [c.id for c in audience.eligible] == ["D1"]
    assert audience.excluded == {"U1": Exclusion.consent_unknown}


def test_frequency_cap_excludes_customers_at_the_limit() -> None:
    from compliance.audience import FrequencyCap

    customers = [_customer(cid, Consent.granted) for cid in ("A", "B", "C")]
    audience = select_audience(
        customers, suppressed=set(), recent_sends={"A": 3, "B": 2}, cap=FrequencyCap(3, 7)
    )
    assert [c.id for c in audience.eligible] == ["B", "C"]
    assert audience.excluded == {"A": Exclusion.frequency_cap}


def test_holdout_is_deterministic_and_close_to_its_share() -> None:
    from compliance.audience import Holdout

    customers = [_customer(f"C{i}", Consent.granted) for i in range(4000)]
    holdout = Holdout(share=0.1, experiment="spring", salt="s")
    first = select_audience(customers, suppressed=set(), holdout=holdout)
    second = select_audience(customers, suppressed=set(), holdout=holdout)
    assert first.held_out() == second.held_out()
    assert 0.085 < len(first.held_out()) / 4000 < 0.115
    other = select_audience(customers, suppressed=set(), holdout=Holdout(0.1, "autumn", "s"))
    assert set(other.held_out()) != set(first.held_out())


def test_suppressed_customer_is_excluded_as_suppressed_even_when_held_out() -> None:
    from compliance.audience import Holdout

    customers = [_customer(f"C{i}", Consent.granted) for i in range(50)]
    audience = select_audience(
        customers, suppressed={f"C{i}" for i in range(50)}, holdout=Holdout(0.5)
    )
    assert set(audience.excluded.values()) == {Exclusion.suppressed}
