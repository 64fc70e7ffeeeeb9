"""Prices as feeds write them, read conservatively: a price that could mean two amounts is
refused with a message saying how to write it, never guessed."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

#: "19.99 USD" or "USD 19.99": the amount with a point for decimals, the ISO 4217 code
_MONEY = re.compile(
    r"^(?:(?P<amount>\d+(?:\.\d+)?)\s*(?P<code>[A-Za-z]{3})|"
    r"(?P<code2>[A-Za-z]{3})\s*(?P<amount2>\d+(?:\.\d+)?))$"
)
_NAMES = {".": "a point", ",": "a comma", " ": "a space", "'": "an apostrophe"}
_MONEY_FORMAT = (
    'must be an amount and a currency code, as "19.99 USD" '
    "(a point for decimals, no thousands separator)"
)


def parse_money(text: str) -> tuple[Decimal, str]:
    """("19.99", "USD") from "19.99 USD" or "USD 19.99" (any case for the code).

    Raises ValueError, without the value, for anything else: "19,99 EUR" could be 19.99 or
    1999, "$19.99" names no currency.
    """
    match = _MONEY.match(text.strip())
    if match is None:
        raise ValueError(_MONEY_FORMAT)
    amount = match["amount"] or match["amount2"]
    code = match["code"] or match["code2"]
    return Decimal(amount), code.upper()


def parse_amount(text: str, *, decimal: str = ".", thousands: str = "") -> Decimal:
    """An amount without a currency: "1.299,00" with decimal "," and thousands ".".

    Raises ValueError, without the value, if `text` is not an amount written that way;
    without a `thousands` separator, a separator other than `decimal` is refused.
    """
    shown = f"{_NAMES[decimal]} for decimals" + (
        f" and {_NAMES[thousands]} between thousands" if thousands else ", no thousands separator"
    )
    cell = text.strip()
    if thousands:
        groups = cell.split(decimal, 1)
        integer = groups[0]
        # "1.299,00": groups of three after the first; "12.99" with thousands "." is not.
        if thousands in integer and not re.fullmatch(
            rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+", integer
        ):
            raise ValueError(f"must be an amount written with {shown}")
        cell = integer.replace(thousands, "") + (decimal + groups[1] if len(groups) > 1 else "")
    if not re.fullmatch(rf"\d+(?:{re.escape(decimal)}\d+)?", cell):
        raise ValueError(f"must be an amount written with {shown}")
    try:
        return Decimal(cell.replace(decimal, "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise ValueError(f"must be an amount written with {shown}") from None
