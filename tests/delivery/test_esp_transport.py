"""EspTransport against the ESP simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import CAMPAIGN, NOW, make_customer

from compliance.pseudonym import pseudonymize
from delivery.dispatch import dispatch
from delivery.errors import (
    ConnectionSendError,
    PermanentSendError,
    TransientSendError,
    UnknownOutcomeError,
)
from delivery.esp import EspTransport, build_payload, parse_retry_after
from delivery.esp_sim import EspSimulator
from delivery.outbox import Outbox, OutboxState
from delivery.resend import reconcile_with_provider
from delivery.transport import Transport

Compose = Callable[..., EmailMessage]
KEY = "sim-key"
PSEUDONYM_SECRET = b"pseudonym-secret-for-tests-32-bytes"
RECIPIENT = "shopper1@mail.example"


@pytest.fixture
def sim() -> Iterator[EspSimulator]:
    with EspSimulator(api_key=KEY) as server:
        yield server


class Sleeps:
    """Records backoff waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def esp(sim: EspSimulator, sleeps: Sleeps) -> Iterator[EspTransport]:
    with EspTransport(sim.url, KEY, timeout=5, max_attempts=4, sleep=sleeps) as transport:
        yield transport


def _message(compose: Compose, n: int = 1, **overrides: object) -> EmailMessage:
    customer = make_customer(n, last_name="Lee-Profile", phone="+49 30 1234567", **overrides)
    return compose(customer, pseudonym=pseudonymize(PSEUDONYM_SECRET, customer.id))


