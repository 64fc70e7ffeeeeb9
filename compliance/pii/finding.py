"""What the scanner reports: a type and where, never the matched text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PiiType(StrEnum):
    """The kinds of personal data the scanner looks for."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CREDIT_CARD = "CREDIT_CARD"
    IBAN = "IBAN"
    IP = "IP"
    NATIONAL_ID = "NATIONAL_ID"
    PERSON = "PERSON"
    ADDRESS = "ADDRESS"


@dataclass(frozen=True, slots=True)
class Finding:
    """Personal data of `type` at `text[start:end]` (Python string indices).

    Holds the position only, so a finding can be logged, stored or printed without
    carrying the value it points at.
    """

    type: PiiType
    start: int
    end: int

    def __repr__(self) -> str:
        return f"Finding({self.type.value}, {self.start}, {self.end})"

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of the CLI: {"type": …, "start": i, "end": j}."""
        return {"type": str(self.type), "start": self.start, "end": self.end}
