"""Exactly once under SIGKILL: a dispatcher process killed mid-batch, then restarted.

The dispatcher runs in a subprocess and sends over real SMTP to an aiosmtpd server in
this process (MaildirSink). It is killed twice — once in the worst spot, right after the
server took a message and before the outbox recorded it, once at an arbitrary moment —
and restarted. Messages are counted at the server by Message-ID.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser

import pytest
from delivery_support import CAMPAIGN, NOW, REPO, make_customer

from delivery.dispatch import dispatch
from delivery.outbox import Outbox, OutboxState
from delivery.resend import resend_unknown
from delivery.sink import MaildirSink
from delivery.transport import SmtpTransport

MESSAGES = 12

_DISPATCHER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from delivery.dispatch import dispatch
    from delivery.outbox import Outbox
    from delivery.transport import SmtpTransport

    db, port, pause = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])

    class Paced:
        # Widens the window between "the server has it" and "the outbox knows it".
        def __init__(self, inner):
            self.inner = inner

        def send(self, msg, recipient):
            provider_id = self.inner.send(msg, recipient)
            print("delivered", flush=True)
            time.sleep(pause)
            return provider_id

    with Outbox(db) as outbox, SmtpTransport("127.0.0.1", port) as smtp:
        report = dispatch(
            outbox,
            Paced(smtp),
            now=datetime.now(UTC),
            is_suppressed=lambda customer_id: False,
            stale_after=timedelta(0),  # the previous dispatcher is known to be dead
            batch_size=4,
        )
    print(f"done sent={report.sent} unknown={len(report.reconciled_unknown)}", flush=True)
    """
)


def _start(outbox: Outbox, sink: MaildirSink, pause: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _DISPATCHER, str(outbox.db_path), str(sink.port), str(pause)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill_after(worker: subprocess.Popen[str], deliveries: int, extra: float = 0.0) -> None:
    assert worker.stdout is not None
    for _ in range(deliveries):
        assert worker.stdout.readline() == "delivered\n"
    time.sleep(extra)
    worker.kill()  # SIGKILL: no cleanup, no finally blocks, like a lost machine
    worker.wait(timeout=10)


def _delivered(sink: MaildirSink) -> Counter[str]:
    parser = BytesHeaderParser()
    return Counter(str(parser.parsebytes(raw)["Message-ID"]) for raw in sink.messages())


@pytest.mark.timeout(120)
def test_killed_and_restarted_dispatcher_delivers_nothing_twice(
    outbox: Outbox, compose: Callable[..., EmailMessage], sink: MaildirSink
) -> None:
    for n in range(MESSAGES):
        customer = make_customer(n)
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=customer.id,
            recipient=str(customer.email),
            message=compose(customer),
            due_at=NOW,
            now=NOW,
        )

    kills = 0
    # 1. Killed in the worst spot: the third message is at the server, not yet recorded.
    _kill_after(_start(outbox, sink, pause=2.0), deliveries=3)
    kills += 1
    # 2. Killed at an arbitrary moment of a fast batch.
    _kill_after(_start(outbox, sink, pause=0.02), deliveries=2, extra=0.03)
    kills += 1
    # 3. Runs to the end.
    final = _start(outbox, sink, pause=0.0)
    out, _ = final.communicate(timeout=60)
    assert final.returncode == 0 and "done" in out

    delivered = _delivered(sink)
    assert all(count == 1 for count in delivered.values()), "a message was delivered twice"
    items = outbox.items(campaign_id=CAMPAIGN)
    assert len(items) == MESSAGES
    assert {item.state for item in items} <= {OutboxState.sent, OutboxState.unknown}
    unknown = [item for item in items if item.state is OutboxState.unknown]
    # One sending thread: at most the one message in flight at each kill is in doubt.
    assert 1 <= len(unknown) <= kills
    for item in items:
        if item.state is OutboxState.sent:
            assert delivered[str(item.message_id)] == 1
    # The worst-spot kill left a message that did arrive but was never recorded.
    assert any(delivered[str(item.message_id)] == 1 for item in unknown)

    # The operator checks the mailbox and resends only what did not arrive.
    not_arrived = [i.customer_id for i in unknown if delivered[str(i.message_id)] == 0]
    result = resend_unknown(
        outbox, CAMPAIGN, not_arrived, confirmed_not_delivered=True, now=datetime.now(UTC)
    )
    assert result.requeued == not_arrived
    with SmtpTransport("127.0.0.1", sink.port) as smtp:
        again = dispatch(outbox, smtp, now=datetime.now(UTC), is_suppressed=lambda c: False)
    assert again.sent == len(not_arrived)
    delivered = _delivered(sink)
    assert len(delivered) == MESSAGES and set(delivered.values()) == {1}
