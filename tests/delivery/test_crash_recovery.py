"""A dispatcher that dies mid-send never causes a second copy of the email (on SQLite and
PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest
from delivery_support import CAMPAIGN, NOW, REPO

from delivery.dispatch import dispatch
from delivery.outbox import Outbox, OutboxState
from delivery.sink import MaildirSink
from delivery.transport import SmtpTransport
from storage import Target

Enqueue = Callable[..., bool]
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def outbox_target(database: Callable[[str], Target]) -> Target:
    return database("state")


def never(customer_id: str) -> bool:
    return False


class SendsThenCrashes:
    """Really sends, then blows up before dispatch can record it."""

    def __init__(self, inner: SmtpTransport) -> None:
        self.inner = inner

    def send(self, msg: EmailMessage, recipient: str) -> str:
        self.inner.send(msg, recipient)
        raise RuntimeError("worker lost between send and record")


def test_transport_that_raises_after_sending_parks_the_row_as_unknown(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)
    enqueue(2)
    with SmtpTransport("127.0.0.1", sink.port) as smtp:
        with pytest.raises(RuntimeError):
            dispatch(outbox, SendsThenCrashes(smtp), now=NOW, is_suppressed=never)
        first = outbox.get(CAMPAIGN, "cust-00001")
        assert first is not None and first.state is OutboxState.unknown
        assert first.last_error == "dispatch interrupted during send: RuntimeError"
        # The rest of the claimed batch was handed back, not stranded in `sending`.
        assert outbox.counts(CAMPAIGN)[OutboxState.queued] == 1

        report = dispatch(outbox, smtp, now=LATER, is_suppressed=never)
    assert report.sent == 1  # customer 2 only
    delivered = sink.messages()
    assert len(delivered) == 2
    assert sum(b"Delivered-To: shopper1@mail.example" in raw for raw in delivered) == 1


_KILLED_WORKER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from delivery.outbox import Outbox
    from delivery.transport import SmtpTransport

    db, port, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    outbox = Outbox(db)
    [item] = outbox.claim_due(now, 1)
    assert outbox.begin_send(item, now)
    SmtpTransport("127.0.0.1", port).send(item.email(), item.recipient)
    print("sent", flush=True)
    time.sleep(60)  # killed here, before mark_sent
    """
)


def test_process_killed_between_send_and_record_never_resends(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_WORKER,
            str(outbox.target),
            str(sink.port),
            NOW.isoformat(),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "sent\n"
    finally:
        worker.kill()  # SIGKILL: no cleanup, no finally blocks, like a lost machine
        worker.wait(timeout=10)
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.sending

    # Too young to be judged stale: another dispatcher might still be working on it.
    assert outbox.reconcile(NOW + timedelta(minutes=1)).unknown == []

    reconciled = outbox.reconcile(LATER)
    assert [i.customer_id for i in reconciled.unknown] == ["cust-00001"]
    with SmtpTransport("127.0.0.1", sink.port) as smtp:
        report = dispatch(outbox, smtp, now=LATER + timedelta(hours=1), is_suppressed=never)
    assert report.sent == 0
    assert len(sink.messages()) == 1
    assert outbox.counts(CAMPAIGN)[OutboxState.unknown] == 1


def test_dispatch_itself_reconciles_and_reports_stale_sends(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)
    [item] = outbox.claim_due(NOW, 1)
    outbox.begin_send(item, NOW)  # ...and the process died here
    with SmtpTransport("127.0.0.1", sink.port) as smtp:
        report = dispatch(outbox, smtp, now=LATER, is_suppressed=never)
    assert report.reconciled_unknown == [(CAMPAIGN, "cust-00001")]
    assert report.sent == 0 and sink.messages() == []


def test_claimed_but_never_started_rows_are_sent_after_a_crash(
    outbox: Outbox, enqueue: Enqueue, sink: MaildirSink
) -> None:
    enqueue(1)
    outbox.claim_due(NOW, 1)  # the process died before it began sending
    reconciled = outbox.reconcile(LATER)
    assert [i.customer_id for i in reconciled.requeued] == ["cust-00001"]
    assert reconciled.unknown == []
    with SmtpTransport("127.0.0.1", sink.port) as smtp:
        assert dispatch(outbox, smtp, now=LATER, is_suppressed=never).sent == 1
    assert len(sink.messages()) == 1


def test_a_late_answer_for_an_unknown_row_is_still_recorded(
    outbox: Outbox, enqueue: Enqueue
) -> None:
    enqueue(1)
    [item] = outbox.claim_due(NOW, 1)
    outbox.begin_send(item, NOW)
    outbox.reconcile(LATER)  # a second dispatcher judged the slow send stale
    outbox.mark_sent(item.id, "queue-7", LATER)  # the first one then heard back
    final = outbox.get(CAMPAIGN, "cust-00001")
    assert final is not None and final.state is OutboxState.sent and final.provider_id == "queue-7"
