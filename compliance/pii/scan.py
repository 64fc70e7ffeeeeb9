"""One pass over a text with every detector, then overlaps and allowed terms resolved."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from compliance.pii.addresses import find_addresses
from compliance.pii.allow import AllowList, as_allow_list
from compliance.pii.finding import Finding, PiiType
from compliance.pii.national_ids import find_national_ids
from compliance.pii.network import find_emails, find_ips
from compliance.pii.payment import find_cards, find_ibans
from compliance.pii.people import find_people
from compliance.pii.phone import DEFAULT_REGIONS, find_phones

# When two findings overlap, the more specific (checksummed) one stands.
_PRIORITY = {
    PiiType.CREDIT_CARD: 0,
    PiiType.IBAN: 1,
    PiiType.NATIONAL_ID: 2,
    PiiType.EMAIL: 3,
    PiiType.IP: 4,
    PiiType.PHONE: 5,
    PiiType.ADDRESS: 6,
    PiiType.PERSON: 7,
}
_DROP_DIGITS = str.maketrans("", "", "0123456789")


def scan_text(
    text: str,
    *,
    allow: AllowList | Iterable[str] = (),
    regions: Sequence[str] = DEFAULT_REGIONS,
) -> list[Finding]:
    """Find personal data in `text`, sorted by position, never overlapping.

    Types: EMAIL, PHONE (valid in one of `regions`, or +country code), CREDIT_CARD
    (Luhn + issuer range), IBAN (length + mod-97), IP (v4/v6), NATIONAL_ID (US SSN, UK
    NINO, German tax id, Spanish DNI/NIE), PERSON and ADDRESS (from explicit cues).
    A finding lying wholly inside an occurrence of an `allow` term is dropped.
    """
    found: list[Finding] = []
    found.extend(find_emails(text))
    found.extend(find_people(text))
    # Most copy has few digits: each numeric type needs at least so many.
    digits = len(text) - len(text.translate(_DROP_DIGITS))
    if digits >= 12:
        found.extend(find_cards(text))
    if digits >= 6:
        found.extend(find_ibans(text))
        found.extend(find_national_ids(text, digits))
    if digits >= 4 or ":" in text:
        found.extend(find_ips(text))  # an IPv6 address may be all letters ("fe80::abcd")
    if digits >= 7:
        found.extend(find_phones(text, regions, skip=found))
    if digits:
        found.extend(find_addresses(text))
    if not found:
        return found
    allowed = as_allow_list(allow).spans(text)
    if allowed:
        found = [f for f in found if not any(s <= f.start and f.end <= e for s, e in allowed)]
    return _without_overlaps(found)


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (_PRIORITY[f.type], f.start, f.start - f.end)):
        if all(f.end <= k.start or k.end <= f.start for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
