"""Property: the PII scanner never raises, and finds an e-mail address planted anywhere."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.pii import PiiType, scan_text

_LOCAL = st.from_regex(r"[a-z0-9]([a-z0-9._+-]{0,14}[a-z0-9])?", fullmatch=True).filter(
    lambda s: ".." not in s
)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
EMAILS = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    _LOCAL,
    st.lists(_LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
# What sits around an address in copy: anything, ending and starting with a separator.
SIDES = st.text(max_size=80)
SEPARATORS = st.sampled_from([" ", "\n", "\t", " (", ") ", ": ", ", ", " <", "> ", "\u00a0"])


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_the_scanner_never_raises_and_its_findings_are_sorted_spans_of_the_text(
    text: str,
) -> None:
    found = scan_text(text)
    assert all(0 <= f.start < f.end <= len(text) for f in found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))


@settings(max_examples=200, deadline=None)
@given(before=SIDES, address=EMAILS, after=SIDES, left=SEPARATORS, right=SEPARATORS)
def test_an_address_planted_in_arbitrary_text_is_found(
    before: str, address: str, after: str, left: str, right: str
) -> None:
    text = before + left + address + right + after
    start = len(before) + len(left)
    found = [f for f in scan_text(text) if f.type is PiiType.EMAIL]
    assert any(f.start <= start and start + len(address) <= f.end for f in found), (
        text,
        found,
    )
