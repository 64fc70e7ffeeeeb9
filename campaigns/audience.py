"""Who a campaign may mail: the stores' suppressions and recent sends, then the rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from compliance.audience import (
    Audience,
    ConsentPolicy,
    FrequencyCap,
    Holdout,
    Selection,
    select_audience,
    unsubscribed_in,
)
from compliance.suppression import SuppressionList
from delivery.outbox import Outbox
from retail.types import Customer, Event
from storage.targets import Target


@dataclass(frozen=True)
class AudienceRules:
    """The standing rules of every campaign (from the settings)."""

    consent_overrides: Mapping[str, str] = field(default_factory=dict)
    cap: FrequencyCap = field(default_factory=FrequencyCap)
    holdout_salt: str = "reelcast"


def choose_audience(
    customers: Sequence[Customer],
    events: Sequence[Event],
    *,
    campaign: str,
    holdout_share: float,
    rules: AudienceRules,
    state_db: Target,
    now: datetime,
) -> Audience:
    """Apply suppression (the list and unsubscribe events), consent by country, the
    frequency cap over other campaigns' sends, and the campaign's holdout."""
    suppressed = SuppressionList(state_db).ids() | unsubscribed_in(events)
    with Outbox(state_db) as outbox:
        recent = outbox.sent_counts(now - timedelta(days=rules.cap.days), exclude_campaign=campaign)
    return select_audience(
        customers,
        suppressed=suppressed,
        policy=ConsentPolicy.with_overrides(rules.consent_overrides),
        recent_sends=recent,
        cap=rules.cap,
        holdout=Holdout(holdout_share, campaign, rules.holdout_salt),
    )


def selected(
    audience: Audience, selection: Selection, customers: Sequence[Customer]
) -> list[Customer]:
    """The eligible customers this run takes (all, or a `Selection`'s draw from the split
    population of `customers`), in file order."""
    if selection.limit is None:
        return list(audience.eligible)
    treated, _ = selection.draw(audience.split(customers), set(audience.held_out()))
    chosen = set(treated)
    return [c for c in audience.eligible if c.id in chosen]
