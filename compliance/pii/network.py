"""Email addresses and IP addresses (IPv4 and IPv6, validated with `ipaddress`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from compliance.pii.finding import Finding, PiiType

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.\w)"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:]|\.\d)"
)
# "v1.2.3.4", "version 10.0.0.1", "build 4.2.0.17": a version, not a host.
_VERSION_CUE = re.compile(r"(?:\bv|\bver\.?|version|build|release|firmware|fw)\s*$", re.I)


def find_emails(text: str) -> Iterator[Finding]:
    """Yield email addresses (local part @ dotted domain with a letter TLD)."""
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield Finding(PiiType.EMAIL, m.start(), m.end())


def find_ips(text: str) -> Iterator[Finding]:
    """Yield IPv4 addresses (no version-number context) and IPv6 addresses."""
    if "." in text:
        for m in _IPV4.finditer(text):
            if _VERSION_CUE.search(text, max(0, m.start() - 12), m.start()):
                continue
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            yield Finding(PiiType.IP, m.start(), m.end())
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            candidate = m.group()
            if candidate.count(":") < 2 or len(candidate) < 6:
                continue  # "::", "a::b" style fragments and clock times are not hosts
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            yield Finding(PiiType.IP, m.start(), m.end())
