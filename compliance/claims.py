"""Claims rules: what generated copy may say about prices, discounts, "free" and urgency.

Checks run on the finished texts of a creative (video copy, subject, email text):
- the price shown equals the catalog price at render time, formatted for the locale: the
  feed's `sale_price` when the product has one, else its `price`;
- a discount claim (a percentage off, "save", a struck prior price) needs a documented
  prior price. A feed sale documents one: the struck "was" must be the feed's regular
  `price`. Where a price history is known, the "was" must also be the lowest price of the
  product in the lookback window (30 days in the EU's Omnibus rule) before the current
  price started; without a feed sale, that history is the only documentation;
- "free", superlatives and urgency phrases are checked against a policy file;
- the AI-generated label is present when the creative shows generated media.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml
from babel.numbers import format_currency

from compliance.errors import ComplianceError
from retail.types import Product

DEFAULT_POLICY = Path(__file__).with_name("policies") / "claims.yaml"


class PolicyError(ComplianceError):
    """The claims policy file cannot be used; the message names the file and field."""


@dataclass(frozen=True)
class PricePoint:
    """A product's price from `since` until the next point."""

    product_id: str
    price: Decimal
    since: datetime


@dataclass(frozen=True)
class ClaimsPolicy:
    """Phrase lists and the prior-price rule."""

    free_allowed: tuple[str, ...] = ()
    superlatives: tuple[str, ...] = ()
    urgency: tuple[str, ...] = ()
    discount_words: tuple[str, ...] = ()
    lookback_days: int = 30


def load_policy(path: Path = DEFAULT_POLICY) -> ClaimsPolicy:
    """Read a claims policy YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PolicyError(f"{path}: claims policy file not found") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from None

    def strings(key: str, value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{path}: {key}: expected a list of phrases")
        return tuple(v.lower() for v in value)

    lookback = raw.get("prior_price_lookback_days", 30)
    if not isinstance(lookback, int) or lookback < 1:
        raise PolicyError(f"{path}: prior_price_lookback_days: expected a whole number ≥ 1")
    return ClaimsPolicy(
        free_allowed=strings(
            "free.allowed_phrases", (raw.get("free") or {}).get("allowed_phrases")
        ),
        superlatives=strings("superlatives", raw.get("superlatives")),
        urgency=strings("urgency", raw.get("urgency")),
        discount_words=strings("discount_words", raw.get("discount_words")),
        lookback_days=lookback,
    )


def _phrase(phrase: str) -> re.Pattern[str]:
    # Word boundaries only where the phrase starts/ends with a word character ("#1").
    start = r"\b" if phrase[:1].isalnum() else ""
    end = r"\b" if phrase[-1:].isalnum() else ""
    return re.compile(start + re.escape(phrase).replace(r"\ ", r"\s+") + end, re.IGNORECASE)


@dataclass
class ClaimCheck:
    """Problems found (empty: the copy may go out)."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.problems


def documented_prior_price(
    history: Sequence[PricePoint], *, current_since: datetime, lookback_days: int
) -> Decimal | None:
    """The lowest price in the `lookback_days` before the current price began, or None.

    A price that was in force at any moment of the window counts, including one that
    started before it.
    """
    window_start = current_since - timedelta(days=lookback_days)
    points = sorted(history, key=lambda p: p.since)
    in_force: list[Decimal] = []
    for i, point in enumerate(points):
        until = points[i + 1].since if i + 1 < len(points) else None
        if point.since >= current_since:
            continue
        if until is None or until > window_start:
            in_force.append(point.price)
    return min(in_force) if in_force else None


def check_claims(
    texts: Sequence[str],
    *,
    products: Sequence[Product],
    locale: str,
    policy: ClaimsPolicy,
    require_ai_label: bool = False,
    ai_label: str = "AI-generated",
    shown_prior_prices: Mapping[str, Decimal] | None = None,
    price_history: Sequence[PricePoint] = (),
) -> ClaimCheck:
    """Check every text of one creative against the claims rules.

    `products` are the products the creative shows; each one's price now (its
    `sale_price` when the feed has one, else its `price`), formatted for `locale`, must
    appear in the copy. `shown_prior_prices` maps product id to a struck-through "was"
    price the creative shows (`Storyboard.struck_prices`). For a product on sale in the
    feed the "was" must equal the feed's `price`; for one without a sale price it needs a
    price history. Where `price_history` has points for the product, the "was" must also
    equal the documented prior price (lowest in the lookback window before the current
    price began) and be above the price now: feed and history must agree. A history
    that lacks the price now cannot date the reduction, and fails.
    """
    check = ClaimCheck()
    blob = "\n".join(texts)
    # "free" is allowed inside its allowed phrases only.
    masked = blob
    for allowed in policy.free_allowed:
        masked = _phrase(allowed).sub(" ", masked)
    if _phrase("free").search(masked):
        check.problems.append('claim: "free" outside the allowed phrases')
    for kind, phrases in (("superlative", policy.superlatives), ("urgency", policy.urgency)):
        for phrase in phrases:
            if _phrase(phrase).search(blob):
                check.problems.append(f'claim: {kind} "{phrase}" is not allowed')
    for product in products:
        shown = format_currency(product.price_now, product.currency, locale=locale)
        if shown not in blob and shown.replace("\xa0", " ") not in blob.replace("\xa0", " "):
            what = "catalog price" if product.sale_price is None else "sale price"
            check.problems.append(f"price: {what} of {product.id} not shown as {shown!r}")
    discount_claimed = bool(re.search(r"-?\d+\s?%", blob)) or any(
        _phrase(w).search(blob) for w in policy.discount_words
    )
    prior = shown_prior_prices or {}
    if discount_claimed and not prior:
        check.problems.append("discount: a discount is claimed but no prior price is documented")
    by_id = {product.id: product for product in products}
    for product_id, was in prior.items():
        struck = by_id.get(product_id)
        if struck is None:
            check.problems.append(
                f"discount: a struck price is shown for {product_id}, which the creative "
                "does not show"
            )
            continue
        now = struck.price_now
        if struck.sale_price is not None and was != struck.price:
            check.problems.append(
                f"discount: struck price of {product_id} shown as {was} but the feed's "
                f"regular price is {struck.price} (sale price {struck.sale_price})"
            )
        points = [p for p in price_history if p.product_id == product_id]
        if not points:
            if struck.sale_price is None:
                check.problems.append(
                    f"discount: struck price of {product_id} shown as {was} is not vouched "
                    "for: the feed has no sale price for it and no price history is known"
                )
            continue
        current = [p for p in points if p.price == now]
        if not current:
            check.problems.append(
                f"discount: the price history of {product_id} does not show its current price {now}"
            )
            continue
        current_since = max(p.since for p in current)
        documented = documented_prior_price(
            points, current_since=current_since, lookback_days=policy.lookback_days
        )
        if documented is None:
            check.problems.append(
                f"discount: no price for {product_id} in the {policy.lookback_days} days "
                "before the reduction"
            )
        elif was != documented:
            check.problems.append(
                f"discount: prior price of {product_id} shown as {was} but the lowest in "
                f"{policy.lookback_days} days was {documented}"
            )
        elif documented <= now:
            check.problems.append(f"discount: {product_id} is not cheaper than its prior price")
    if require_ai_label and ai_label.lower() not in blob.lower():
        check.problems.append(f'label: "{ai_label}" label missing')
    return check
