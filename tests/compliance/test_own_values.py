"""Generated copy must not carry the recipient's email, phone or last name."""

from __future__ import annotations

import pytest

from compliance.own_values import scan_own_values
from compliance.pseudonym import pseudonymize
from retail.types import Customer

ANN = Customer(
    id="C1", email="ann.lee@example.com", first_name="Ann", last_name="Lee", phone="+49 30 1234567"
)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("Write to ANN.LEE@example.com today", "email"),
        ("Hi Ann Lee, new arrivals", "last_name"),
        ("Call 030/123-4567 now", "phone"),
        ("+49 (30) 1234567", "phone"),
    ],
)
def test_own_values_are_found(text: str, field: str) -> None:
    findings = scan_own_values(["clean", text], ANN)
    assert [(f.field, f.text_index) for f in findings] == [(field, 1)]
    assert findings[0].end > findings[0].start


@pytest.mark.parametrize(
    "text", ["Hi Ann, picked for you", "Only €1,234.56", "Fleece jacket", "Order 2026-11-26"]
)
def test_first_name_prices_and_lookalikes_pass(text: str) -> None:
    assert scan_own_values([text], ANN) == []


def test_pseudonyms_are_keyed_stable_and_distinct() -> None:
    a = pseudonymize(b"k" * 32, "C1")
    assert a == pseudonymize(b"k" * 32, "C1")
    assert a != pseudonymize(b"j" * 32, "C1")
    assert a != pseudonymize(b"k" * 32, "C2")
    assert "C1" not in a
