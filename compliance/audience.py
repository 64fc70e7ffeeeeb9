"""Audience rules: who may receive a campaign, and one recorded reason for everyone else.

Rules, in the order they are applied (the first that excludes is the reason recorded):

1. suppression (unsubscribes, bounces, complaints) overrides everything;
2. consent by jurisdiction: in opt-in countries (EU/EEA, UK, Canada… by default, and
   any country the policy does not know) only *granted* consent with a timestamp and a
   source counts; in opt-out countries (the US by default) *unknown* is enough, but
   *denied* never is;
3. the frequency cap: at most N campaign emails per customer in a rolling window;
4. the holdout: a deterministic share of the otherwise eligible customers gets nothing,
   so the campaign's lift can be measured against them.

A run may take only part of its audience (`Selection`: a seeded random sample by default);
the holdout is then drawn from the same part, so treated and control stay comparable.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from retail.events import EventTable
from retail.types import Consent, Customer, Event, EventType


class Exclusion(StrEnum):
    """Why a customer gets nothing."""

    suppressed = "suppressed"
    consent_denied = "consent-denied"
    consent_unknown = "consent-unknown"
    consent_unproven = "consent-without-timestamp-or-source"
    frequency_cap = "frequency-cap"
    holdout = "holdout"


class Regime(StrEnum):
    """How a jurisdiction treats marketing email."""

    opt_in = "opt-in"  # explicit, provable consent needed (GDPR, PECR, CASL)
    opt_out = "opt-out"  # may mail until the person objects (CAN-SPAM)


#: EU and EEA members, the UK, Switzerland and Canada need opt-in; the US is opt-out.
#: Countries missing here fall back to `ConsentPolicy.default` (opt-in: the safe side).
OPT_IN_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
        "GB",
        "CH",
        "CA",
        "AU",
        "JP",
    ]
)
DEFAULT_REGIMES: Mapping[str, Regime] = MappingProxyType(
    {**{c: Regime.opt_in for c in OPT_IN_COUNTRIES}, "US": Regime.opt_out}
)


@dataclass(frozen=True)
class ConsentPolicy:
    """Consent rules per country (ISO 3166 alpha-2)."""

    regimes: Mapping[str, Regime] = field(default_factory=lambda: DEFAULT_REGIMES)
    default: Regime = Regime.opt_in

    def regime(self, country: str) -> Regime:
        """The regime that applies to a customer in `country`."""
        return self.regimes.get(country.upper(), self.default)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, str]) -> ConsentPolicy:
        """The default policy with some countries changed, e.g. {"AU": "opt-out"}."""
        regimes = dict(DEFAULT_REGIMES)
        for country, regime in overrides.items():
            regimes[country.upper()] = Regime(regime)
        return cls(regimes=MappingProxyType(regimes))


@dataclass(frozen=True)
class Holdout:
    """A deterministic control group: hash(salt, experiment, customer id) < share."""

    share: float = 0.0
    experiment: str = "default"
    salt: str = "reelcast"

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise ValueError(f"holdout share must be in [0, 1), got {self.share}")

    def contains(self, customer_id: str) -> bool:
        """Whether the customer is held out of this experiment (stable across runs)."""
        if self.share == 0.0:
            return False
        key = f"{self.salt}\x1f{self.experiment}\x1f{customer_id}".encode()
        bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        return bucket < self.share


SelectionOrder = Literal["random", "file"]


@dataclass(frozen=True)
class Selection:
    """Which part of the split population (eligible and held-out customers) a run takes.

    Without a `limit`, everyone. With one, customers are drawn one by one — in a random
    order keyed by (experiment, customer id), or in file order when asked — until `limit`
    treated (not held-out) customers are drawn; the held-out customers drawn along the
    way are the run's control group. So treated and control come from the same draw and
    the lift compares like with like, and a re-run draws the same customers.
    """

    limit: int | None = None
    order: SelectionOrder = "random"
    experiment: str = "default"

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"the selection's limit must be at least 1, got {self.limit}")

    def _rank(self, customer_id: str) -> bytes:
        return hashlib.sha256(f"{self.experiment}\x1fselect\x1f{customer_id}".encode()).digest()

    def draw(self, population: Sequence[str], held: Set[str]) -> tuple[list[str], list[str]]:
        """(treated, control): the customers of `population` (in file order) this run takes,
        each list in file order. `held` holds the population's held-out customers."""
        if self.limit is None:
            return [c for c in population if c not in held], [c for c in population if c in held]
        order = population if self.order == "file" else sorted(population, key=self._rank)
        taken: set[str] = set()
        treated = 0
        for customer_id in order:
            if treated >= self.limit:
                break
            taken.add(customer_id)
            treated += customer_id not in held
        return (
            [c for c in population if c in taken and c not in held],
            [c for c in population if c in taken and c in held],
        )


@dataclass(frozen=True)
class FrequencyCap:
    """At most `max_emails` campaign emails per customer in the last `days` days."""

    max_emails: int = 3
    days: int = 7


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

    def held_out(self) -> list[str]:
        """Ids of the holdout group (for measuring lift later)."""
        return [cid for cid, why in self.excluded.items() if why is Exclusion.holdout]

    def split(self, customers: Iterable[Customer]) -> list[str]:
        """The ids of `customers` (in their order) that entered the holdout split: the
        eligible and the held-out."""
        held = {cid for cid, why in self.excluded.items() if why is Exclusion.holdout}
        eligible = {c.id for c in self.eligible}
        return [c.id for c in customers if c.id in eligible or c.id in held]


def unsubscribed_in(events: Iterable[Event]) -> set[str]:
    """Customer ids with an unsubscribe event in the history."""
    return EventTable.of(events).customers_with(EventType.unsubscribe)


def select_audience(
    customers: Sequence[Customer],
    *,
    suppressed: Set[str],
    policy: ConsentPolicy | None = None,
    recent_sends: Mapping[str, int] | None = None,
    cap: FrequencyCap | None = None,
    holdout: Holdout | None = None,
) -> Audience:
    """Split customers into the eligible and the excluded, one reason each.

    `recent_sends` counts campaign emails each customer got within the cap's window
    (the caller reads them from the outbox). Without a policy the default applies;
    without a cap or a holdout those rules are off.
    """
    policy = policy or ConsentPolicy()
    recent_sends = recent_sends or {}
    eligible: list[Customer] = []
    excluded: dict[str, Exclusion] = {}
    for customer in customers:
        reason = _consent_or_suppression(customer, suppressed, policy)
        if (
            reason is None
            and cap is not None
            and recent_sends.get(customer.id, 0) >= (cap.max_emails)
        ):
            reason = Exclusion.frequency_cap
        if reason is None and holdout is not None and holdout.contains(customer.id):
            reason = Exclusion.holdout
        if reason is None:
            eligible.append(customer)
        else:
            excluded[customer.id] = reason
    return Audience(eligible, excluded)


def _consent_or_suppression(
    customer: Customer, suppressed: Set[str], policy: ConsentPolicy
) -> Exclusion | None:
    if customer.id in suppressed:
        return Exclusion.suppressed
    consent = customer.marketing_consent
    if consent is Consent.denied:
        return Exclusion.consent_denied
    if policy.regime(customer.country) is Regime.opt_out:
        return None  # unknown or granted both may be mailed; the opt-out link is in every email
    if consent is Consent.unknown:
        return Exclusion.consent_unknown
    if customer.consent_timestamp is None or not customer.consent_source:
        return Exclusion.consent_unproven
    return None
