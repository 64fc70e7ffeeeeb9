"""Phone numbers, validated against the numbering plans in `phonenumbers`.

A cheap regex finds digit runs that could be a phone number; only those go to
`PhoneNumberMatcher` (about 0.1 ms a call), with Leniency.VALID: the number must be
a valid, allocated number of its region, which an order number rarely is. Numbers
right after an order/SKU/tracking label are skipped unless a phone cue is nearer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from phonenumbers import Leniency, PhoneNumberMatcher

from compliance.pii.finding import Finding, PiiType

DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "IT", "NL")
"""National formats understood; international (+CC) numbers are found for every country."""

LENIENCY = Leniency.VALID
# Digit runs glued to a code ("ORD-2026-…", "A-1234.5") are not phone numbers.
_CANDIDATE = re.compile(r"(?<![\w+\-./])(?:\+ ?|\(\+?)?\d[\d().\-/ ]{5,22}\d(?![\w])(?![\-./]\w)")
_GROUPS = re.compile(r"\d+")
_PRICE = re.compile(r"\d{1,3}(?:[.,' ]\d{3})*[.,]\d{2}")
_DATE = re.compile(r"\(?(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2})\)?")
# A mistyped IBAN is still not a phone number.
_IBAN_SHAPE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){2,8}")
_REFERENCE_CUE = re.compile(
    r"(?:order|invoice|tracking|parcel|shipment|sku|item|article|art\.|model|part|ref|"
    r"reference|voucher|coupon|gift card|ticket|case|code|serial|batch|lot|ean|gtin|upc|isbn|"
    r"bestellung|auftrag|rechnung|sendung|commande|facture|colis|pedido|factura|envío|ordine|"
    r"fattura|spedizione|bestelling|factuur|#)"
    r"\w*\s*(?:number|no\.?|nr\.?|id)?\s*[:#]?\s*#?\s*$",
    re.IGNORECASE,
)
_PHONE_CUE = re.compile(
    r"\b(?:phone|tel|call|fax|mobile|cell|hotline|whatsapp|sms|text|ring|dial|telefon|"
    r"téléphone|tél|teléfono|llama|anrufen)",
    re.IGNORECASE,
)


def find_phones(
    text: str, regions: Sequence[str] = DEFAULT_REGIONS, skip: Sequence[Finding] = ()
) -> Iterator[Finding]:
    """Yield phone numbers valid in one of `regions` or written with a +country code.

    `skip` holds findings already made (cards, IBANs, ids): candidates inside them
    are not sent to the matcher.
    """
    regions = tuple(regions)
    taken: list[tuple[int, int]] | None = None
    for m in _CANDIDATE.finditer(text):
        start, end = m.span()
        candidate = m.group()
        if not _worth_a_lookup(candidate):
            continue
        if taken is None:
            taken = [(f.start, f.end) for f in skip]
            taken += [i.span() for i in _IBAN_SHAPE.finditer(text)]
        if any(s < end and start < e for s, e in taken):
            continue
        before = text[max(0, start - 30) : start]
        if _REFERENCE_CUE.search(before) and not _PHONE_CUE.search(before[-14:]):
            continue
        for s, e in _match(candidate, regions):
            yield Finding(PiiType.PHONE, start + s, start + e)


def _worth_a_lookup(candidate: str) -> bool:
    # Cheap shape tests before the ~0.1 ms matcher: E.164 allows 15 digits (17 with a
    # 00 prefix); long unseparated runs are barcodes; dates, prices and "392050.136"
    # style codes are not numbers anyone dials.
    groups = [len(g) for g in _GROUPS.findall(candidate)]
    digits = sum(groups)
    if digits < 7 or digits > 17:
        return False
    if len(groups) == 1 and digits > 12 and not candidate.startswith(("+", "00")):
        return False
    if candidate.count(".") == 1 or (len(groups) >= 2 and groups[-1] <= 2 and groups[-2] >= 4):
        return False
    return not (_DATE.fullmatch(candidate) or _PRICE.fullmatch(candidate))


@lru_cache(maxsize=8192)
def _match(candidate: str, regions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    # Footers repeat the same hotline in every email: the cache makes those free.
    for region in _likely_first(candidate, regions):
        found = tuple(
            (pm.start, pm.end)
            for pm in PhoneNumberMatcher(candidate, region, leniency=LENIENCY)
            if _written_like_a_phone(pm.raw_string, pm.number.country_code)
        )
        if found:
            return found
        if candidate[0] == "+":
            break  # an international number reads the same from every region
    return ()


def _written_like_a_phone(raw: str, country_code: int | None) -> bool:
    # Product codes pass the number plan too ("4012-3456-78", "392050.136"); their
    # grouping gives them away. Dots as separators come in series (415.555.2671), and
    # a North American number is written 3-3-4 (STRICT_GROUPING, but only for +1:
    # elsewhere it rejects common groupings such as the Dutch "06 12345678").
    # A number does not end in a pair after a long group ("3646-5931-58").
    if raw.count(".") == 1:
        return False
    groups = [len(g) for g in _GROUPS.findall(raw)]
    if len(groups) >= 2 and groups[-1] <= 2 and groups[-2] >= 4:
        return False
    if country_code != 1:
        return True
    return groups[-3:] == [3, 3, 4] or (len(groups) <= 2 and groups[-1] in (10, 11))


def _likely_first(candidate: str, regions: tuple[str, ...]) -> tuple[str, ...]:
    # Try the regions whose national format fits the digits first; stop at a match.
    digits = "".join(ch for ch in candidate if ch.isdigit())
    if digits[0] == "0":
        order = ("GB", "DE", "FR", "NL", "IT", "ES", "US")
    elif len(digits) == 9:
        order = ("ES", "IT", "US", "GB", "DE", "FR", "NL")
    else:
        order = ("US", "IT", "ES", "GB", "DE", "FR", "NL")
    ranked = [r for r in order if r in regions]
    return (*ranked, *(r for r in regions if r not in ranked))


def clear_cache() -> None:
    """Forget cached number lookups (benchmarks measure cold lookups with it)."""
    _match.cache_clear()
