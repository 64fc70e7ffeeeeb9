"""Hand a composed message to a mail provider: the `Transport` interface and SMTP.

The SMTP dialogue is driven step by step (MAIL, RCPT, DATA) rather than through
`send_message`, because the step at which it fails decides what the outbox may do:
before DATA nothing can have been delivered and a retry is safe; once DATA is under way
a lost connection leaves the outcome unknown, and retrying could deliver twice.
"""

from __future__ import annotations

import inspect
import re
import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import parseaddr
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from delivery.errors import (
    ConnectionSendError,
    PermanentSendError,
    SendError,
    TransientSendError,
    UnknownOutcomeError,
    redact_addresses,
)
from delivery.policy import headers_from_bytes, message_from_bytes, message_to_bytes

_QUEUE_ID = re.compile(rb"queued as\s+<?([^\s>]+)", re.IGNORECASE)


@runtime_checkable
class Transport(Protocol):
    """Something that hands one message to a mail provider."""

    def send(self, msg: EmailMessage, recipient: str) -> str:
        """Send `msg` to `recipient` (the envelope address, which wins over the To header)
        and return the provider's id for it.

        Raises `TransientSendError` (retry later), `PermanentSendError` (never retry),
        `UnknownOutcomeError` (may have been delivered: never retry automatically).
        """
        ...


@runtime_checkable
class SchedulingTransport(Transport, Protocol):
    """A transport whose provider can hold a message until a given time (ESP `send_at`)."""

    def send(self, msg: EmailMessage, recipient: str, *, send_at: datetime | None = None) -> str:
        """As `Transport.send`; with `send_at`, the provider delivers it then, not now."""
        ...


@runtime_checkable
class BytesTransport(Transport, Protocol):
    """A transport that can send a message as the bytes the outbox stored, unparsed."""

    def send_bytes(self, data: bytes, recipient: str) -> str:
        """As `Transport.send` for the message `data` (written by `message_to_bytes`):
        the provider gets `data` byte for byte, which is what `send` of the parsed
        message would have given it."""
        ...


def send_stored(transport: Transport, data: bytes, recipient: str) -> str:
    """Send stored message bytes through `transport`: as they are when it takes bytes
    (`send_bytes`), else parsed into the `EmailMessage` its `send` needs."""
    send_bytes = getattr(transport, "send_bytes", None)
    if callable(send_bytes):
        return str(send_bytes(data, recipient))
    return transport.send(message_from_bytes(data), recipient)


def can_schedule(transport: object) -> bool:
    """True if `transport.send` takes `send_at` (checked by signature, not by type)."""
    send = getattr(transport, "send", None)
    try:
        return send is not None and "send_at" in inspect.signature(send).parameters
    except (TypeError, ValueError):
        return False


def _reply_error(stage: str, code: int, reply: bytes, *known: str) -> SendError:
    text = redact_addresses(reply.decode("utf-8", "replace"), *known)
    message = f"SMTP server refused {stage} with {code}: {text}"
    if 400 <= code < 500:
        return TransientSendError(message, code=code)
    if 500 <= code < 600:
        return PermanentSendError(message, code=code)
    # Not a reply SMTP defines for this step: nothing was accepted, so a retry is safe.
    return TransientSendError(f"unexpected reply to {stage}: {message}", code=code)


