"""Scan generated copy for the recipient's own profile values (email, phone, last name).

Generated text may greet a customer by first name; anything more identifying in a
video or subject line is a leak waiting to be forwarded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from retail.types import Customer


@dataclass(frozen=True)
class Finding:
    """A profile value found in generated text. Holds where, never the value."""

    field: str
    text_index: int
    start: int
    end: int


def _digits(text: str) -> tuple[str, list[int]]:
    positions = [i for i, ch in enumerate(text) if ch.isdigit()]
    return "".join(text[i] for i in positions), positions


def _national_number(customer: Customer) -> str:
    if not customer.phone:
        return ""
    try:
        number = phonenumbers.parse(customer.phone, customer.country)
    except phonenumbers.NumberParseException:
        digits, _ = _digits(customer.phone)
        return digits
    return str(number.national_number)


def scan_own_values(texts: Sequence[str], customer: Customer) -> list[Finding]:
    """Find the customer's email, phone number or last name in any of `texts`.

    Email and last name match case-insensitively (the name on word boundaries);
    the phone matches on its national significant number (parsed with
    `phonenumbers` in the customer's country), whatever the separators.
    """
    findings: list[Finding] = []
    patterns: list[tuple[str, re.Pattern[str]]] = [
        ("email", re.compile(re.escape(str(customer.email)), re.IGNORECASE)),
    ]
    local_part = str(customer.email).split("@", 1)[0]
    if len(local_part) >= 6:
        patterns.append(("email", re.compile(re.escape(local_part), re.IGNORECASE)))
    if customer.last_name and len(customer.last_name) >= 2:
        patterns.append(
            ("last_name", re.compile(rf"\b{re.escape(customer.last_name)}\b", re.IGNORECASE))
        )
    phone_digits = _national_number(customer)
    for index, text in enumerate(texts):
        for name, pattern in patterns:
            findings.extend(
                Finding(name, index, m.start(), m.end()) for m in pattern.finditer(text)
            )
        if len(phone_digits) >= 6:
            # Match on the national significant number: it is in every way of writing the
            # number (+49 30…, 030/…, 0049 30…), whatever the separators.
            digits, positions = _digits(text)
            start = digits.find(phone_digits)
            if start >= 0:
                end = positions[start + len(phone_digits) - 1] + 1
                findings.append(Finding("phone", index, positions[start], end))
    return _outermost(findings)


def _outermost(findings: list[Finding]) -> list[Finding]:
    # "lee" inside "ann.lee@example.com" is one leak, not three.
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.text_index, f.start, -(f.end - f.start))):
        last = kept[-1] if kept else None
        if last and last.text_index == f.text_index and f.start < last.end:
            continue
        kept.append(f)
    return kept
