"""Once a send has started, a row only ever becomes sent or unknown: never queued again.
And a long pass stamps each message with the real time and keeps its claims alive. With
the outbox on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from delivery_support import CAMPAIGN, NOW

from delivery.dispatch import dispatch
from delivery.outbox import Outbox, OutboxState
from storage import Target

Enqueue = Callable[..., bool]


@pytest.fixture
def outbox_target(database: Callable[[str], Target]) -> Target:
    return database("state")


def never(customer_id: str) -> bool:
    return False


class Accepting:
    """A transport whose server takes every message (counted), like a real relay."""

    def __init__(self, on_send: Callable[[], None] = lambda: None) -> None:
        self.sent: list[str] = []
        self.on_send = on_send

    def send(self, msg: EmailMessage, recipient: str) -> str:
        self.on_send()
        self.sent.append(str(msg["Message-ID"]))
        return f"id-{len(self.sent)}"


@pytest.mark.parametrize("failing", ["mark_sent", "mark_unknown"])
def test_a_send_the_server_took_is_never_sent_again_when_recording_fails(
    outbox: Outbox, enqueue: Enqueue, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    enqueue(1)
    transport = Accepting()
    if failing == "mark_unknown":  # the send itself is interrupted, then parking fails too

        def interrupted() -> None:
            raise KeyboardInterrupt

        transport.on_send = interrupted

    def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(outbox, failing, locked)
        with pytest.raises((sqlite3.OperationalError, KeyboardInterrupt)):
            dispatch(outbox, transport, now=NOW, is_suppressed=never)
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.sending  # not queued again
    transport.on_send = lambda: None
    # The next passes, right away and after the stale window: nothing is sent twice.
    again = dispatch(outbox, transport, now=NOW + timedelta(seconds=5), is_suppressed=never)
    later = dispatch(outbox, transport, now=NOW + timedelta(hours=1), is_suppressed=never)
    assert again.sent == later.sent == 0
    assert len(transport.sent) == (1 if failing == "mark_sent" else 0)
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.unknown
    assert later.reconciled_unknown == [(CAMPAIGN, "cust-00001")]


class Clock:
    """A clock that moves on by `step` every time it is read."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def second_outbox(outbox: Outbox) -> Iterator[Outbox]:
    """The same outbox opened by another dispatcher process."""
    with Outbox(outbox.target) as box:
        yield box


def test_a_long_pass_keeps_its_claims_and_stamps_each_send_with_its_own_time(
    outbox: Outbox, second_outbox: Outbox, enqueue: Enqueue
) -> None:
    for n in range(1, 7):
        enqueue(n)
    clock = Clock(NOW, timedelta(minutes=2))
    reconciled: list[int] = []

    def other_dispatcher_reconciles() -> None:
        # Another dispatcher's reconcile runs while this pass sends: it may take back only
        # claims older than its stale window (10 minutes).
        done = second_outbox.reconcile(clock.now, stale_after=timedelta(minutes=10))
        reconciled.append(len(done.requeued) + len(done.unknown))

    transport = Accepting(on_send=other_dispatcher_reconciles)
    report = dispatch(outbox, transport, clock=clock, is_suppressed=never, batch_size=6)

    assert report.sent == 6 and sum(reconciled) == 0
    items = [outbox.get(CAMPAIGN, f"cust-{n:05d}") for n in range(1, 7)]
    sent_at = [i.sent_at for i in items if i is not None and i.sent_at is not None]
    assert len(sent_at) == 6 and sent_at == sorted(sent_at) and len(set(sent_at)) == 6
    assert sent_at[-1] - sent_at[0] >= timedelta(minutes=10)  # the pass outlived the window
