"""Checks on a creative's generated copy before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from compliance.claims import ClaimsPolicy, PricePoint, check_claims
from compliance.own_values import scan_own_values
from compliance.pii import AllowList, scan_text
from retail.types import Customer, Product


def copy_problems(
    texts: Sequence[str],
    *,
    customer: Customer,
    shown: Sequence[Product],
    allow: AllowList,
    policy: ClaimsPolicy,
    generated_media: bool = False,
    struck_prices: Mapping[str, Decimal] | None = None,
    price_history: Sequence[PricePoint] = (),
) -> list[str]:
    """Problems in the copy (empty: fine): the recipient's own values, a PII scan, and
    the claims rules (catalog prices of the products shown, discounts, policy phrases,
    and, when the creative shows `generated_media`, the AI label).

    `shown` are the products the creative shows (its storyboard says which: a hero
    template shows one, a carousel three); each one's price must be in the copy (its
    sale price when the feed has one). Products of the Pick that are not shown are not
    checked, even when one of them has the same title as a shown one (size or colour
    variants often do). `struck_prices` (product id → the "was" price the creative
    shows) are held to the feed's regular price and, where `price_history` knows the
    product, to its lowest prior price (`compliance.claims.check_claims`).
    """
    problems = [f"pii: recipient's {f.field} in copy" for f in scan_own_values(texts, customer)]
    for text in texts:
        problems += [f"pii: {f.type} in copy" for f in scan_text(text, allow=allow)]
    problems += check_claims(
        texts,
        products=shown,
        locale=customer.locale,
        policy=policy,
        require_ai_label=generated_media,
        shown_prior_prices=struck_prices,
        price_history=price_history,
    ).problems
    return problems
