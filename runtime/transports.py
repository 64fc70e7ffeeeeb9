"""Which way email leaves: the email API, an SMTP relay, or the local SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import TYPE_CHECKING

from delivery.transport import Transport
from retail.errors import ReelcastError
from runtime.settings import Settings
from runtime.workspace import Workspace

if TYPE_CHECKING:
    from delivery.esp import DeliveryStatus
    from delivery.sink import MaildirSink
    from delivery.transport import SmtpTransport


class LocalSinkTransport:
    """SMTP to reelcast's own sink, which can also say whether it holds a message.

    `settles_at_once`: the sink's "no such message" is final once no dispatcher that could
    still be sending through a sink of this workspace is alive (see runtime.sending).
    """

    settles_at_once = True

    def __init__(self, smtp: SmtpTransport, sink: MaildirSink) -> None:
        self._smtp = smtp
        self._sink = sink

    def send(self, msg: EmailMessage, recipient: str) -> str:
        """Hand `msg` to the sink over SMTP (see `Transport.send`)."""
        return self._smtp.send(msg, recipient)

    def send_bytes(self, data: bytes, recipient: str) -> str:
        """Hand stored message bytes to the sink as they are (see `SmtpTransport.send_bytes`)."""
        return self._smtp.send_bytes(data, recipient)

    def delivery_status(self, message_id: str) -> DeliveryStatus:
        """Whether the sink's Maildir holds our `Message-ID`."""
        return self._sink.delivery_status(message_id)


class TransportSettingsError(ReelcastError, ValueError):
    """The email settings are incomplete; the message names the setting."""


@contextmanager
def open_transport(settings: Settings, ws: Workspace) -> Iterator[tuple[Transport, str]]:
    """Yield (transport, description) chosen from the settings, and close it after.

    REELCAST_ESP_URL set: the email API. Else REELCAST_SMTP_HOST set: that relay. Else
    reelcast's own SMTP server on 127.0.0.1, storing mail in the workspace's Maildir.
    """
    from delivery.esp import EspTransport
    from delivery.sink import MaildirSink
    from delivery.transport import SmtpTransport

    if settings.esp_url:
        if settings.esp_api_key is None or not settings.esp_api_key.get_secret_value():
            raise TransportSettingsError("REELCAST_ESP_URL is set but REELCAST_ESP_API_KEY is not")
        with EspTransport(settings.esp_url, settings.esp_api_key.get_secret_value()) as esp:
            yield esp, f"email API {settings.esp_url}"
        return
    if settings.smtp_host:
        with SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            settings.smtp_password,
            starttls=settings.smtp_starttls,
        ) as smtp:
            yield smtp, f"SMTP relay {settings.smtp_host}:{settings.smtp_port}"
        return
    with (
        MaildirSink(ws.maildir) as sink,
        SmtpTransport("127.0.0.1", sink.port, starttls=False) as smtp,
    ):
        via = f"local SMTP sink on 127.0.0.1 → {ws.maildir} (Maildir)"
        yield LocalSinkTransport(smtp, sink), via
