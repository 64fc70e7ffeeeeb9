"""Outbox: one row per campaign+customer, atomic claims, state moves, safe error texts.

Every test here runs on SQLite and on PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from delivery_support import CAMPAIGN, NOW

from delivery.outbox import Outbox, OutboxState, OutboxStateError
from storage import Target

Enqueue = Callable[..., bool]


@pytest.fixture
def outbox_target(database: Callable[[str], Target]) -> Target:
    return database("state")


def test_enqueue_twice_queues_one_message(outbox: Outbox, enqueue: Enqueue) -> None:
    assert enqueue(1) is True
    first = outbox.get(CAMPAIGN, "cust-00001")
    assert enqueue(1, first_name="Changed") is False
    again = outbox.get(CAMPAIGN, "cust-00001")
    assert first is not None and again is not None
    assert again.message == first.message and again.id == first.id
    assert outbox.counts(CAMPAIGN)[OutboxState.queued] == 1


def test_running_a_campaign_twice_queues_nothing_new(outbox: Outbox, enqueue: Enqueue) -> None:
    assert [enqueue(n) for n in range(1, 6)] == [True] * 5
    assert [enqueue(n) for n in range(1, 6)] == [False] * 5
    assert sum(outbox.counts().values()) == 5


def test_key_holds_even_after_the_message_was_sent(outbox: Outbox, enqueue: Enqueue) -> None:
    enqueue(1)
    [item] = outbox.claim_due(NOW, 10)
    outbox.begin_send(item, NOW)
    outbox.mark_sent(item.id, "provider-1", NOW)
    assert enqueue(1) is False
    assert outbox.counts(CAMPAIGN)[OutboxState.sent] == 1


def test_same_customer_in_another_campaign_is_a_new_row(
    outbox: Outbox, compose: Callable[..., EmailMessage]
) -> None:
    for campaign in ("a", "b"):
        assert outbox.enqueue(
            campaign_id=campaign,
            customer_id="cust-1",
            recipient="x@mail.example",
            message=compose(),
            due_at=NOW,
        )
    assert outbox.counts("a")[OutboxState.queued] == 1
    assert outbox.counts("b")[OutboxState.queued] == 1


def test_stored_message_is_the_composed_one(
    outbox: Outbox, compose: Callable[..., EmailMessage]
) -> None:
    msg = compose()
    outbox.enqueue(
        campaign_id=CAMPAIGN, customer_id="c", recipient="x@mail.example", message=msg, due_at=NOW
    )
    item = outbox.get(CAMPAIGN, "c")
    assert item is not None
    assert item.message_id == msg["Message-ID"]
    assert item.email()["List-Unsubscribe"] == msg["List-Unsubscribe"]
    assert b"\r\n" in item.message and b"\n" not in item.message.replace(b"\r\n", b"")


def test_claim_due_takes_only_due_rows_once_earliest_first(
    outbox: Outbox, compose: Callable[..., EmailMessage]
) -> None:
    for n, due in enumerate([NOW, NOW - timedelta(hours=1), NOW + timedelta(minutes=1)]):
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=f"c{n}",
            recipient="x@mail.example",
            message=compose(),
            due_at=due,
        )
    claimed = outbox.claim_due(NOW, 10)
    assert [i.customer_id for i in claimed] == ["c1", "c0"]
    assert all(i.state is OutboxState.sending and i.claim for i in claimed)
    assert outbox.claim_due(NOW, 10) == []
    assert [i.customer_id for i in outbox.claim_due(NOW + timedelta(minutes=1), 10)] == ["c2"]


def test_claim_due_respects_the_limit(outbox: Outbox, enqueue: Enqueue) -> None:
    for n in range(1, 6):
        enqueue(n)
    assert len(outbox.claim_due(NOW, 2)) == 2
    assert outbox.counts() == {
        OutboxState.queued: 3,
        OutboxState.sending: 2,
        OutboxState.sent: 0,
        OutboxState.failed: 0,
        OutboxState.suppressed: 0,
        OutboxState.unknown: 0,
    }


def test_concurrent_dispatchers_never_claim_the_same_row(outbox: Outbox, enqueue: Enqueue) -> None:
    for n in range(1, 41):
        enqueue(n)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        # A separate connection each, as separate processes would have.
        with Outbox(outbox.target) as own:
            while batch := own.claim_due(NOW, 3):
                with lock:
                    claimed.extend(item.id for item in batch)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == 40


def test_state_moves_and_attempts(outbox: Outbox, enqueue: Enqueue) -> None:
    enqueue(1)
    enqueue(2)
    enqueue(3)
    a, b, c = outbox.claim_due(NOW, 10)
    for item in (a, b):
        assert outbox.begin_send(item, NOW)
    outbox.mark_sent(a.id, "queue-id-1", NOW)
    outbox.retry(b.id, "451 try later", NOW + timedelta(minutes=5), NOW)
    outbox.mark_suppressed(c.id, NOW)

    sent, retried, suppressed = (outbox.get(CAMPAIGN, i.customer_id) for i in (a, b, c))
    assert sent and sent.state is OutboxState.sent and sent.provider_id == "queue-id-1"
    assert sent.sent_at == NOW and sent.attempts == 1
    assert retried and retried.state is OutboxState.queued and retried.attempts == 1
    assert retried.due_at == NOW + timedelta(minutes=5) and retried.last_error == "451 try later"
    assert suppressed and suppressed.state is OutboxState.suppressed
    with pytest.raises(OutboxStateError):
        outbox.mark_failed(a.id, "too late", NOW)


def test_begin_send_refuses_a_lost_claim(outbox: Outbox, enqueue: Enqueue) -> None:
    enqueue(1)
    [item] = outbox.claim_due(NOW, 1)
    outbox.release([item], NOW)
    assert outbox.begin_send(item, NOW) is False
    [again] = outbox.claim_due(NOW, 1)
    assert outbox.begin_send(item, NOW) is False  # the old claim does not own it
    assert outbox.begin_send(again, NOW) is True
    assert outbox.begin_send(again, NOW) is False  # and only once


def test_no_recipient_address_in_stored_errors(outbox: Outbox, enqueue: Enqueue) -> None:
    enqueue(1)
    enqueue(2)
    a, b = outbox.claim_due(NOW, 10)
    outbox.begin_send(a, NOW)
    outbox.begin_send(b, NOW)
    outbox.mark_failed(a.id, "550 <SHOPPER1@mail.example>: no such user", NOW)
    outbox.mark_unknown(b.id, "lost after DATA for shopper2@mail.example (cc boss@corp.example)")
    for item in outbox.items(campaign_id=CAMPAIGN):
        assert item.last_error and "@" not in item.last_error
        assert "mail.example" not in item.last_error
    assert outbox.items(state=OutboxState.failed)[0].last_error == ("550 <[address]>: no such user")


def test_repr_of_an_item_shows_no_personal_data(outbox: Outbox, enqueue: Enqueue) -> None:
    enqueue(1)
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert "shopper1" not in repr(item) and "Ann" not in repr(item)


def test_rows_survive_reopening(
    database: Callable[[str], Target], compose: Callable[..., EmailMessage]
) -> None:
    path = database("outbox")
    with Outbox(path) as box:
        box.enqueue(
            campaign_id="c", customer_id="u", recipient="x@mail.example", message=compose(),
            due_at=NOW,
        )  # fmt: skip
    with Outbox(path) as box:
        assert box.counts("c")[OutboxState.queued] == 1
        assert box.enqueue(
            campaign_id="c", customer_id="u", recipient="x@mail.example", message=b"x",
            due_at=NOW,
        ) is False  # fmt: skip


def test_naive_times_are_refused(outbox: Outbox, enqueue: Enqueue) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        outbox.claim_due(datetime(2026, 5, 1, 10, 0), 1)
