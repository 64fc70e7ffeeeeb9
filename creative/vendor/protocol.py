"""The vendor's wire protocol (Creatomate-v2 style), shared by the client and the simulator.

`POST /v2/renders` creates a render and answers 202 with a render object; `GET
/v2/renders/{id}` reads it; `GET /v2/renders?metadata.<field>=<value>` lists the renders
whose metadata field has that value (how a client finds a render it may have created
before an ambiguous failure); `POST /v2/uploads` stores an image and answers its URL.
A finished render is announced by a webhook POST of the same render object, signed with
HMAC-SHA256 over `timestamp.body`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["planned", "waiting", "rendering", "succeeded", "failed"]
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})
# How far a status is along; a webhook that goes backwards arrived out of order.
STATUS_ORDER = {"planned": 0, "waiting": 1, "rendering": 2, "succeeded": 3, "failed": 3}

RENDERS_PATH = "/v2/renders"
UPLOADS_PATH = "/v2/uploads"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
SIGNATURE_PREFIX = "v1="


class RenderObject(BaseModel):
    """A render as the vendor reports it. `url` and sizes are set once it succeeded."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    status: Status
    template_id: str
    output_format: str = "mp4"
    metadata: dict[str, str] = {}
    url: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    file_size: int | None = None
    error_message: str | None = None
    created_at: float | None = None


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for a webhook body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_ok(secret: bytes, timestamp: int, body: bytes, signature: str) -> bool:
    """True if `signature` is the vendor's signature of `body` at `timestamp`."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
