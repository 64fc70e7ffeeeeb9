"""Claims in generated copy: prices as in the catalog, documented discounts, policy phrases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from compliance.claims import (
    PolicyError,
    PricePoint,
    check_claims,
    documented_prior_price,
    load_policy,
)
from retail.types import Product

MUG = Product(
    id="P1",
    title="Mug",
    brand="Acme",
    category="Kitchen",
    price=Decimal("19.99"),
    currency="EUR",
    image="m.jpg",
    url="https://shop.example/p1",
)
POLICY = load_policy()


def _check(*texts: str, **kwargs):
    return check_claims(list(texts), products=[MUG], locale="de_DE", policy=POLICY, **kwargs)


def test_clean_copy_with_the_catalog_price_and_label_passes() -> None:
    result = _check("Picked for you", "19,99\xa0€", "AI-generated video · free shipping")
    assert result.ok, result.problems


def test_a_price_that_is_not_the_catalog_price_fails() -> None:
    result = _check("Only 17,99 €", "AI-generated")
    assert any(p.startswith("price: catalog price of P1") for p in result.problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Free mug with every order", '"free" outside'),
        ("The best mug in town", 'superlative "best"'),
        ("Last chance to get it", 'urgency "last chance"'),
        ("Our #1 mug", 'superlative "#1"'),
    ],
)
def test_policy_phrases_are_refused(text: str, expected: str) -> None:
    result = _check(text, "19,99\xa0€", "AI-generated")
    assert any(expected in p for p in result.problems), result.problems


def test_a_missing_ai_label_fails_only_where_the_creative_shows_generated_media() -> None:
    generated = _check("19,99\xa0€", require_ai_label=True).problems
    assert '"AI-generated" label missing' in " ".join(generated)
    assert _check("19,99\xa0€", "Personalized for you").ok, "a template's own copy needs none"


def test_discount_without_documented_prior_price_fails() -> None:
    result = _check("Save 20 % today", "19,99\xa0€", "AI-generated")
    assert any("no prior price is documented" in p for p in result.problems)


def _history() -> list[PricePoint]:
    return [
        PricePoint("P1", Decimal("29.99"), datetime(2026, 8, 1, tzinfo=UTC)),
        PricePoint("P1", Decimal("24.99"), datetime(2026, 9, 20, tzinfo=UTC)),
        PricePoint("P1", Decimal("27.99"), datetime(2026, 10, 10, tzinfo=UTC)),
        PricePoint("P1", Decimal("19.99"), datetime(2026, 11, 1, tzinfo=UTC)),
    ]


def test_prior_price_is_the_lowest_in_the_30_days_before_the_reduction() -> None:
    # 24.99 was in force until Oct 10, inside the window that starts Oct 2.
    current = datetime(2026, 11, 1, tzinfo=UTC)
    assert documented_prior_price(_history(), current_since=current, lookback_days=30) == (
        Decimal("24.99")
    )
    assert documented_prior_price(_history(), current_since=current, lookback_days=15) == (
        Decimal("27.99")
    )


def test_a_struck_price_must_be_the_documented_prior_price() -> None:
    texts = ("Was 29,99 €, now 19,99\xa0€", "AI-generated")
    bad = _check(*texts, shown_prior_prices={"P1": Decimal("29.99")}, price_history=_history())
    assert any("lowest in 30 days was 24.99" in p for p in bad.problems)
    good = _check(*texts, shown_prior_prices={"P1": Decimal("24.99")}, price_history=_history())
    assert good.ok, good.problems


def test_a_broken_policy_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text("superlatives: best\n")
    with pytest.raises(PolicyError, match=r"claims.yaml: superlatives: expected a list"):
        load_policy(path)


# A feed sale: the mug costs 14.99 now, its regular price 19.99 is the "was".
MUG_ON_SALE = MUG.model_validate(MUG.model_dump() | {"sale_price": Decimal("14.99")})
WAS_NOW = ("Was 19,99\xa0€, now 14,99\xa0€ (−25 %)", "AI-generated")


def _sale_check(*texts: str, **kwargs):
    return check_claims(
        list(texts), products=[MUG_ON_SALE], locale="de_DE", policy=POLICY, **kwargs
    )


def test_a_feed_sale_is_shown_at_its_sale_price_with_the_regular_price_struck() -> None:
    good = _sale_check(*WAS_NOW, shown_prior_prices={"P1": Decimal("19.99")})
    assert good.ok, good.problems
    regular = _sale_check("Only 19,99\xa0€", "AI-generated")
    assert regular.problems == ["price: sale price of P1 not shown as '14,99\\xa0€'"]


def test_a_struck_price_other_than_the_feeds_regular_price_fails() -> None:
    tampered = _sale_check(*WAS_NOW, shown_prior_prices={"P1": Decimal("24.99")})
    assert tampered.problems == [
        "discount: struck price of P1 shown as 24.99 but the feed's regular price is 19.99 "
        "(sale price 14.99)"
    ]


def test_a_struck_price_without_a_feed_sale_or_a_history_is_not_vouched_for() -> None:
    result = _check("Was 24,99 €, now 19,99\xa0€", shown_prior_prices={"P1": Decimal("24.99")})
    assert result.problems == [
        "discount: struck price of P1 shown as 24.99 is not vouched for: the feed has no sale "
        "price for it and no price history is known"
    ]
    unshown = _check("19,99\xa0€", shown_prior_prices={"P9": Decimal("24.99")})
    assert unshown.problems == [
        "discount: a struck price is shown for P9, which the creative does not show"
    ]


def _sale_history(lowest: str) -> list[PricePoint]:
    return [
        PricePoint("P1", Decimal(lowest), datetime(2026, 10, 1, tzinfo=UTC)),
        PricePoint("P1", Decimal("19.99"), datetime(2026, 10, 20, tzinfo=UTC)),
        PricePoint("P1", Decimal("14.99"), datetime(2026, 11, 1, tzinfo=UTC)),
    ]


def test_a_feed_sale_still_obeys_the_lowest_prior_price_where_a_history_is_known() -> None:
    # 17.99 was in force on Oct 2 … 20, inside the 30 days before the sale began.
    prior = {"P1": Decimal("19.99")}
    bad = _sale_check(*WAS_NOW, shown_prior_prices=prior, price_history=_sale_history("17.99"))
    assert bad.problems == [
        "discount: prior price of P1 shown as 19.99 but the lowest in 30 days was 17.99"
    ]
    good = _sale_check(*WAS_NOW, shown_prior_prices=prior, price_history=_sale_history("21.99"))
    assert good.ok, good.problems
    stale = _sale_check(
        *WAS_NOW, shown_prior_prices=prior, price_history=_sale_history("21.99")[:2]
    )
    assert stale.problems == [
        "discount: the price history of P1 does not show its current price 14.99"
    ]
