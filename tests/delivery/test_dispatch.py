"""dispatch(): due messages go out once over real SMTP; suppression, retries, outages; with
the outbox on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from delivery_support import CAMPAIGN, NOW, Refuses, smtp_server

from delivery.dispatch import DispatchReport, dispatch, retry_delay
from delivery.errors import TransientSendError
from delivery.outbox import Outbox, OutboxState
from delivery.sink import MaildirSink
from delivery.transport import SmtpTransport
from storage import Target

Enqueue = Callable[..., bool]


@pytest.fixture
def outbox_target(database: Callable[[str], Target]) -> Target:
    return database("state")


def never(customer_id: str) -> bool:
    return False


def test_dispatch_twice_sends_one_email(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)
    with SmtpTransport("127.0.0.1", sink.port) as transport:
        first = dispatch(outbox, transport, now=NOW, is_suppressed=never)
        second = dispatch(outbox, transport, now=NOW + timedelta(hours=1), is_suppressed=never)
    assert (first.sent, second.sent) == (1, 0)
    assert len(sink.messages()) == 1
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.sent
    assert item.provider_id and item.provider_id in sink.maildir


def test_enqueue_and_dispatch_again_still_one_email(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    with SmtpTransport("127.0.0.1", sink.port) as transport:
        for run in range(3):
            for n in (1, 2):
                enqueue(n)
            dispatch(outbox, transport, now=NOW + timedelta(minutes=run), is_suppressed=never)
    assert len(sink.messages()) == 2
    assert outbox.counts(CAMPAIGN)[OutboxState.sent] == 2


def test_suppressed_at_dispatch_time_is_not_sent(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)
    enqueue(2)
    opted_out = {"cust-00002"}  # unsubscribed after the email was queued
    with SmtpTransport("127.0.0.1", sink.port) as transport:
        report = dispatch(outbox, transport, now=NOW, is_suppressed=opted_out.__contains__)
    assert (report.sent, report.suppressed) == (1, 1)
    [raw] = sink.messages()
    assert b"Delivered-To: shopper1@mail.example" in raw
    item = outbox.get(CAMPAIGN, "cust-00002")
    assert item is not None and item.state is OutboxState.suppressed and item.attempts == 0


def test_only_due_messages_are_sent_and_limit_is_honoured(
    outbox: Outbox, compose: Callable[..., EmailMessage], sink: MaildirSink
) -> None:
    for n in range(5):
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=f"c{n}",
            recipient=f"s{n}@mail.example",
            message=compose(),
            due_at=NOW + timedelta(hours=n // 4),
        )
    seen: list[DispatchReport] = []
    with SmtpTransport("127.0.0.1", sink.port) as transport:
        report = dispatch(
            outbox, transport, now=NOW, is_suppressed=never, limit=3, on_progress=seen.append
        )
        assert report.sent == 3 and [r.sent for r in seen] == [1, 2, 3]
        assert dispatch(outbox, transport, now=NOW, is_suppressed=never).sent == 1
        later = dispatch(outbox, transport, now=NOW + timedelta(hours=1), is_suppressed=never)
        assert later.sent == 1
    assert len(sink.messages()) == 5


def test_transient_refusal_requeues_with_backoff_then_fails(
    outbox: Outbox, enqueue: Enqueue
) -> None:
    enqueue(1)
    now = NOW
    with smtp_server(Refuses(451)) as port, SmtpTransport("127.0.0.1", port) as transport:
        for attempt in range(1, 4):
            report = dispatch(outbox, transport, now=now, is_suppressed=never, max_attempts=3)
            item = outbox.get(CAMPAIGN, "cust-00001")
            assert item is not None and item.attempts == attempt
            if attempt < 3:
                assert report.retried == 1 and item.state is OutboxState.queued
                assert item.due_at == now + retry_delay(attempt, timedelta(minutes=2))
                assert dispatch(outbox, transport, now=now, is_suppressed=never).retried == 0
                now = item.due_at
            else:
                assert report.failed == 1 and item.state is OutboxState.failed
    assert item.last_error and "451" in item.last_error and "@" not in item.last_error


def test_permanent_refusal_fails_at_once_without_the_address(
    outbox: Outbox, enqueue: Enqueue
) -> None:
    enqueue(1)
    with smtp_server(Refuses(550)) as port, SmtpTransport("127.0.0.1", port) as transport:
        report = dispatch(outbox, transport, now=NOW, is_suppressed=never)
    assert report.failed == 1
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.failed and item.attempts == 1
    assert item.last_error and "shopper1" not in item.last_error and "@" not in item.last_error


def test_unreachable_server_puts_the_batch_back_untouched(
    outbox: Outbox, enqueue: Enqueue, tmp_path: Path
) -> None:
    for n in (1, 2, 3):
        enqueue(n)
    with smtp_server(Refuses(250)) as port:
        pass  # nothing listens on `port` any more
    report = dispatch(
        outbox, SmtpTransport("127.0.0.1", port, timeout=2), now=NOW, is_suppressed=never
    )
    assert report.deferred == 3 and report.sent == 0 and report.transport_error
    assert all(
        i.state is OutboxState.queued and i.attempts == 0 and i.due_at == NOW
        for i in outbox.items(campaign_id=CAMPAIGN)
    )
    with MaildirSink(tmp_path / "later", port=port) as sink:
        report = dispatch(outbox, SmtpTransport("127.0.0.1", port), now=NOW, is_suppressed=never)
        assert report.sent == 3 and len(sink.messages()) == 3


def test_failing_suppression_lookup_sends_nothing_and_releases(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)

    def broken(customer_id: str) -> bool:
        raise ConnectionError("suppression store down")

    with pytest.raises(ConnectionError):
        dispatch(outbox, SmtpTransport("127.0.0.1", sink.port), now=NOW, is_suppressed=broken)
    assert sink.messages() == []
    assert outbox.counts(CAMPAIGN)[OutboxState.queued] == 1


class SlowThenRefuses:
    """A transport whose failures we script, to check what dispatch records."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, msg: EmailMessage, recipient: str) -> str:
        self.calls += 1
        raise TransientSendError(f"452 mailbox of {recipient} full")


def test_third_party_transport_errors_are_scrubbed_too(outbox: Outbox, enqueue: Enqueue) -> None:
    enqueue(1)
    dispatch(outbox, SlowThenRefuses(), now=NOW, is_suppressed=never)
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.last_error == "452 mailbox of [address] full"


class AddressEchoingHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return f"554 5.7.1 message to {envelope.rcpt_tos[0]} refused as spam"


def test_no_recipient_address_in_errors_from_a_real_server(
    outbox: Outbox, enqueue: Enqueue
) -> None:
    enqueue(1)
    with smtp_server(AddressEchoingHandler()) as port:
        report = dispatch(outbox, SmtpTransport("127.0.0.1", port), now=NOW, is_suppressed=never)
    assert report.failed == 1
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.last_error is not None
    assert "554" in item.last_error and "shopper1" not in item.last_error