class SmtpTransport:
    """Sends over SMTP with smtplib, reusing one connection across messages.

    Not thread-safe: give each dispatching thread its own transport. Use as a context
    manager, or call `close()`, to say QUIT.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: SecretStr | str | None = None,
        starttls: bool = False,
        timeout: float = 30,
        *,
        envelope_from: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = SecretStr(password) if isinstance(password, str) else password
        self.starttls = starttls
        self.timeout = timeout
        self.envelope_from = envelope_from
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None

    def __repr__(self) -> str:
        return f"SmtpTransport(host={self.host!r}, port={self.port}, starttls={self.starttls})"

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT and drop the connection, ignoring a server that already left."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        smtp: smtplib.SMTP | None = None
        try:
            # Host given to the constructor, not to connect(): STARTTLS checks the
            # certificate against the name stored there.
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username is not None:
                secret = self._password.get_secret_value() if self._password else ""
                smtp.login(self.username, secret)
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            # The server's text may quote a login name that is an address.
            detail = redact_addresses(str(exc))
            raise ConnectionSendError(
                f"cannot use SMTP server {self.host}:{self.port}: {type(exc).__name__}: {detail}"
                " (check host, port, STARTTLS and credentials)",
                code=getattr(exc, "smtp_code", None),
            ) from None
        self._smtp = smtp
        return smtp

    def _envelope_sender(self, msg: Message) -> str:
        sender = self.envelope_from or parseaddr(str(msg.get("From", "")))[1]
        if "@" not in sender:
            raise PermanentSendError("message has no usable From address for MAIL FROM")
        return sender

    def send(self, msg: EmailMessage, recipient: str) -> str:
        """Send one message; return the server's queue id (or the Message-ID if it gave none).

        Error texts carry the SMTP code and the server's words, never an address.
        """
        sender = self._envelope_sender(msg)
        self._check_ascii(sender, recipient)
        return self._send_payload(message_to_bytes(msg), msg, sender, recipient)

    def send_bytes(self, data: bytes, recipient: str) -> str:
        """`send` for a message already serialized by `message_to_bytes` (an outbox row):
        only its headers are parsed (From for MAIL FROM, Message-ID for the return value),
        and DATA carries `data` itself, the bytes `send` would have written."""
        headers = headers_from_bytes(data)
        sender = self._envelope_sender(headers)
        self._check_ascii(sender, recipient)
        return self._send_payload(data, headers, sender, recipient)

    @staticmethod
    def _check_ascii(sender: str, recipient: str) -> None:
        if not (sender.isascii() and recipient.isascii()):
            raise PermanentSendError(
                "non-ASCII addresses need SMTPUTF8, which is not supported yet"
            )

    def _send_payload(self, payload: bytes, headers: Message, sender: str, recipient: str) -> str:
        """MAIL, RCPT, DATA for `payload`; `headers` gives the Message-ID to fall back on."""
        known = (recipient, sender)

        smtp = self._connect()
        try:
            code, reply = smtp.mail(sender)
        except smtplib.SMTPServerDisconnected:
            # A reused connection the server closed while idle: nothing was sent yet.
            self._drop()
            smtp = self._connect()
            code, reply = self._before_data(smtp.mail, sender)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise self._lost_before_data(exc) from None
        if code in (421, 530):
            # "closing channel" / "authentication required": about our session, not this
            # message, so the dispatcher should stop rather than fail every message.
            self._drop()
            raise ConnectionSendError(
                f"SMTP server refused the session with {code}: "
                f"{redact_addresses(reply.decode('utf-8', 'replace'), *known)}",
                code=code,
            )
        if code != 250:
            self._reset(code)
            raise _reply_error("MAIL FROM", code, reply, *known)
        code, reply = self._before_data(smtp.rcpt, recipient)
        if code not in (250, 251):
            self._reset(code)
            raise _reply_error("RCPT TO", code, reply, *known)

        try:
            code, reply = smtp.data(payload)
        except smtplib.SMTPDataError as exc:
            # The server answered DATA itself with an error: it did not take the message.
            self._reset(exc.smtp_code)
            raise _reply_error("DATA", exc.smtp_code, _as_bytes(exc.smtp_error), *known) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise UnknownOutcomeError(
                f"connection lost during DATA ({type(exc).__name__}); the server may have "
                "accepted the message, so it must not be re-sent automatically"
            ) from None
        if code != 250:
            self._reset(code)
            raise _reply_error("the message", code, reply, *known)

        match = _QUEUE_ID.search(reply)
        if match:
            return match.group(1).decode("ascii", "replace")
        return str(headers.get("Message-ID", "")).strip() or reply.decode("ascii", "replace")

    def _before_data(
        self, step: Callable[[str], tuple[int, bytes]], address: str
    ) -> tuple[int, bytes]:
        try:
            return step(address)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise self._lost_before_data(exc) from None

    def _lost_before_data(self, exc: BaseException) -> TransientSendError:
        return TransientSendError(
            f"connection to {self.host}:{self.port} lost before the message was sent "
            f"({type(exc).__name__})"
        )

    def _reset(self, code: int) -> None:
        # 421 means the server is closing the channel; otherwise leave the reused
        # connection clean for the next message, or drop it if even RSET fails.
        if self._smtp is None:
            return
        if code == 421:
            self._drop()
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "replace")
