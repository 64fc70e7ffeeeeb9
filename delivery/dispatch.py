"""Send what is due: claim from the outbox, re-check suppression, send, record.

Exactly-once rests on the outbox, not on the provider (no ESP offers idempotency keys):
a row is sent only by the dispatcher that claimed it, only after "send started" is on
disk, and a row whose outcome is in doubt is parked as `unknown`, never re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import cast

from delivery.errors import (
    ConnectionSendError,
    PermanentSendError,
    TransientSendError,
    UnknownOutcomeError,
    redact_addresses,
)
from delivery.outbox import Outbox, OutboxItem
from delivery.transport import SchedulingTransport, Transport, can_schedule, send_stored

log = logging.getLogger(__name__)

_MAX_BACKOFF = timedelta(hours=6)


@dataclass
class DispatchReport:
    """What one `dispatch` call did. Keys are (campaign_id, customer_id): no addresses."""

    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    retried: int = 0
    unknown: int = 0
    deferred: int = 0
    """Claimed but put back untouched (the transport was unavailable)."""
    reconciled_unknown: list[tuple[str, str]] = field(default_factory=list)
    """Rows an earlier, interrupted dispatch left mid-send: now `unknown`, for an operator."""
    transport_error: str | None = None
    """Why the batch stopped early, when the transport could not be used at all."""


def retry_delay(attempts: int, base: timedelta) -> timedelta:
    """Exponential backoff after `attempts` failed tries: base, 2×base, 4×base… up to 6 h."""
    factor: int = 2 ** max(attempts - 1, 0)
    return min(base * factor, _MAX_BACKOFF)


def utc_now() -> datetime:
    """The real clock: what a dispatcher stamps, row by row."""
    return datetime.now(UTC)


def dispatch(
    outbox: Outbox,
    transport: Transport,
    *,
    now: datetime | None = None,
    clock: Callable[[], datetime] = utc_now,
    is_suppressed: Callable[[str], bool],
    limit: int | None = None,
    on_progress: Callable[[DispatchReport], None] | None = None,
    max_attempts: int = 5,
    retry_base: timedelta = timedelta(minutes=2),
    stale_after: timedelta = timedelta(minutes=10),
    batch_size: int = 50,
    schedule_ahead: timedelta | None = None,
) -> DispatchReport:
    """Send every message due now (at most `limit`), each at most once.

    Time is read from `clock` at every step (claiming, renewing the claim's lease,
    starting and recording each send), so `sent_at` is when each message went and a long
    pass keeps its claims alive; `now` pins the clock to one instant (tests, replays).

    First reconciles rows an interrupted dispatch left in `sending` for over
    `stale_after`. Then, per message: `is_suppressed(customer_id)` is asked right
    before sending (True → `suppressed`, not sent); a transient failure is re-queued with
    exponential backoff until `max_attempts`, then `failed`; a permanent one is `failed`;
    an unknown outcome is `unknown`. If the transport cannot connect at all, the batch
    stops and the claimed messages go back to the queue untouched. `on_progress` gets a
    snapshot of the report after each message.

    `schedule_ahead` (for providers that hold messages, like an ESP's `send_at`) also
    hands over messages due up to that long after `now`, each with its due time as
    `send_at`; suppression is then checked at hand-over, not at delivery.
    """
    if schedule_ahead is not None and not can_schedule(transport):
        raise ValueError(f"{transport!r} cannot schedule sends: leave schedule_ahead unset")
    if now is not None:
        pinned = now
        clock = lambda: pinned  # noqa: E731
    report = DispatchReport()
    reconciled = outbox.reconcile(clock(), stale_after=stale_after)
    for item in reconciled.unknown:
        log.warning(
            "campaign %s customer %s: an earlier dispatch was interrupted mid-send;"
            " marked unknown, not re-sent",
            item.campaign_id,
            item.customer_id,
        )
        report.reconciled_unknown.append((item.campaign_id, item.customer_id))

    remaining = limit
    while remaining is None or remaining > 0:
        claimed_at = clock()
        batch = outbox.claim_due(
            claimed_at,
            batch_size if remaining is None else min(batch_size, remaining),
            due_by=claimed_at + (schedule_ahead or timedelta(0)),
        )
        if not batch:
            break
        if remaining is not None:
            remaining -= len(batch)
        # Claimed rows not yet started go back to the queue whatever stops this loop (a
        # transport outage, a failing suppression lookup, Ctrl-C); a started one never does
        # (Outbox.release refuses it): a reconcile parks it as unknown.
        pending = list(batch)
        renewed_at = claimed_at
        try:
            while pending:
                # Renew the lease well inside the stale window, not before every message.
                if clock() - renewed_at >= stale_after / 4:
                    renewed_at = clock()
                    if outbox.renew(pending, renewed_at) < len(pending):
                        log.warning("some claims were taken back by a reconcile; skipped")
                keep_going = _dispatch_one(
                    outbox,
                    transport,
                    pending[0],
                    clock,
                    is_suppressed,
                    report,
                    max_attempts=max_attempts,
                    retry_base=retry_base,
                )
                if not keep_going:
                    break
                pending.pop(0)
                if on_progress is not None:
                    on_progress(replace(report, reconciled_unknown=list(report.reconciled_unknown)))
        finally:
            if pending:
                report.deferred += outbox.release(pending, clock())
        if report.transport_error is not None:
            break
    return report


def _dispatch_one(
    outbox: Outbox,
    transport: Transport,
    item: OutboxItem,
    clock: Callable[[], datetime],
    is_suppressed: Callable[[str], bool],
    report: DispatchReport,
    *,
    max_attempts: int,
    retry_base: timedelta,
) -> bool:
    """Handle one claimed row; False when the whole batch must stop (row left claimed)."""
    who = f"campaign {item.campaign_id} customer {item.customer_id}"
    if is_suppressed(item.customer_id):
        outbox.mark_suppressed(item.id, clock())
        report.suppressed += 1
        log.info("%s: suppressed, not sent", who)
        return True
    started = clock()
    if not outbox.begin_send(item, started):
        log.warning("%s: claim lost before sending (reconciled elsewhere); skipped", who)
        return True
    try:
        if item.due_at > started:
            # Rows due later are claimed only with schedule_ahead, which dispatch() allows
            # only for a transport that can_schedule().
            scheduling = cast(SchedulingTransport, transport)
            provider_id = scheduling.send(item.email(), item.recipient, send_at=item.due_at)
        else:
            # The stored bytes as they are when the transport takes bytes (SMTP): parsing
            # them into an EmailMessage only to serialize it again gave the same bytes.
            provider_id = send_stored(transport, item.message, item.recipient)
    except ConnectionSendError as exc:
        # Could not even connect: this message certainly did not go, so it may be
        # released with the rest of the batch.
        outbox.cancel_send(item, clock())
        report.transport_error = _safe(exc, item)
        log.error("transport unavailable, stopping this batch: %s", report.transport_error)
        return False
    except PermanentSendError as exc:
        outbox.mark_failed(item.id, str(exc), clock())
        report.failed += 1
        log.warning("%s: rejected: %s", who, _safe(exc, item))
    except TransientSendError as exc:
        attempts = item.attempts + 1
        if attempts >= max_attempts:
            outbox.mark_failed(item.id, f"gave up after {attempts} attempts: {exc}", clock())
            report.failed += 1
            log.warning("%s: gave up after %d attempts", who, attempts)
        else:
            failed_at = clock()
            outbox.retry(
                item.id, str(exc), failed_at + retry_delay(attempts, retry_base), failed_at
            )
            report.retried += 1
            log.info("%s: deferred (attempt %d): %s", who, attempts, _safe(exc, item))
    except UnknownOutcomeError as exc:
        outbox.mark_unknown(item.id, str(exc), clock())
        report.unknown += 1
        log.error("%s: outcome unknown, parked for an operator: %s", who, _safe(exc, item))
    except BaseException as exc:
        # A bug or an interrupt while the message was in the transport's hands: it may
        # have gone out, so park it rather than risk a second copy, then let it surface.
        outbox.mark_unknown(
            item.id, f"dispatch interrupted during send: {type(exc).__name__}", clock()
        )
        report.unknown += 1
        raise
    else:
        outbox.mark_sent(item.id, provider_id, clock())
        report.sent += 1
    return True


def _safe(exc: BaseException, item: OutboxItem) -> str:
    # Transports promise address-free errors; a third-party one might not keep it.
    return redact_addresses(str(exc), item.recipient)
