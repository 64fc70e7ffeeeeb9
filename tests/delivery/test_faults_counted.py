"""Faults with counted outcomes: every message exactly once at the server, none lost.

Real servers on loopback: reelcast's SMTP sink (stopped mid-dispatch, then back on the
same port) and the ESP simulator (bursts of 429 and random 5xx, also after accepting).
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import CAMPAIGN, NOW, make_customer

from delivery.dispatch import DispatchReport, dispatch
from delivery.esp import EspTransport
from delivery.esp_sim import EspSimulator
from delivery.outbox import Outbox, OutboxState
from delivery.resend import reconcile_with_provider
from delivery.sink import MaildirSink
from delivery.transport import SmtpTransport

Compose = Callable[..., EmailMessage]
MESSAGES = 120


def never(customer_id: str) -> bool:
    return False


def _fill(outbox: Outbox, compose: Compose, n: int = MESSAGES) -> None:
    for i in range(1, n + 1):
        customer = make_customer(i)
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=customer.id,
            recipient=str(customer.email),
            message=compose(customer),
            due_at=NOW,
            now=NOW,
        )


def _message_ids(maildir: Path) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in mailbox.Maildir(maildir, create=False))


def test_smtp_down_for_part_of_a_dispatch_then_back_delivers_each_message_once(
    outbox: Outbox, compose: Compose, tmp_path: Path
) -> None:
    _fill(outbox, compose)
    maildir = tmp_path / "Maildir"
    sink = MaildirSink(maildir).start()
    port = sink.port
    outages = 0

    def maybe_stop(report: DispatchReport) -> None:
        nonlocal outages
        if report.sent in (30, 75) and outages < 2 and sink.running:
            sink.stop()  # the server goes away between two messages
            outages += 1

    passes = 0
    try:
        with SmtpTransport("127.0.0.1", port, timeout=5) as transport:
            while outbox.counts(CAMPAIGN)[OutboxState.queued] and passes < 10:
                passes += 1
                report = dispatch(
                    outbox,
                    transport,
                    now=NOW + timedelta(minutes=passes),
                    is_suppressed=never,
                    on_progress=maybe_stop,
                )
                if report.transport_error:  # the operator's retry: the server is back
                    assert report.sent < MESSAGES
                    sink = MaildirSink(maildir, port=port).start()
    finally:
        sink.stop()
    counts = outbox.counts(CAMPAIGN)
    assert outages == 2 and counts[OutboxState.sent] == MESSAGES, counts
    delivered = _message_ids(maildir)
    assert len(delivered) == MESSAGES and max(delivered.values()) == 1


@pytest.fixture
def bursty_esp() -> EspSimulator:
    # 429 bursts past 25 sends a second, 10 % random 429, 10 % random 5xx, seeded.
    return EspSimulator(
        api_key="k", rate_limit=(25, 1.0), p429=0.1, p5xx=0.1, retry_after="0", seed=7
    )


def test_esp_429_bursts_and_5xx_still_deliver_each_message_exactly_once(
    outbox: Outbox, compose: Compose, bursty_esp: EspSimulator
) -> None:
    _fill(outbox, compose)
    with bursty_esp as sim:
        sim.fail_next(502, 3, after_accept=True)  # taken, then the gateway failed
        waits: list[float] = []
        with EspTransport(sim.url, "k", max_attempts=3, sleep=waits.append) as esp:
            passes = 0
            while outbox.counts(CAMPAIGN)[OutboxState.queued] and passes < 60:
                passes += 1
                dispatch(
                    outbox,
                    esp,
                    now=NOW + timedelta(hours=6 * passes),  # past any backoff
                    is_suppressed=never,
                    retry_base=timedelta(minutes=1),
                    max_attempts=50,
                )
            # Any accepted-then-failed one left unknown is settled by asking the provider.
            settled = reconcile_with_provider(outbox, esp, now=NOW + timedelta(days=20))
        counts = outbox.counts(CAMPAIGN)
        accepted = list(sim.accepted)
    assert not settled.requeued and not settled.undecided
    assert counts[OutboxState.sent] == MESSAGES and counts[OutboxState.unknown] == 0, counts
    assert len(accepted) == MESSAGES == len(set(accepted))  # none lost, none twice
    refused = [r for r in sim.sends() if r.status in (429, 500, 502, 503)]
    assert len(refused) > 10  # the faults really happened


def test_each_send_pass_settles_unknown_outcomes_with_the_email_api(
    tmp_path: Path, compose: Compose, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier pass lost two answers: the provider has one message and not the other.
    The next pass (through the one send path) asks, records the first as sent and sends
    the second: each exactly once at the provider."""
    from datetime import UTC, datetime

    from runtime.sending import send_due
    from runtime.settings import Settings
    from runtime.workspace import Workspace

    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with EspSimulator(api_key="k") as sim:
        monkeypatch.setenv("REELCAST_ESP_URL", sim.url)
        monkeypatch.setenv("REELCAST_ESP_API_KEY", "k")
        ws = Workspace(tmp_path).create()
        with Outbox(ws.state_db) as outbox, EspTransport(sim.url, "k") as esp:
            for n in (1, 2):
                customer = make_customer(n)
                outbox.enqueue(
                    campaign_id=CAMPAIGN, customer_id=customer.id,
                    recipient=str(customer.email), message=compose(customer),
                    due_at=hour_ago, now=hour_ago,
                )  # fmt: skip
            for item in outbox.claim_due(hour_ago, 2):
                outbox.begin_send(item, hour_ago)
                if item.customer_id == "cust-00001":
                    esp.send(item.email(), item.recipient)  # it went; the answer was lost
                outbox.mark_unknown(item.id, "answer lost", hour_ago)
        report, via = send_due(Settings(workspace=tmp_path), ws)
        accepted = list(sim.accepted)
    assert "email API" in via and report.sent == 1
    with Outbox(ws.state_db) as outbox:
        assert outbox.counts(CAMPAIGN)[OutboxState.sent] == 2
    assert len(accepted) == 2 == len(set(accepted))
