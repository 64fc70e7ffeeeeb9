"""National identifiers that have a fixed pattern plus a checksum or excluded ranges.

US SSN (never-issued ranges excluded), UK National Insurance number (HMRC prefix
rules), German tax id (Steuer-ID, ISO 7064 check digit) and Spanish DNI/NIE (check
letter).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from compliance.pii.checksums import de_tax_id_valid, es_dni_valid, nino_valid, ssn_valid
from compliance.pii.finding import Finding, PiiType

_SSN_DASHED = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-]|\.\d)")
_SSN_SPACED = re.compile(r"(?<![\d ])(\d{3}) (\d{2}) (\d{4})(?! ?\d)")
_SSN_CUE = re.compile(r"(?:\bssn|social security)\b\D{0,20}$", re.IGNORECASE)
_SSN_CUE_WORD = re.compile(r"ssn|social security", re.IGNORECASE)
_NINO = re.compile(r"\b([A-Z]{2}) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b")
_DE_TAX_ID = re.compile(r"(?<![\d+])(?<!\d )(\d{11}|\d{2} \d{3} \d{3} \d{3})(?! ?\d)")
_ES_DNI = re.compile(r"\b(\d{8}|[XYZ]\d{7})-?([A-Z])\b")
# An 11-digit number right after one of these is an order or parcel reference.
_REFERENCE_CUE = re.compile(
    r"(?:order|invoice|tracking|parcel|shipment|sku|item|article|ref|reference|voucher|"
    r"coupon|ticket|case|bestellung|rechnung|sendung)\w*\s*(?:number|no\.?|nr\.?)?\s*[:#]?\s*#?$",
    re.IGNORECASE,
)


def find_national_ids(text: str, digits: int | None = None) -> Iterator[Finding]:
    """Yield SSNs, NINOs, German tax ids and Spanish DNIs/NIEs that pass their checks.

    `digits`, the number of ASCII digits in `text` if the caller counted them, skips
    the patterns that need more.
    """
    if digits is None:
        digits = sum(ch in "0123456789" for ch in text)
    if digits >= 9 and "-" in text:
        for m in _SSN_DASHED.finditer(text):
            if ssn_valid(*m.groups()):
                yield Finding(PiiType.NATIONAL_ID, m.start(), m.end())
    if digits >= 9 and _SSN_CUE_WORD.search(text):
        for m in _SSN_SPACED.finditer(text):
            # Three space-separated groups are common in phone numbers; only with a cue.
            if ssn_valid(*m.groups()) and _SSN_CUE.search(text, max(0, m.start() - 40), m.start()):
                yield Finding(PiiType.NATIONAL_ID, m.start(), m.end())
    for m in _NINO.finditer(text):
        if nino_valid("".join(m.groups())):
            yield Finding(PiiType.NATIONAL_ID, m.start(), m.end())
    for m in _DE_TAX_ID.finditer(text) if digits >= 11 else ():
        if de_tax_id_valid(m.group(1).replace(" ", "")) and not _REFERENCE_CUE.search(
            text, max(0, m.start() - 30), m.start()
        ):
            yield Finding(PiiType.NATIONAL_ID, m.start(), m.end())
    for m in _ES_DNI.finditer(text) if digits >= 7 else ():
        if es_dni_valid(m.group(1), m.group(2)):
            yield Finding(PiiType.NATIONAL_ID, m.start(), m.end())
