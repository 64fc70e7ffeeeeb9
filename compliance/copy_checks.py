"""Checks on a creative's generated copy before anything is sent."""

from __future__ import annotations

from collections.abc import Sequence

from compliance.claims import ClaimsPolicy, check_claims
from compliance.own_values import scan_own_values
from compliance.pii import AllowList, scan_text
from retail.types import Customer, Product


def copy_problems(
    texts: Sequence[str],
    *,
    customer: Customer,
    products: Sequence[Product],
    allow: AllowList,
    policy: ClaimsPolicy,
) -> list[str]:
    """Problems in the copy (empty: fine): the recipient's own values, a PII scan, and
    the claims rules (catalog prices of the products shown, discounts, policy phrases,
    the AI label).

    `products` are the products of the customer's Pick; a product counts as shown when
    its title is in the copy (a hero template shows one, a carousel three).
    """
    problems = [f"pii: recipient's {f.field} in copy" for f in scan_own_values(texts, customer)]
    for text in texts:
        problems += [f"pii: {f.type} in copy" for f in scan_text(text, allow=allow)]
    blob = "\n".join(texts)
    shown = [p for p in products if p.title in blob]
    problems += check_claims(texts, products=shown, locale=customer.locale, policy=policy).problems
    return problems