def test_message_is_accepted_with_the_providers_id(
    esp: EspTransport, sim: EspSimulator, compose: Compose
) -> None:
    assert isinstance(esp, Transport)
    provider_id = esp.send(_message(compose), RECIPIENT)
    assert provider_id in sim.accepted
    [received] = sim.sends()
    assert received.status == 202
    body = received.body
    assert body["personalizations"] == [{"to": [{"email": RECIPIENT}]}]
    assert body["from"] == {"email": "news@shop.example", "name": "Demo Shop"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["attachments"][0]["disposition"] == "inline"
    assert body["attachments"][0]["content_id"] in body["content"][1]["value"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_payload_carries_only_the_address_the_message_and_allowlisted_metadata(
    compose: Compose, sim: EspSimulator, esp: EspTransport
) -> None:
    customer = make_customer(7, last_name="Lee-Profile", phone="+49 30 1234567")
    msg = _message(compose, 7)
    esp.send(msg, str(customer.email))
    body = sim.sends()[0].body
    pseudonym = pseudonymize(PSEUDONYM_SECRET, customer.id)
    assert body["custom_args"] == {
        "campaign_id": CAMPAIGN,
        "pseudonym": pseudonym,
        "variant": "A",
        "reelcast_message_id": msg["Message-ID"],
    }
    assert body["categories"] == ["reelcast", CAMPAIGN]
    assert set(body) <= {
        "personalizations",
        "from",
        "subject",
        "content",
        "custom_args",
        "categories",
        "headers",
        "attachments",
        "send_at",
        "batch_id",
    }
    assert set(body["headers"]) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    wire = json.dumps(body)
    # Nothing of the profile but the address (and the first name in the greeting).
    for value in (customer.id, "Lee-Profile", "+49 30 1234567", "1234567"):
        assert value not in wire
    metadata = json.dumps([body["custom_args"], body["categories"], body["personalizations"]])
    for value in (customer.first_name, customer.id):
        assert value not in metadata


def test_metadata_of_the_wrong_shape_never_leaves(compose: Compose) -> None:
    msg = compose(make_customer(3))
    msg["X-Reelcast-Pseudonym"] = "cust-00003"  # a raw id where a pseudonym belongs
    msg["X-Customer-Phone"] = "+1 555 0100"  # not on the allowlist at all
    body = build_payload(msg, RECIPIENT)
    assert "pseudonym" not in body["custom_args"]
    assert "cust-00003" not in json.dumps(body) and "555 0100" not in json.dumps(body)


def test_429_is_retried_after_the_providers_retry_after(
    esp: EspTransport, sim: EspSimulator, sleeps: Sleeps, compose: Compose
) -> None:
    sim.fail_next(429, 2, retry_after="3")
    provider_id = esp.send(_message(compose), RECIPIENT)
    assert provider_id in sim.accepted and len(sim.accepted) == 1
    assert [r.status for r in sim.sends()] == [429, 429, 202]
    assert sleeps.waits == [3.0, 3.0]


def test_a_real_rate_limit_window_is_waited_out(sim: EspSimulator, compose: Compose) -> None:
    sim.rate_limit = (2, 1.0)
    with EspTransport(sim.url, KEY, max_attempts=5, max_wait=2.0) as esp:
        ids = [esp.send(_message(compose, n), f"s{n}@mail.example") for n in range(3)]
    assert len(set(ids)) == 3 and len(sim.accepted) == 3
    assert 429 in [r.status for r in sim.sends()]


def test_5xx_is_retried_with_backoff_then_reported_transient(
    esp: EspTransport, sim: EspSimulator, sleeps: Sleeps, compose: Compose
) -> None:
    sim.fail_next(503, 1)
    assert esp.send(_message(compose), RECIPIENT) in sim.accepted
    sim.fail_next(503, 4)
    with pytest.raises(TransientSendError, match="503") as caught:
        esp.send(_message(compose, 2), RECIPIENT)
    assert not isinstance(caught.value, UnknownOutcomeError)
    assert sleeps.waits == [0.5, 0.5, 1.0, 2.0]
    assert len(sim.accepted) == 1


@pytest.mark.parametrize("status", [500, 502])
def test_a_gateway_error_after_the_provider_took_the_message_is_not_sent_twice(
    esp: EspTransport, sim: EspSimulator, compose: Compose, status: int
) -> None:
    sim.fail_next(status, 1, after_accept=True)
    provider_id = esp.send(_message(compose), RECIPIENT)
    assert list(sim.accepted) == [provider_id]  # one copy: found by asking, not re-posted
    sim.fail_next(status, 1)  # not taken this time: unknown, for a later reconcile
    with pytest.raises(UnknownOutcomeError, match=str(status)):
        esp.send(_message(compose, 2), RECIPIENT)
    assert len(sim.accepted) == 1 and len(sim.sends()) == 2


def test_4xx_is_permanent_and_not_retried(
    esp: EspTransport, sim: EspSimulator, compose: Compose
) -> None:
    sim.fail_next(400, 1)
    with pytest.raises(PermanentSendError, match="400"):
        esp.send(_message(compose), RECIPIENT)
    assert len(sim.sends()) == 1


def test_bad_key_stops_the_batch_instead_of_failing_messages(
    sim: EspSimulator, compose: Compose
) -> None:
    with (
        EspTransport(sim.url, "wrong-key") as esp,
        pytest.raises(ConnectionSendError, match="401"),
    ):
        esp.send(_message(compose), RECIPIENT)


def test_unreachable_provider_is_a_connection_error(compose: Compose) -> None:
    with (
        EspTransport("http://127.0.0.1:9", KEY, max_attempts=2, sleep=lambda s: None) as esp,
        pytest.raises(ConnectionSendError),
    ):
        esp.send(_message(compose), RECIPIENT)


def test_gateway_timeout_after_accepting_is_settled_by_asking_the_provider(
    esp: EspTransport, sim: EspSimulator, compose: Compose, outbox: Outbox
) -> None:
    outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id="cust-00001",
        recipient=RECIPIENT,
        message=_message(compose),
        due_at=NOW,
        now=NOW,
    )
    sim.fail_next(504, 1, after_accept=True)
    report = dispatch(outbox, esp, now=NOW, is_suppressed=lambda cid: False)
    assert report.sent == 1 and report.unknown == 0 and len(sim.accepted) == 1
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.sent
    assert item.provider_id in sim.accepted
    assert (
        dispatch(outbox, esp, now=NOW + timedelta(hours=1), is_suppressed=lambda c: False).sent == 0
    )
    assert len(sim.accepted) == 1


def test_an_unknown_row_the_provider_has_is_reconciled_as_sent(
    esp: EspTransport, sim: EspSimulator, compose: Compose, outbox: Outbox
) -> None:
    outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id="cust-00001",
        recipient=RECIPIENT,
        message=_message(compose),
        due_at=NOW,
        now=NOW,
    )
    [item] = outbox.claim_due(NOW, 1)
    outbox.begin_send(item, NOW)
    esp.send(item.email(), item.recipient)  # it went out; then the process died
    outbox.mark_unknown(item.id, "killed after the request was written", NOW)
    settled = reconcile_with_provider(outbox, esp, now=NOW + timedelta(minutes=1))
    assert settled.sent == [(CAMPAIGN, "cust-00001")]
    item = outbox.get(CAMPAIGN, "cust-00001")
    assert item is not None and item.state is OutboxState.sent and item.provider_id in sim.accepted


