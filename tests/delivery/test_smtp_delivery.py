"""SmtpTransport against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import mailbox
import shutil
import ssl
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from delivery_support import CAMPAIGN, SECRET, Refuses, smtp_server

from delivery.errors import (
    ConnectionSendError,
    PermanentSendError,
    TransientSendError,
    UnknownOutcomeError,
)
from delivery.links import make_token
from delivery.sink import AnyPortController, MaildirSink
from delivery.transport import SmtpTransport, Transport

Compose = Callable[..., EmailMessage]
RECIPIENT = "shopper1@mail.example"


class HangsUpAfterData:
    """Takes the whole message, then drops the connection instead of answering."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received += 1
        server.transport.close()
        return "250 OK"


def test_email_goes_over_smtp_into_the_maildir_intact(
    sink: MaildirSink, compose: Compose, poster: Path
) -> None:
    with SmtpTransport("127.0.0.1", sink.port) as transport:
        provider_id = transport.send(compose(), RECIPIENT)

    [raw] = sink.messages()
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["Delivered-To"] == RECIPIENT
    assert received["Return-Path"] == "<news@shop.example>"
    assert provider_id in mailbox.Maildir(sink.maildir_path)

    assert received.get_content_type() == "multipart/alternative"
    assert "Hi Ann," in received.get_body(("plain",)).get_content()
    assert "Hi Ann," in received.get_body(("html",)).get_content()
    [image] = [p for p in received.walk() if p.get_content_maintype() == "image"]
    assert image.get_content() == poster.read_bytes()
    assert image["Content-ID"].strip("<>") in received.get_body(("html",)).get_content()

    token = make_token(SECRET, CAMPAIGN, "cust-00001")
    assert received["List-Unsubscribe"] == (
        f"<https://shop.example/u/{token}>, "
        f"<mailto:unsubscribe@shop.example?subject=unsubscribe%20{token}>"
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_one_connection_carries_many_messages(sink: MaildirSink, compose: Compose) -> None:
    with SmtpTransport("127.0.0.1", sink.port) as transport:
        ids = {transport.send(compose(), RECIPIENT) for _ in range(3)}
    assert len(ids) == 3
    assert len(sink.messages()) == 3


def test_smtp_transport_satisfies_the_transport_protocol() -> None:
    assert isinstance(SmtpTransport("127.0.0.1", 25), Transport)


def test_login_with_username_and_secret_password(tmp_path: Path, compose: Compose) -> None:
    from pydantic import SecretStr

    with MaildirSink(tmp_path / "Maildir", auth=("reelcast", "s3cret")) as sink:
        with SmtpTransport(
            "127.0.0.1", sink.port, username="reelcast", password=SecretStr("s3cret")
        ) as transport:
            transport.send(compose(), RECIPIENT)
        with pytest.raises(ConnectionSendError, match="535"):
            SmtpTransport("127.0.0.1", sink.port, username="reelcast", password="wrong").send(
                compose(), RECIPIENT
            )
        with pytest.raises(ConnectionSendError, match="530"):
            SmtpTransport("127.0.0.1", sink.port).send(compose(), RECIPIENT)
        assert len(sink.messages()) == 1
    assert "s3cret" not in repr(transport)


def test_4xx_reply_is_transient_and_5xx_permanent_without_the_address(compose: Compose) -> None:
    with smtp_server(Refuses(450)) as port, pytest.raises(TransientSendError) as transient:
        SmtpTransport("127.0.0.1", port).send(compose(), RECIPIENT)
    with smtp_server(Refuses(550)) as port, pytest.raises(PermanentSendError) as permanent:
        SmtpTransport("127.0.0.1", port).send(compose(), RECIPIENT)
    assert transient.value.code == 450 and permanent.value.code == 550
    for error in (transient.value, permanent.value):
        assert RECIPIENT not in str(error)
        assert "@" not in str(error)
        assert "Recipient address rejected" in str(error)


def test_unreachable_server_is_a_connection_error(compose: Compose) -> None:
    with smtp_server(Refuses(250)) as port:
        pass  # bound, then closed: nothing listens there now
    with pytest.raises(ConnectionSendError):
        SmtpTransport("127.0.0.1", port, timeout=2).send(compose(), RECIPIENT)


def test_connection_lost_after_data_is_an_unknown_outcome(compose: Compose) -> None:
    handler = HangsUpAfterData()
    with smtp_server(handler) as port, pytest.raises(UnknownOutcomeError):
        SmtpTransport("127.0.0.1", port).send(compose(), RECIPIENT)
    assert handler.received == 1


def test_server_restart_between_messages_is_survived(tmp_path: Path, compose: Compose) -> None:
    sink = MaildirSink(tmp_path / "Maildir").start()
    port = sink.port
    transport = SmtpTransport("127.0.0.1", port)
    transport.send(compose(), RECIPIENT)
    sink.stop()
    with MaildirSink(tmp_path / "Maildir", port=port) as again:
        transport.send(compose(), RECIPIENT)  # the idle connection died; reconnects once
        assert len(again.messages()) == 2
    transport.close()


class Counts:
    def __init__(self) -> None:
        self.tls_messages = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.tls_messages += session.ssl is not None
        return "250 2.0.0 Ok: queued as TLS1"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_starttls_upgrades_the_connection_before_sending(tmp_path: Path, compose: Compose) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    handler = Counts()
    controller = AnyPortController(
        handler, hostname="127.0.0.1", port=0, tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        with pytest.raises(ConnectionSendError, match="530"):
            SmtpTransport("127.0.0.1", controller.port).send(compose(), RECIPIENT)
        with SmtpTransport(
            "127.0.0.1", controller.port, starttls=True, ssl_context=client_tls
        ) as transport:
            assert transport.send(compose(), RECIPIENT) == "TLS1"
        with pytest.raises(ConnectionSendError, match="SSL"):
            SmtpTransport("127.0.0.1", controller.port, starttls=True).send(compose(), RECIPIENT)
    finally:
        controller.stop()
    assert handler.tls_messages == 1
