"""Settle `unknown` outbox rows: ask the provider, or act on an operator's word.

A row is `unknown` when a send started but its outcome was never recorded (a crash, a
lost connection). Sending it again could deliver a second copy, so nothing here does so
on a guess: a row goes back to the queue only when the provider says it has no such
message (after it had time to know), or when an operator confirms it was not delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from delivery.errors import DeliveryError
from delivery.esp import DeliveryStatus, ProviderVerdict
from delivery.outbox import Outbox, OutboxState


class ResendRefused(DeliveryError):
    """A resend was asked for without confirming the message was not delivered."""


@runtime_checkable
class DeliveryLookup(Protocol):
    """A provider that can say whether it has one of our messages (e.g. `EspTransport`)."""

    def delivery_status(self, message_id: str) -> DeliveryStatus:
        """The provider's verdict for our `Message-ID`."""
        ...


def lookup_of(transport: object) -> DeliveryLookup | None:
    """The transport as a provider that can be asked about messages, if it is one (an
    email API can; an SMTP relay cannot, so its unknown rows wait for an operator)."""
    return transport if isinstance(transport, DeliveryLookup) else None


@dataclass
class ResendResult:
    """What `resend_unknown` did, by customer id (no addresses)."""

    requeued: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Customer id → its state, for rows that were not `unknown` (left alone)."""
    missing: list[str] = field(default_factory=list)
    """Customer ids with no row in this campaign."""


@dataclass
class ProviderReconciliation:
    """What `reconcile_with_provider` settled, as (campaign_id, customer_id) pairs."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    requeued: list[tuple[str, str]] = field(default_factory=list)
    undecided: list[tuple[str, str]] = field(default_factory=list)


def resend_unknown(
    outbox: Outbox,
    campaign: str,
    customer_ids: Sequence[str] | Literal["all"],
    *,
    confirmed_not_delivered: bool,
    now: datetime,
    due_at: datetime | None = None,
) -> ResendResult:
    """Queue the `unknown` rows of `campaign` again (all of them, or these customers').

    `confirmed_not_delivered` is the operator's statement that these messages did not
    reach the recipients (checked at the provider or the recipient's mailbox); without it
    nothing changes and `ResendRefused` says so. Rows in any other state are left alone
    and listed in `skipped`: a sent row is never sent twice this way.
    """
    if not confirmed_not_delivered:
        raise ResendRefused(
            "refusing to resend: a message whose outcome is unknown may already have been "
            "delivered. Check with the provider first, then confirm it was not delivered."
        )
    result = ResendResult()
    if customer_ids == "all":
        items = outbox.items(campaign_id=campaign, state=OutboxState.unknown)
    else:
        items = []
        for customer_id in dict.fromkeys(customer_ids):
            item = outbox.get(campaign, customer_id)
            if item is None:
                result.missing.append(customer_id)
            elif item.state is not OutboxState.unknown:
                result.skipped[customer_id] = str(item.state)
            else:
                items.append(item)
    for item in items:
        outbox.requeue_unknown(
            item.id,
            due_at or now,
            f"resent by an operator who confirmed it was not delivered ({now:%Y-%m-%d %H:%M}Z)",
            now,
        )
        result.requeued.append(item.customer_id)
    return result


def reconcile_with_provider(
    outbox: Outbox,
    provider: DeliveryLookup,
    *,
    now: datetime,
    campaign: str | None = None,
    settle_after: timedelta = timedelta(minutes=15),
    retention: timedelta = timedelta(days=30),
) -> ProviderReconciliation:
    """Ask the provider about every `unknown` row (of `campaign`, or all) and settle it.

    The provider has it → `sent` with its id. The provider has no record of it → queued
    again, due `now`, but only when its silence means something:
    - `settle_after` has passed since the later of the send start and the time the
      message was to go out (a message handed over with a `send_at` up to days ahead is
      not in the provider's activity before then, and activity feeds lag);
    - the send started within the provider's activity `retention` (it forgets older
      messages, delivered or not, so "no record" past it says nothing).
    Anything else stays `unknown`.
    """
    report = ProviderReconciliation()
    for item in outbox.items(campaign_id=campaign, state=OutboxState.unknown):
        key = (item.campaign_id, item.customer_id)
        status = (
            provider.delivery_status(item.message_id)
            if item.message_id
            else DeliveryStatus(ProviderVerdict.unknown)
        )
        started = item.send_started_at or item.updated_at
        goes_out = max(started, item.due_at)
        if status.verdict is ProviderVerdict.accepted:
            outbox.mark_sent(item.id, status.provider_id or item.message_id or "", now)
            report.sent.append(key)
        elif (
            status.verdict is ProviderVerdict.not_found
            and goes_out <= now - settle_after
            and now - started <= retention
        ):
            outbox.requeue_unknown(
                item.id, now, "the provider has no record of it: not delivered", now
            )
            report.requeued.append(key)
        else:
            report.undecided.append(key)
    return report
