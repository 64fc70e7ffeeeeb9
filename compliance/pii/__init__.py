"""Personal data in generated copy: emails, phones, cards, IBANs, IPs, ids, names, addresses.

    from compliance.pii import scan_text
    scan_text("Call Ms Lee on +44 20 7946 0958", allow=["Ted Baker"])
    # [Finding(PERSON, 8, 11), Finding(PHONE, 15, 31)]

The scanner is pattern + checksum only (no model, no network); `bench/pii.py` measures
its precision, recall and speed on the labeled set in `bench.evalkit.pii_eval`.
"""

from compliance.pii.allow import AllowList
from compliance.pii.finding import Finding, PiiType
from compliance.pii.phone import DEFAULT_REGIONS
from compliance.pii.scan import scan_text

__all__ = ["DEFAULT_REGIONS", "AllowList", "Finding", "PiiType", "scan_text"]
