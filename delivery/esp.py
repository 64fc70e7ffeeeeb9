"""Send through an email provider's HTTP API (SendGrid v3 shape) with httpx and tenacity.

`POST /v3/mail/send` answers 202 with the provider's id in `X-Message-Id`. What leaves the
house is an explicit allowlist, built by `build_payload`: the recipient's address (no
name), the message itself (subject, text, HTML, inline images, the List-Unsubscribe
headers) and non-personal metadata read from our own headers — campaign id, pseudonymous
id, subject variant and our Message-ID. Nothing else of the message's headers goes out.

Outcomes, for the outbox:
- 429 and 503: the request was not processed; retried here with backoff (Retry-After when
  given), then `TransientSendError`.
- 500, 502 and 504, and a connection lost after the request was written: the provider
  (behind its gateway) may have accepted the message, so it is never simply posted again.
  The provider is asked at once for our Message-ID: if it has it, that is the send;
  otherwise `UnknownOutcomeError`, and `delivery_status` settles it later (its activity
  feed may lag).
- 401/403 (bad key): `ConnectionSendError`, so the dispatcher stops instead of failing
  every message. Other 4xx: `PermanentSendError`.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from delivery.compose import PSEUDONYM_HEADER, VARIANT_HEADER
from delivery.errors import (
    ConnectionSendError,
    PermanentSendError,
    TransientSendError,
    UnknownOutcomeError,
    redact_addresses,
)
from delivery.policy import leaf_payload

log = logging.getLogger(__name__)

# Our header → the provider's custom_args key, and the only shape its value may have.
# A value of any other shape is dropped: a raw customer id or a name can never pass.
METADATA_ALLOWLIST: dict[str, tuple[str, re.Pattern[str]]] = {
    "X-Campaign-ID": ("campaign_id", re.compile(r"[A-Za-z0-9_.-]{1,64}")),
    PSEUDONYM_HEADER: ("pseudonym", re.compile(r"cu_[0-9a-f]{16}")),
    VARIANT_HEADER: ("variant", re.compile(r"[A-Z0-9]{1,3}")),
    "Message-ID": (
        "reelcast_message_id",
        re.compile(r"<[A-Za-z0-9._=+-]{1,200}@[A-Za-z0-9.-]{1,200}>"),
    ),
}
"""The only metadata the provider receives, and the shape each value must have."""

HEADER_ALLOWLIST = ("List-Unsubscribe", "List-Unsubscribe-Post")
"""Message headers passed to the provider verbatim (besides From and Subject)."""

MAX_SCHEDULE_AHEAD = timedelta(hours=72)  # SendGrid refuses send_at further out


class ProviderVerdict(StrEnum):
    """What the provider says about a message we may have sent."""

    accepted = "accepted"
    """It has the message (processed, delivered or bounced): never send it again."""
    not_found = "not_found"
    """It has no such message: it was not delivered, a resend is safe."""
    unknown = "unknown"
    """It could not tell (unreachable, error): decide later."""


@dataclass(frozen=True)
class DeliveryStatus:
    """The provider's answer for one of our Message-IDs."""

    verdict: ProviderVerdict
    provider_id: str | None = None
    status: str | None = None


class _RateLimited(TransientSendError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message, code=429)
        self.retry_after = retry_after


class _ServerBusy(TransientSendError):
    pass


class _NotConnected(ConnectionSendError):
    pass


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _metadata(msg: EmailMessage) -> dict[str, str]:
    args: dict[str, str] = {}
    for header, (key, shape) in METADATA_ALLOWLIST.items():
        value = str(msg.get(header, "")).strip()
        if not value:
            continue
        if shape.fullmatch(value):
            args[key] = value
        else:
            log.warning("%s header has an unexpected shape; not passed to the provider", header)
    return args


def _attachments(msg: EmailMessage) -> list[dict[str, str]]:
    out = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() == "text":
            continue
        entry = {
            "content": base64.b64encode(leaf_payload(part)).decode("ascii"),
            "type": part.get_content_type(),
            "filename": part.get_filename() or "attachment",
            "disposition": "inline" if part.get_content_disposition() == "inline" else "attachment",
        }
        if part.get("Content-ID"):
            entry["content_id"] = str(part["Content-ID"]).strip().strip("<>")
        out.append(entry)
    return out


def build_payload(
    msg: EmailMessage,
    recipient: str,
    *,
    send_at: datetime | None = None,
    batch_id: str | None = None,
    categories: Sequence[str] = ("reelcast",),
) -> dict[str, Any]:
    """The `POST /v3/mail/send` body for `msg` to `recipient`: the allowlist, nothing more.

    Only the envelope address identifies the recipient (the To header's display name is
    left out); metadata comes from `METADATA_ALLOWLIST` only.
    """
    sender_name, sender_address = parseaddr(str(msg.get("From", "")))
    if "@" not in sender_address:
        raise PermanentSendError("message has no usable From address")
    content = []
    for subtype in ("plain", "html"):
        part = msg.get_body((subtype,))
        if part is not None:
            content.append({"type": f"text/{subtype}", "value": part.get_content()})
    if not content:
        raise PermanentSendError("message has neither a text nor an HTML part")
    metadata = _metadata(msg)
    personalization: dict[str, Any] = {"to": [{"email": recipient}]}
    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": {"email": sender_address, **({"name": sender_name} if sender_name else {})},
        "subject": str(msg.get("Subject", "")),
        "content": content,
        "custom_args": metadata,
        "categories": [
            *categories,
            *([metadata["campaign_id"]] if "campaign_id" in metadata else []),
        ],
    }
    headers = {h: str(msg[h]) for h in HEADER_ALLOWLIST if msg.get(h)}
    if headers:
        payload["headers"] = headers
    attachments = _attachments(msg)
    if attachments:
        payload["attachments"] = attachments
    if send_at is not None:
        payload["send_at"] = int(send_at.timestamp())
    if batch_id is not None:
        payload["batch_id"] = batch_id
    return payload


