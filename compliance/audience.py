"""Audience rules: who may receive a campaign, and one recorded reason for everyone else."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from enum import StrEnum

from retail.types import Consent, Customer, Event, EventType


class Exclusion(StrEnum):
    """Why a customer gets nothing. The first rule that applies is the one recorded."""

    suppressed = "suppressed"
    consent_denied = "consent-denied"
    consent_unknown = "consent-unknown"
    consent_unproven = "consent-without-timestamp-or-source"


@dataclass(frozen=True)
class Audience:
    """Eligible customers in input order, and every other customer with its reason."""

    eligible: list[Customer]
    excluded: dict[str, Exclusion] = field(default_factory=dict)

    @property
    def considered(self) -> int:
        """How many customers were looked at."""
        return len(self.eligible) + len(self.excluded)

    def counts(self) -> dict[str, int]:
        """Excluded customers per reason."""
        return dict(Counter(str(reason) for reason in self.excluded.values()))


def unsubscribed_in(events: Iterable[Event]) -> set[str]:
    """Customer ids with an unsubscribe event in the history."""
    return {e.customer_id for e in events if e.type is EventType.unsubscribe}


def select_audience(customers: Sequence[Customer], *, suppressed: Set[str]) -> Audience:
    """Split customers into the eligible and the excluded.

    A customer is eligible only with granted marketing consent that has a
    timestamp and a source (so it can be proven), and only when not on the
    suppression list. Suppression is checked first: it overrides any consent.
    """
    eligible: list[Customer] = []
    excluded: dict[str, Exclusion] = {}
    for customer in customers:
        reason = _exclusion(customer, suppressed)
        if reason is None:
            eligible.append(customer)
        else:
            excluded[customer.id] = reason
    return Audience(eligible, excluded)


def _exclusion(customer: Customer, suppressed: Set[str]) -> Exclusion | None:
    if customer.id in suppressed:
        return Exclusion.suppressed
    if customer.marketing_consent is Consent.denied:
        return Exclusion.consent_denied
    if customer.marketing_consent is Consent.unknown:
        return Exclusion.consent_unknown
    if customer.consent_timestamp is None or not customer.consent_source:
        return Exclusion.consent_unproven
    return None
