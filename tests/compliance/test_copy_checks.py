"""A creative's copy is checked for the recipient's values, PII and claims in one call."""

from __future__ import annotations

from decimal import Decimal

from compliance.claims import load_policy
from compliance.copy_checks import copy_problems
from compliance.pii import AllowList
from retail.types import Customer, Product

ANN = Customer(
    id="C1", email="ann.lee@example.com", first_name="Ann", last_name="Lee", locale="en_US"
)
MUG = Product(
    id="P1",
    title="Acme Mug",
    brand="Acme",
    category="Kitchen",
    price=Decimal("9.99"),
    currency="EUR",
    image="m.jpg",
    url="https://s.example/1",
)
LAMP = Product(
    id="P2",
    title="Desk Lamp",
    brand="Acme",
    category="Home",
    price=Decimal("49.99"),
    currency="EUR",
    image="l.jpg",
    url="https://s.example/2",
)


def _check(
    *texts: str, shown: tuple[Product, ...] = (MUG,), generated_media: bool = False
) -> list[str]:
    return copy_problems(
        list(texts),
        customer=ANN,
        shown=shown,
        allow=AllowList(["Acme"]),
        policy=load_policy(),
        generated_media=generated_media,
    )


def test_clean_copy_of_the_shown_product_passes() -> None:
    assert _check("Picked for you, Ann", "Acme Mug", "€9.99", "AI-generated") == []


def test_recipient_values_pii_and_claims_are_all_reported() -> None:
    problems = _check("Hi Ann Lee", "Acme Mug", "€8.99", "Call +1 202-555-0143", "best deal")
    assert "pii: recipient's last_name in copy" in problems
    assert any(p.startswith("pii: PHONE") for p in problems)
    assert any(p.startswith("price: catalog price of P1") for p in problems)
    assert not any("P2" in p for p in problems), "the lamp is not shown, so not checked"

    assert any('superlative "best"' in p for p in problems)
    assert not any("label" in p for p in problems), "a template's own copy needs no AI label"
    generated = _check("Acme Mug", "€9.99", generated_media=True)
    assert generated == ['label: "AI-generated" label missing'], generated


def test_every_shown_product_needs_its_price_in_the_copy() -> None:
    copy = ("Acme Mug", "€9.99", "Desk Lamp", "AI-generated")
    assert _check(*copy, shown=(MUG, LAMP)) == ["price: catalog price of P2 not shown as '€49.99'"]
    assert _check(*copy, "€49.99", shown=(MUG, LAMP)) == []


def test_a_struck_price_in_the_copy_is_held_to_the_feed() -> None:
    lamp = LAMP.model_validate(LAMP.model_dump() | {"sale_price": Decimal("39.99")})

    def check(was: str) -> list[str]:
        return copy_problems(
            ["Desk Lamp", f"€{was}", "€39.99", "−20 %"],
            customer=ANN,
            shown=(lamp,),
            allow=AllowList(["Acme"]),
            policy=load_policy(),
            struck_prices={"P2": Decimal(was)},
        )

    assert check("49.99") == []
    assert check("59.99") == [
        "discount: struck price of P2 shown as 59.99 but the feed's regular price is 49.99 "
        "(sale price 39.99)"
    ]
