"""Payment card numbers (Luhn + issuer ranges) and IBANs (country length + mod-97)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from compliance.pii.checksums import IBAN_LENGTHS, iban_valid, is_card_number
from compliance.pii.finding import Finding, PiiType

# 12-19 digits, optionally grouped by single spaces or dashes; not part of a longer
# digit run (so a 22-digit tracking number is not read as a card plus change).
_CARD = re.compile(r"(?<![\w-])(?<!\d[ -])\d(?:[ -]?\d){11,18}(?![ -]?\d)(?!\w)")
_IBAN_START = re.compile(r"\b([A-Z]{2})(\d{2}) ?[A-Z0-9]")
# A 13-digit EAN passes Luhn one time in ten, and some start like a Maestro card.
_BARCODE_CUE = re.compile(r"\b(?:EAN|GTIN|UPC|ISBN|barcode)\W{0,3}$", re.IGNORECASE)


def find_cards(text: str) -> Iterator[Finding]:
    """Yield Luhn-valid numbers in a card brand's issuer range and length."""
    for m in _CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if is_card_number(digits) and not _BARCODE_CUE.search(
            text, max(0, m.start() - 12), m.start()
        ):
            yield Finding(PiiType.CREDIT_CARD, m.start(), m.end())


def find_ibans(text: str) -> Iterator[Finding]:
    """Yield IBANs, written solid or in groups, whatever word follows them.

    Reads exactly the country's IBAN length of characters (single spaces allowed
    between them), so a following word, lower or upper case, never joins the match.
    """
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        chars: list[str] = []
        i, n = m.start(), len(text)
        while i < n and len(chars) < length:
            ch = text[i]
            if ch.isascii() and (ch.isdigit() or ch.isupper()):
                chars.append(ch)
            elif not (ch == " " and chars and i + 1 < n and text[i + 1] != " "):
                break
            i += 1
        if len(chars) != length or (i < n and text[i].isalnum()):
            continue
        if iban_valid("".join(chars)):
            yield Finding(PiiType.IBAN, m.start(), i)
