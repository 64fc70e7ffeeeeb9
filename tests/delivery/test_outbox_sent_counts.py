"""The outbox tells the frequency cap how many emails each customer got recently (on SQLite
and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from delivery.outbox import Outbox
from storage import Target


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["Message-ID"] = "<m@example.com>"
    msg.set_content("hi")
    return msg


def test_sent_counts_per_customer_exclude_the_running_campaign(
    database: Callable[[str], Target],
) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with Outbox(database("state")) as outbox:
        for campaign in ("a", "b", "c"):
            outbox.enqueue(
                campaign_id=campaign,
                customer_id="C1",
                recipient="x@example.com",
                message=_message(),
                due_at=now,
                now=now,
            )
        outbox.enqueue(
            campaign_id="a",
            customer_id="C2",
            recipient="y@example.com",
            message=_message(),
            due_at=now,
            now=now,
        )
        for item in outbox.claim_due(now, 10):
            assert outbox.begin_send(item, now)
            if item.campaign_id != "c":
                outbox.mark_sent(item.id, "pid", now)
            else:
                outbox.mark_failed(item.id, "550 rejected", now)
        assert outbox.sent_counts(now - timedelta(days=7)) == {"C1": 2, "C2": 1}
        assert outbox.sent_counts(now - timedelta(days=7), exclude_campaign="a") == {"C1": 1}
        assert outbox.sent_counts(now + timedelta(days=1)) == {}
