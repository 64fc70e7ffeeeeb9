"""The faster email path sends what the plain one did: same bytes, same headers, same parts.

Composing caches each image's encoded part, `message_to_bytes` writes bodies in one piece,
and dispatch hands SMTP the stored bytes without parsing and re-serializing them. Each is
pinned here against the plain standard-library way of doing the same thing.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import CAMPAIGN, NOW, make_customer
from PIL import Image

from delivery.dispatch import dispatch
from delivery.errors import UnknownOutcomeError
from delivery.esp import build_payload
from delivery.outbox import Outbox, OutboxState, QueuedEmail
from delivery.policy import EMAIL_POLICY, leaf_payload, message_from_bytes, message_to_bytes
from delivery.sink import MaildirSink
from delivery.transport import SmtpTransport


@pytest.fixture
def gif(tmp_path: Path) -> Path:
    path = tmp_path / "preview.gif"
    frames = [Image.new("RGB", (60, 100), (n * 40, 80, 200 - n * 30)) for n in range(5)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _stdlib_bytes(msg: EmailMessage, seed: int) -> bytes:
    random.seed(seed)  # the generator draws the multipart boundaries
    return copy.deepcopy(msg).as_bytes(policy=EMAIL_POLICY)


def _fast_bytes(msg: EmailMessage, seed: int) -> bytes:
    random.seed(seed)
    return message_to_bytes(copy.deepcopy(msg))


def _plain_compose(msg: EmailMessage, gif: Path) -> EmailMessage:
    """The composed message rebuilt the way compose did before the image cache: its own
    headers, text and HTML, and the GIF added with `add_related` from the file."""
    text_part, html_part = list(msg.iter_parts())
    html = html_part.get_body(("html",))
    assert html is not None
    image = next(p for p in msg.walk() if p.get_content_maintype() == "image")
    plain = EmailMessage(policy=EMAIL_POLICY)
    for name, value in msg.items():
        if name.lower() not in ("mime-version", "content-type", "content-transfer-encoding"):
            plain[name] = str(value)
    plain.set_content(text_part.get_content())
    plain.add_alternative(html.get_content(), subtype="html")
    list(plain.iter_parts())[1].add_related(
        gif.read_bytes(),
        maintype="image",
        subtype="gif",
        cid=str(image["Content-ID"]),
        disposition="inline",
        filename="preview.gif",
    )
    return plain


def test_composed_email_is_byte_for_byte_the_plain_composition(
    compose: Callable[..., EmailMessage], gif: Path
) -> None:
    for n in (1, 2):  # the first composes with an empty image cache, the second from it
        msg = compose(make_customer(n, first_name="Zoë", last_name="O'Brien"), gif=gif)
        assert _fast_bytes(msg, n) == _stdlib_bytes(_plain_compose(msg, gif), n)


def test_message_to_bytes_is_the_standard_library_serialization(
    compose: Callable[..., EmailMessage], gif: Path
) -> None:
    # With the GIF, with the poster, and with a text part holding the start of a boundary.
    for seed, msg in enumerate((compose(gif=gif), compose(), compose(postal_address="--====="))):
        assert _fast_bytes(msg, seed) == _stdlib_bytes(msg, seed)


def test_stored_bytes_survive_parse_and_reserialize_unchanged(
    compose: Callable[..., EmailMessage], gif: Path
) -> None:
    # What lets dispatch send the stored bytes: the old path parsed and re-serialized them.
    msg = compose(make_customer(3, first_name="Chloé", last_name="Ĳsselmeer " * 6), gif=gif)
    data = message_to_bytes(msg)
    assert message_to_bytes(message_from_bytes(data)) == data


def _received(sink: MaildirSink) -> bytes:
    # The sink prepends Return-Path and Delivered-To, as a delivery agent does.
    (data,) = sink.messages()
    return re.sub(rb"\A(Return-Path: .*\r\nDelivered-To: .*\r\n)", b"", data)


def test_server_receives_the_bytes_the_old_dispatch_sent(
    compose: Callable[..., EmailMessage], gif: Path, tmp_path: Path, outbox: Outbox
) -> None:
    customer = make_customer(4)
    msg = compose(customer, gif=gif, pseudonym="pseudo-4", subject=["One", "Two"])
    assert outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id=customer.id,
        recipient=str(customer.email),
        message=msg,
        due_at=NOW,
        now=NOW,
    )
    item = outbox.get(CAMPAIGN, customer.id)
    assert item is not None
    with MaildirSink(tmp_path / "new") as new, MaildirSink(tmp_path / "old") as old:
        with SmtpTransport("127.0.0.1", new.port) as smtp:
            report = dispatch(outbox, smtp, now=NOW, is_suppressed=lambda _: False)
        with SmtpTransport("127.0.0.1", old.port) as smtp:
            smtp.send(item.email(), item.recipient)  # the old way: parse, serialize again
        got, before = _received(new), _received(old)
    assert report.sent == 1 and got == before

    seen = message_from_bytes(got)
    assert seen["Message-ID"] == item.message_id
    assert str(seen["To"]) == f"Ann Lee <{customer.email}>"
    assert seen["List-Unsubscribe"].startswith("<https://shop.example/u/")
    assert "<mailto:unsubscribe@shop.example?subject=unsubscribe" in seen["List-Unsubscribe"]
    assert seen["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (seen["X-Campaign-ID"], seen["X-Reelcast-Pseudonym"]) == (CAMPAIGN, "pseudo-4")
    assert seen["X-Reelcast-Variant"] in {"A", "B"}
    assert [p.get_content_type() for p in seen.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/gif",
    ]
    (image,) = [p for p in seen.walk() if p.get_content_maintype() == "image"]
    html = seen.get_body(("html",))
    assert html is not None
    assert f'src="cid:{str(image["Content-ID"]).strip("<>")}"' in html.get_content()
    assert image.get_content_disposition() == "inline" and image.get_filename() == "preview.gif"
    assert leaf_payload(image) == gif.read_bytes()


class _MessageOnly:
    """A transport like the email API's: it takes an `EmailMessage`, never bytes."""

    def __init__(self) -> None:
        self.got: list[EmailMessage] = []

    def send(self, msg: EmailMessage, recipient: str) -> str:
        self.got.append(msg)
        return "id-1"


