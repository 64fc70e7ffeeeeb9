"""Campaign parameters become the recommendation rules; contradictions are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError


def _params(**overrides):  # type: ignore[no-untyped-def]
    from campaigns.params import CampaignParams

    return CampaignParams(catalog="catalog.csv", customers="c.csv", events="e.csv", **overrides)


def test_brand_boosts_blocks_and_diversity_reach_the_rules() -> None:
    from recs.rules import BOOST

    rules = _params(
        boost_brands="Aurelia, Lumen,",
        block_brands=" Fjord ",
        boost_categories="Coffee",
        diversity="mmr",
        mmr_lambda=0.4,
        max_per_category=1,
    ).rules()
    assert dict(rules.boost_brands) == {"Aurelia": BOOST, "Lumen": BOOST}
    assert rules.block_brands == frozenset({"Fjord"})
    assert dict(rules.boost_categories) == {"Coffee": BOOST}
    assert (rules.diversity, rules.mmr_lambda, rules.max_per_category) == ("mmr", 0.4, 1)
    defaults = _params().rules()
    assert (defaults.diversity, defaults.max_per_category, dict(defaults.boost_brands)) == (
        "cap",
        2,
        {},
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"boost_brands": "Fjord, Lumen", "block_brands": "Fjord"}, "brand 'Fjord' is both"),
        ({"boost_categories": "Coffee", "block_categories": "Coffee"}, "category 'Coffee' is both"),
        ({"diversity": "random"}, "diversity"),
        ({"mmr_lambda": 1.5}, "mmr_lambda"),
        ({"max_per_category": 0}, "max_per_category"),
    ],
)
def test_contradictory_or_out_of_range_rules_are_refused(overrides, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        _params(**overrides)


def test_rule_names_take_the_catalogs_spelling_whatever_their_case() -> None:
    from decimal import Decimal

    from retail.types import Product

    products = [
        Product(
            id=f"p{i}", title="x", brand=brand, category=category, price=Decimal("1"),
            currency="EUR", image="p.jpg", url="https://shop.example/p",
        )
        for i, (brand, category) in enumerate([("Lumen", "Coffee"), ("Kestrel & Co", "Tea")])
    ]  # fmt: skip
    given = _params(block_brands="lumen, kestrel  & co", boost_categories="TEA")
    params, typos = given.model_copy(update={"boost_brands": "Lumn"}).spelt_as_in(products)
    rules = params.rules()
    assert rules.block_brands == frozenset({"Lumen", "Kestrel & Co"})
    assert dict(rules.boost_categories).keys() == {"Tea"}
    assert dict(rules.boost_brands).keys() == {"Lumn"}  # unknown: kept, and warned of as a typo
    assert typos == [
        "boost_brands: no brand named 'Lumn' in the catalog, so it changes nothing "
        "(did you mean 'Lumen'?)"
    ]


def test_a_name_boosted_and_blocked_in_different_cases_is_refused() -> None:
    with pytest.raises(ValidationError, match="both boosted and blocked"):
        _params(boost_brands="LUMEN", block_brands="lumen")
