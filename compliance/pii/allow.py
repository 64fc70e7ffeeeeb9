"""Terms that may appear in copy even though they look like personal data.

Catalog brand names ("Dr. Martens", "Ted Baker"), the shop's own postal address,
hotline and service email: a finding that lies wholly inside one of them is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_ODD_SPACE = re.compile(r"\s\s|[^\S ]")  # anything but single spaces: use the regex path


class AllowList:
    """A set of allowed terms, matched case-insensitively on word boundaries.

    Build it once per campaign and pass it to `scan_text(..., allow=...)`; plain
    iterables of strings work too and are compiled (and cached) on first use.
    """

    __slots__ = ("_lowered", "terms")

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms: tuple[str, ...] = tuple(sorted({" ".join(t.split()) for t in terms} - {""}))
        self._lowered = tuple(t.lower() for t in self.terms)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where allowed terms occur in `text` (whole words, any letter case)."""
        if not self._lowered:
            return []
        # str.find per term beats one big case-insensitive alternation by ~10x on
        # short copy. Lower-casing keeps indices for the scripts copy is written in.
        lowered = text.lower()
        if len(lowered) != len(text) or _ODD_SPACE.search(text):
            return [m.span() for m in self._regex().finditer(text)]
        found = []
        for term in self._lowered:
            start = lowered.find(term)
            while start >= 0:
                end = start + len(term)
                if _bounded(lowered, start, end):
                    found.append((start, end))
                start = lowered.find(term, start + 1)
        return found

    def _regex(self) -> re.Pattern[str]:
        return _alternation(self.terms)

    def __repr__(self) -> str:
        return f"AllowList({len(self.terms)} terms)"


def _bounded(text: str, start: int, end: int) -> bool:
    # A term that starts or ends with a letter or digit must not sit inside a word.
    if text[start].isalnum() and start > 0 and text[start - 1].isalnum():
        return False
    return not (text[end - 1].isalnum() and end < len(text) and text[end].isalnum())


def _term_regex(term: str) -> str:
    body = r"\s+".join(re.escape(part) for part in term.split())
    head = r"(?<!\w)" if term[0].isalnum() else ""
    tail = r"(?!\w)" if term[-1].isalnum() else ""
    return head + body + tail


@lru_cache(maxsize=64)
def _alternation(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = [_term_regex(t) for t in sorted(terms, key=len, reverse=True)]
    return re.compile("|".join(alternatives), re.IGNORECASE)


@lru_cache(maxsize=64)
def _compiled(terms: tuple[str, ...]) -> AllowList:
    return AllowList(terms)


def as_allow_list(allow: AllowList | Iterable[str]) -> AllowList:
    """An AllowList for `allow`, compiling (once per distinct tuple of terms) if needed."""
    if isinstance(allow, AllowList):
        return allow
    if isinstance(allow, str):
        raise TypeError("allow must be an iterable of terms, not a single string")
    return _compiled(tuple(allow))
