"""A real SMTP server on loopback that files every message into a Maildir.

The demo and the tests send through it over real SMTP, so the transport is exercised
end to end without any outside mail server. Open the Maildir with any mail client
(`mutt -f`, Thunderbird) or with `mailbox.Maildir`.
"""

from __future__ import annotations

import asyncio
import hmac
import mailbox
import warnings
from collections.abc import Awaitable
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, BinaryIO, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from delivery.esp import DeliveryStatus, ProviderVerdict


class _MaildirHandler:
    def __init__(self, maildir: mailbox.Maildir) -> None:
        self._maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        # Like a local delivery agent: record the envelope, which Bcc and forwarding
        # make differ from the headers.
        trace = f"Return-Path: <{envelope.mail_from}>\r\n".encode()
        for rcpt in envelope.rcpt_tos:
            trace += f"Delivered-To: {rcpt}\r\n".encode()
        # Maildir writes hit the disk: keep them off the event loop.
        key = await asyncio.get_running_loop().run_in_executor(
            None, self._maildir.add, trace + content
        )
        return f"250 2.0.0 Ok: queued as {key}"


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self._credentials = (username.encode(), password.encode())

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and hmac.compare_digest(
            data.login + b"\0" + data.password, b"\0".join(self._credentials)
        )
        return AuthResult(success=ok, handled=False)


class AnyPortController(Controller):
    """aiosmtpd `Controller` that also works with port 0 (the OS picks a free port)."""

    # aiosmtpd connects to `self.port` to check the server is up, which fails for port 0:
    # learn the port the OS picked as soon as the socket is bound.
    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        async def bind() -> asyncio.AbstractServer:
            server = await super(AnyPortController, self)._create_server()
            # aiosmtpd awaits `loop.create_server`, which makes an asyncio.Server.
            self.port = cast(asyncio.Server, server).sockets[0].getsockname()[1]
            return server

        return bind()

    def factory(self) -> SMTP:
        # AUTH without TLS is deliberate here (loopback only): silence aiosmtpd's warning
        # that would otherwise print once per connection.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            smtp: SMTP = Controller.factory(self)  # aiosmtpd leaves factory() unannotated
            return smtp


class MaildirSink:
    """Local SMTP server (aiosmtpd) storing each received message in `maildir`.

    `port=0` picks a free port; read it from `.port` after `start()`. With `auth`, the
    server requires AUTH LOGIN/PLAIN with that (username, password) — allowed without TLS
    because it only listens on loopback.
    """

    def __init__(
        self,
        maildir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.maildir_path = maildir
        self.host = host
        self._requested_port = port
        self.maildir = mailbox.Maildir(maildir, create=True)
        kwargs: dict[str, Any] = {}
        if auth is not None:
            kwargs = {
                "authenticator": _Authenticator(*auth),
                "auth_required": True,
                "auth_require_tls": False,
            }
        self._controller = AnyPortController(
            _MaildirHandler(self.maildir), hostname=host, port=port, **kwargs
        )
        self._running = False

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the real one once started)."""
        return self._controller.port

    def start(self) -> MaildirSink:
        """Start serving in a background thread; returns self."""
        self._controller.start()
        self._running = True
        return self

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._running

    def stop(self) -> None:
        """Stop serving (messages already received stay in the Maildir)."""
        if self._running:
            self._controller.stop()
            self._running = False
            self._controller.port = self._requested_port

    def __enter__(self) -> MaildirSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def delivery_status(self, message_id: str) -> DeliveryStatus:
        """Whether the Maildir holds the message with this Message-ID (any copy).

        This server is the provider for mail sent through it, and a message is in the
        Maildir once the server said 250 (Maildir delivery is one rename), so "not found"
        is final as soon as no server that could still be taking it is running.
        """
        parser = BytesHeaderParser()
        box = mailbox.Maildir(self.maildir_path, create=False)
        for key in box.iterkeys():
            try:
                with box.get_file(key) as handle:
                    found = parser.parse(cast(BinaryIO, handle))["Message-ID"]
            except (FileNotFoundError, KeyError):  # removed meanwhile (reelcast forget)
                continue
            if found is not None and str(found).strip() == message_id.strip():
                return DeliveryStatus(ProviderVerdict.accepted, provider_id=key)
        return DeliveryStatus(ProviderVerdict.not_found)

    def messages(self) -> list[bytes]:
        """Raw bytes of every stored message, oldest first."""
        # A fresh view: the server thread keeps adding through its own Maildir object.
        box = mailbox.Maildir(self.maildir_path, create=False)
        entries = [
            (box.get_message(key).get_date(), key, box.get_bytes(key)) for key in box.iterkeys()
        ]
        return [data for _, _, data in sorted(entries)]