def test_a_transport_without_bytes_gets_the_parsed_message_and_the_same_allowlist(
    compose: Callable[..., EmailMessage], gif: Path, outbox: Outbox
) -> None:
    customer = make_customer(5)
    msg = compose(customer, gif=gif, pseudonym="pseudo-5")
    outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id=customer.id,
        recipient=str(customer.email),
        message=msg,
        due_at=NOW,
        now=NOW,
    )
    item = outbox.get(CAMPAIGN, customer.id)
    assert item is not None
    transport = _MessageOnly()
    assert dispatch(outbox, transport, now=NOW, is_suppressed=lambda _: False).sent == 1
    (got,) = transport.got
    assert message_to_bytes(got) == item.message
    assert build_payload(got, str(customer.email)) == build_payload(
        item.email(), str(customer.email)
    )


class _BytesSpy:
    """Takes bytes; records the row's state at the moment it is handed the message."""

    def __init__(self, outbox: Outbox, fail: BaseException | None = None) -> None:
        self.outbox = outbox
        self.fail = fail
        self.seen: list[tuple[OutboxState, bool, bytes]] = []

    def send(self, msg: EmailMessage, recipient: str) -> str:
        raise AssertionError("dispatch should hand over the stored bytes")

    def send_bytes(self, data: bytes, recipient: str) -> str:
        (row,) = self.outbox.items()
        self.seen.append((row.state, row.send_started_at is not None, data))
        if self.fail is not None:
            raise self.fail
        return "queued-1"


@pytest.mark.parametrize(
    ("fail", "final"),
    [
        (None, OutboxState.sent),
        (UnknownOutcomeError("lost during DATA"), OutboxState.unknown),
        (RuntimeError("bug in a transport"), OutboxState.unknown),
    ],
)
def test_send_started_is_recorded_before_the_bytes_leave(
    enqueue: Callable[..., bool], outbox: Outbox, fail: BaseException | None, final: OutboxState
) -> None:
    assert enqueue(6)
    spy = _BytesSpy(outbox, fail)
    if isinstance(fail, RuntimeError):
        with pytest.raises(RuntimeError):
            dispatch(outbox, spy, now=NOW, is_suppressed=lambda _: False)
    else:
        dispatch(outbox, spy, now=NOW, is_suppressed=lambda _: False)
    (row,) = outbox.items()
    assert spy.seen == [(OutboxState.sending, True, row.message)]
    assert row.state == final


def test_enqueue_many_keeps_one_row_per_key_and_reads_the_message_id(
    compose: Callable[..., EmailMessage], outbox: Outbox
) -> None:
    first, second = make_customer(7), make_customer(8)
    entries = [QueuedEmail(CAMPAIGN, c.id, str(c.email), compose(c), NOW) for c in (first, second)]
    assert outbox.enqueue_many(entries, now=NOW) == [True, True]
    assert outbox.enqueue_many(entries[1:], now=NOW) == [False]
    assert outbox.queued_customers(CAMPAIGN) == {first.id, second.id}
    for entry in entries:
        item = outbox.get(CAMPAIGN, entry.customer_id)
        assert item is not None and item.message_id == item.email()["Message-ID"]