def test_unknown_rows_the_provider_never_got_are_requeued_only_after_settling(
    esp: EspTransport, sim: EspSimulator, compose: Compose, outbox: Outbox
) -> None:
    outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id="cust-00002",
        recipient="s2@mail.example",
        message=_message(compose, 2),
        due_at=NOW,
        now=NOW,
    )
    [item] = outbox.claim_due(NOW, 1)
    outbox.begin_send(item, NOW)  # crashed before the request left
    outbox.reconcile(NOW + timedelta(minutes=11))
    early = reconcile_with_provider(outbox, esp, now=NOW + timedelta(minutes=12))
    assert early.undecided == [(CAMPAIGN, "cust-00002")]  # the activity feed may lag
    late = reconcile_with_provider(outbox, esp, now=NOW + timedelta(minutes=30))
    assert late.requeued == [(CAMPAIGN, "cust-00002")]
    report = dispatch(outbox, esp, now=NOW + timedelta(minutes=30), is_suppressed=lambda c: False)
    assert report.sent == 1 and len(sim.accepted) == 1


def test_scheduled_sends_carry_send_at_and_the_batch_id(
    sim: EspSimulator, compose: Compose, outbox: Outbox
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    later = now + timedelta(hours=5)
    for n, due in ((1, now), (2, later), (3, now + timedelta(days=5))):
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=f"c{n}",
            recipient=f"s{n}@mail.example",
            message=_message(compose, n),
            due_at=due,
            now=now,
        )
    with EspTransport(sim.url, KEY) as esp:
        esp.batch_id = esp.create_batch()
        report = dispatch(
            outbox, esp, now=now, is_suppressed=lambda c: False, schedule_ahead=timedelta(hours=24)
        )
    assert report.sent == 2
    bodies = {b.body["personalizations"][0]["to"][0]["email"]: b.body for b in sim.sends()}
    assert "send_at" not in bodies["s1@mail.example"]
    assert bodies["s2@mail.example"]["send_at"] == int(later.timestamp())
    assert {b["batch_id"] for b in bodies.values()} == {esp.batch_id}
    assert outbox.get(CAMPAIGN, "c3").state is OutboxState.queued  # type: ignore[union-attr]


def test_schedule_ahead_needs_a_transport_that_can_schedule(outbox: Outbox, tmp_path: Path) -> None:
    class Plain:
        def send(self, msg: EmailMessage, recipient: str) -> str:
            return "x"

    with pytest.raises(ValueError, match="cannot schedule"):
        dispatch(
            outbox, Plain(), now=NOW, is_suppressed=lambda c: False, schedule_ahead=timedelta(1)
        )


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Fri, 01 May 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def _unknown_row(outbox: Outbox, compose: Compose, *, due_at: datetime, started: datetime) -> None:
    """A row handed to the provider at `started` (due at `due_at`), outcome never recorded."""
    outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id="cust-00003",
        recipient="s3@mail.example",
        message=_message(compose, 3),
        due_at=due_at,
        now=started,
    )
    [item] = outbox.claim_due(started, 1, due_by=due_at)
    outbox.begin_send(item, started)
    outbox.mark_unknown(item.id, "gateway timeout", started)


def test_a_scheduled_send_the_provider_does_not_list_yet_is_not_resent(
    esp: EspTransport, compose: Compose, outbox: Outbox
) -> None:
    """Handed over with send_at 48 h ahead: the provider's activity shows nothing before
    then, so silence 20 minutes after the hand-over proves nothing."""
    _unknown_row(outbox, compose, due_at=NOW + timedelta(hours=48), started=NOW)
    soon = reconcile_with_provider(outbox, esp, now=NOW + timedelta(minutes=20))
    assert soon.undecided == [(CAMPAIGN, "cust-00003")] and not soon.requeued
    after = reconcile_with_provider(outbox, esp, now=NOW + timedelta(hours=48, minutes=20))
    assert after.requeued == [(CAMPAIGN, "cust-00003")]


def test_no_resend_on_silence_past_the_providers_activity_retention(
    esp: EspTransport, compose: Compose, outbox: Outbox
) -> None:
    _unknown_row(outbox, compose, due_at=NOW, started=NOW)
    old = reconcile_with_provider(
        outbox, esp, now=NOW + timedelta(days=31), retention=timedelta(days=30)
    )
    assert old.undecided == [(CAMPAIGN, "cust-00003")] and not old.requeued
    item = outbox.get(CAMPAIGN, "cust-00003")
    assert item is not None and item.state is OutboxState.unknown
