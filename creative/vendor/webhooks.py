"""Webhooks from the vendor, treated as hints.

A webhook only wakes the client's wait for that render early; the client then confirms
the state with a GET, so a forged, replayed, duplicated, late or lost webhook can cost at
most a request, never a wrong result. The inbox verifies the HMAC signature over
`timestamp.body`, rejects timestamps outside a tolerance (replays), drops duplicates and
webhooks that report a status behind one already seen (out of order).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from creative.vendor.protocol import (
    SIGNATURE_HEADER,
    STATUS_ORDER,
    TIMESTAMP_HEADER,
    RenderObject,
    signature_ok,
)

WEBHOOK_PATH = "/vendor/webhook"
_REMEMBERED = 50_000


@dataclass
class InboxCounts:
    """How the webhooks received so far were judged."""

    accepted: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    rejected: int = 0


class WebhookInbox:
    """Verifies, dedupes and turns vendor webhooks into wake-ups (one event loop)."""

    def __init__(
        self, secret: bytes, tolerance_s: float = 300.0, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        self._secret = secret
        self.tolerance_s = tolerance_s
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._progress: OrderedDict[str, int] = OrderedDict()
        self._waiting: dict[str, asyncio.Event] = {}
        self.counts = InboxCounts()

    def expect(self, render_id: str) -> asyncio.Event:
        """The event set when a verified webhook about `render_id` arrives."""
        event = self._waiting.setdefault(render_id, asyncio.Event())
        if render_id in self._progress:
            event.set()  # it came before we started waiting
        return event

    def done(self, render_id: str) -> None:
        """Stop waiting for `render_id`."""
        self._waiting.pop(render_id, None)

    def receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Judge one webhook delivery; returns the HTTP status to answer and a verdict."""
        try:
            timestamp = int(headers.get(TIMESTAMP_HEADER, ""))
        except ValueError:
            self.counts.rejected += 1
            return 401, "missing or malformed timestamp"
        signature = headers.get(SIGNATURE_HEADER, "")
        if not signature_ok(self._secret, timestamp, body, signature):
            self.counts.rejected += 1
            return 401, "bad signature"
        if abs(self._clock() - timestamp) > self.tolerance_s:
            self.counts.rejected += 1
            return 401, "timestamp outside tolerance"
        try:
            render = RenderObject.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            self.counts.rejected += 1
            return 400, "not a render object"
        seen = (render.id, render.status)
        if seen in self._seen:
            self.counts.duplicates += 1
            return 200, "duplicate"
        _remember(self._seen, seen, None)
        rank = STATUS_ORDER[render.status]
        if rank < self._progress.get(render.id, -1):
            self.counts.out_of_order += 1
            return 200, "out of order"
        _remember(self._progress, render.id, rank)
        self.counts.accepted += 1
        event = self._waiting.get(render.id)
        if event is not None:
            event.set()
        return 200, "accepted"

    def app(self) -> Starlette:
        """An ASGI app answering POST /vendor/webhook."""

        async def webhook(request: Request) -> JSONResponse:
            status, verdict = self.receive(request.headers, await request.body())
            return JSONResponse({"result": verdict}, status_code=status)

        return Starlette(routes=[Route(WEBHOOK_PATH, webhook, methods=["POST"])])


K = TypeVar("K")
V = TypeVar("V")


def _remember(memory: OrderedDict[K, V], key: K, value: V) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _REMEMBERED:
        memory.popitem(last=False)
