"""The delivery package's exceptions, and the scrub that keeps addresses out of them.

Error texts end up in logs, in the outbox's `last_error` column and in the Prefect UI, so
none of them may carry a recipient's address: SMTP servers like to echo it back
("550 <ann@example.com>: mailbox unavailable").
"""

from __future__ import annotations

import re

from retail.errors import ReelcastError

# Deliberately loose: anything shaped like local@domain, bracketed or not. Over-redacting
# a Message-ID in an error text costs nothing; leaking an address is a privacy incident.
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")

REDACTED = "[address]"


def redact_addresses(text: str, *known: str) -> str:
    """Return `text` with every e-mail address (and each of `known`) replaced by `[address]`."""
    for value in known:
        if value:
            text = re.sub(re.escape(value), REDACTED, text, flags=re.IGNORECASE)
    return _ADDRESS.sub(REDACTED, text)


class DeliveryError(ReelcastError):
    """Base of every error the delivery package raises on purpose."""


class InvalidToken(DeliveryError):
    """A link token was malformed, tampered with, or signed with another secret."""


class SendError(DeliveryError):
    """A message could not be handed to the mail provider.

    `code` is the SMTP reply code when the server gave one. The message text never holds
    the recipient's address.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientSendError(SendError):
    """The provider refused for now (4xx, timeout before the message went out): retry later."""


class ConnectionSendError(TransientSendError):
    """The provider could not be reached or logged into; nothing was sent.

    It says nothing about the message itself, so the dispatcher stops the batch and puts
    every claimed message back instead of charging each one an attempt.
    """


class PermanentSendError(SendError):
    """The provider rejected this message for good (5xx): never retry it."""


class UnknownOutcomeError(SendError):
    """The connection broke after the message may have been accepted.

    Retrying could deliver it twice, so the outbox marks it `unknown` for an operator.
    """