def _wait(retry_state: RetryCallState, base: float, cap: float) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, _RateLimited) and exc.retry_after is not None:
        return min(exc.retry_after, cap)
    factor: int = 2 ** (retry_state.attempt_number - 1)
    return min(base * factor, cap)


class EspTransport:
    """A `Transport` for a SendGrid-v3-shaped HTTP API. Thread-safe (one httpx client).

    `max_attempts` counts tries inside one `send` (429, 500/502/503, refused connections);
    `max_wait` caps any single wait, including the provider's Retry-After. `batch_id`
    groups the scheduled sends of a campaign so the provider can cancel them together.
    """

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        batch_id: str | None = None,
        categories: Sequence[str] = ("reelcast",),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"ESP base URL must be http(s)://…, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.batch_id = batch_id
        self.categories = tuple(categories)
        self._sleep = sleep
        # A pooled connection the server closed while idle fails *after* the request was
        # written, which would look like an unknown outcome: expire idle ones early.
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=2.0),
            headers={"Authorization": f"Bearer {self._key.get_secret_value()}"},
        )

    def __repr__(self) -> str:
        return f"EspTransport(base_url={self.base_url!r})"

    def __enter__(self) -> EspTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type((_RateLimited, _ServerBusy, _NotConnected)),
            stop=stop_after_attempt(self.max_attempts),
            wait=lambda state: _wait(state, self.backoff, self.max_wait),
            sleep=self._sleep,
            reraise=True,
        )

    def send(self, msg: EmailMessage, recipient: str, *, send_at: datetime | None = None) -> str:
        """Hand `msg` to the provider for `recipient`; return its `X-Message-Id`.

        `send_at` asks the provider to hold the message until then (at most 72 h ahead).
        """
        if send_at is not None and send_at - datetime.now(UTC) > MAX_SCHEDULE_AHEAD:
            raise PermanentSendError("send_at is more than 72 hours ahead")
        payload = build_payload(
            msg, recipient, send_at=send_at, batch_id=self.batch_id, categories=self.categories
        )
        return self._retrying()(self._post_once, payload, recipient, msg)

    def _post_once(self, payload: dict[str, Any], recipient: str, msg: EmailMessage) -> str:
        try:
            response = self._client.post("/v3/mail/send", json=payload)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NotConnected(
                f"cannot reach the email provider at {self.base_url}: {type(exc).__name__}"
            ) from None
        except httpx.TransportError as exc:
            raise UnknownOutcomeError(
                f"connection to the email provider lost after the request was sent "
                f"({type(exc).__name__}); it may have accepted the message, so it must not "
                "be re-sent automatically"
            ) from None
        status = response.status_code
        if status in (200, 201, 202):
            return response.headers.get("X-Message-Id") or str(msg.get("Message-ID", "")).strip()
        detail = self._detail(response, recipient)
        if status == 429:
            raise _RateLimited(
                f"email provider rate limit (429): {detail}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in (500, 502, 504):
            # A gateway error may come after the provider took the message: ask before
            # anything else, and never post it a second time on a guess.
            message_id = str(msg.get("Message-ID", "")).strip()
            known = self.delivery_status(message_id) if message_id else None
            if known is not None and known.verdict is ProviderVerdict.accepted:
                return known.provider_id or message_id
            raise UnknownOutcomeError(
                f"email provider error {status}, it may have accepted the message: {detail}",
                code=status,
            )
        if status >= 500:
            raise _ServerBusy(f"email provider error {status}: {detail}", code=status)
        if status in (401, 403):
            raise ConnectionSendError(
                f"email provider refused the API key ({status}): {detail} (check the ESP key)",
                code=status,
            )
        raise PermanentSendError(
            f"email provider rejected the message ({status}): {detail}", code=status
        )

    @staticmethod
    def _detail(response: httpx.Response, recipient: str) -> str:
        try:
            errors = response.json().get("errors", [])
            text = "; ".join(str(e.get("message", e)) for e in errors) or response.reason_phrase
        except (ValueError, AttributeError):
            text = response.text[:200] or response.reason_phrase
        return redact_addresses(text, recipient)

    def create_batch(self) -> str:
        """Ask the provider for a new batch id (`POST /v3/mail/batch`)."""
        try:
            response = self._client.post("/v3/mail/batch")
            response.raise_for_status()
            return str(response.json()["batch_id"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ConnectionSendError(f"could not create a batch: {type(exc).__name__}") from None

    def delivery_status(self, message_id: str) -> DeliveryStatus:
        """Ask the provider whether it has the message with our `Message-ID`.

        Uses the activity query on the `reelcast_message_id` custom arg. Any failure
        to get a clear answer is `unknown`, never `not_found`.
        """
        query = f"unique_args['reelcast_message_id']=\"{message_id}\""
        try:
            response = self._client.get("/v3/messages", params={"query": query, "limit": 1})
        except httpx.HTTPError:
            return DeliveryStatus(ProviderVerdict.unknown)
        if response.status_code != 200:
            return DeliveryStatus(ProviderVerdict.unknown, status=f"http {response.status_code}")
        try:
            messages = response.json()["messages"]
        except (ValueError, KeyError, TypeError):
            return DeliveryStatus(ProviderVerdict.unknown)
        if not messages:
            return DeliveryStatus(ProviderVerdict.not_found)
        found = messages[0]
        return DeliveryStatus(
            ProviderVerdict.accepted, provider_id=found.get("msg_id"), status=found.get("status")
        )
