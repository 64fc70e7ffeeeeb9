"""Three dispatcher processes share one PostgreSQL outbox; one is SIGKILLed mid-batch and
restarted. Every message reaches the SMTP server exactly once, and none is lost.

The dispatchers are separate processes running the real `delivery.dispatch.dispatch`
against `Outbox(url)` and sending over real SMTP to an aiosmtpd server in this process
(MaildirSink), where messages are counted by Message-ID. The victim is killed in the worst
spot: the server has taken a message (250) and the outbox does not know yet.

What "none lost" means for that message: its row was claimed and its send had started,
so after the kill nobody can tell from the outbox whether it went out. The other
dispatchers' reconcile (once its claim is stale) parks it as `unknown`, never re-sends it,
and hands the rest of the dead dispatcher's batch (claimed, never started) back to the
queue. The `unknown` row is then settled the way reelcast settles it with a provider it can
ask (`reconcile_with_provider`): the sink has that Message-ID, so the row is `sent`. Through
an SMTP relay that cannot be asked, the row would stay `unknown` for an operator
(`reelcast outbox resend`), still never sent twice.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser

import pytest
from delivery_support import CAMPAIGN, REPO

from delivery.dispatch import dispatch
from delivery.outbox import Outbox, OutboxState, QueuedEmail
from delivery.resend import reconcile_with_provider
from delivery.sink import MaildirSink
from delivery.transport import SmtpTransport
from tests.postgres import PostgresServer

MESSAGES = 2000
#: The victim freezes (and is killed) right after the server took its FREEZE_AT-th message.
FREEZE_AT = 60
#: Claims older than this are a dead dispatcher's; live ones renew theirs every quarter.
STALE_SECONDS = 3.0

_DISPATCHER = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    from delivery.dispatch import dispatch
    from delivery.outbox import Outbox, OutboxState
    from delivery.transport import SmtpTransport

    url, port = sys.argv[1], int(sys.argv[2])
    freeze_at, stale = int(sys.argv[3]), float(sys.argv[4])

    class Counting:
        # SMTP as it is; counts what the server took, and can freeze right after one.
        def __init__(self, inner):
            self.inner, self.taken = inner, 0

        def send_bytes(self, data, recipient):
            provider_id = self.inner.send_bytes(data, recipient)
            self.taken += 1
            if self.taken == freeze_at:
                print("frozen", flush=True)  # the server has it; the outbox does not
                time.sleep(600)
            return provider_id

        def send(self, msg, recipient):
            raise AssertionError("the stored bytes are sent as they are")

    deadline = time.monotonic() + 90
    with Outbox(url) as outbox, SmtpTransport("127.0.0.1", port) as smtp:
        transport = Counting(smtp)
        print("ready", flush=True)
        # A dispatcher daemon: pass after pass until nothing is queued or in flight.
        while time.monotonic() < deadline:
            report = dispatch(
                outbox,
                transport,
                is_suppressed=lambda customer_id: False,
                stale_after=timedelta(seconds=stale),
                batch_size=25,
            )
            counts = outbox.counts()
            if counts[OutboxState.queued] == counts[OutboxState.sending] == 0:
                break
            if report.sent == 0:  # others hold the rest, or a dead one's claims age
                time.sleep(0.2)
    print(f"done {transport.taken}", flush=True)
    """
)


def _start(url: str, port: int, freeze_at: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _DISPATCHER, url, str(port), str(freeze_at), str(STALE_SECONDS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def _message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Demo Shop <news@shop.example>"
    msg["To"] = f"shopper{n}@mail.example"
    msg["Subject"] = "Picked for you"
    msg["Message-ID"] = f"<{n}.spring-2026@shop.example>"
    msg.set_content(f"Hello shopper {n}")
    return msg


def _delivered(sink: MaildirSink) -> Counter[str]:
    parser = BytesHeaderParser()
    return Counter(str(parser.parsebytes(raw)["Message-ID"]) for raw in sink.messages())


def _taken(worker: subprocess.Popen[str]) -> int:
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out
    return int(out.rsplit("done ", 1)[1])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_three_dispatchers_one_killed_and_restarted_deliver_each_message_once(
    postgres: PostgresServer, sink: MaildirSink
) -> None:
    url = postgres.create_database()
    queued_at = datetime.now(UTC)
    with Outbox(url) as outbox:
        entries = [
            QueuedEmail(
                CAMPAIGN, f"cust-{n:05d}", f"shopper{n}@mail.example", _message(n), queued_at
            )
            for n in range(MESSAGES)
        ]
        assert outbox.enqueue_many(entries, now=queued_at) == [True] * MESSAGES
        expected = {str(item.message_id) for item in outbox.items()}
    assert len(expected) == MESSAGES

    victim = _start(url, sink.port, freeze_at=FREEZE_AT)
    others = [_start(url, sink.port) for _ in range(2)]
    workers = [victim, *others]
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline() == "ready\n"
        assert victim.stdout.readline() == "frozen\n"  # mid-batch, its message at the server
        victim.kill()  # SIGKILL: no cleanup, no finally blocks, like a lost machine
        victim.wait(timeout=10)
        restarted = _start(url, sink.port)
        workers.append(restarted)
        taken = [_taken(worker) for worker in [*others, restarted]]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    assert all(n > 0 for n in taken[:2]), taken  # the survivors both sent, side by side

    delivered = _delivered(sink)
    assert set(delivered) == expected, "a message was lost"
    assert set(delivered.values()) == {1}, "a message was delivered twice"
    assert sum(taken) + FREEZE_AT == MESSAGES  # the frozen one was the victim's last

    with Outbox(url) as outbox:
        counts = outbox.counts(CAMPAIGN)
        # The message in flight at the kill: parked, not re-sent; all others recorded.
        [parked] = outbox.items(campaign_id=CAMPAIGN, state=OutboxState.unknown)
        assert counts[OutboxState.sent] == MESSAGES - 1
        assert delivered[str(parked.message_id)] == 1

        # Settled by asking the server: it has that Message-ID, so the row is sent. The
        # killed dispatcher is gone and no other sends an unknown row, so the sink's
        # answer is final now (no settling delay, as runtime.sending does for its sink).
        settled = reconcile_with_provider(
            outbox, sink, now=datetime.now(UTC), settle_after=timedelta(0)
        )
        assert settled.sent == [(CAMPAIGN, parked.customer_id)]
        assert settled.requeued == settled.undecided == []
        # Nothing is left to send: another pass delivers nothing more.
        with SmtpTransport("127.0.0.1", sink.port) as smtp:
            again = dispatch(outbox, smtp, is_suppressed=lambda customer_id: False)
        assert again.sent == 0
        assert outbox.counts(CAMPAIGN)[OutboxState.sent] == MESSAGES
        assert {str(i.message_id) for i in outbox.items(state=OutboxState.sent)} == expected
    assert _delivered(sink) == delivered
