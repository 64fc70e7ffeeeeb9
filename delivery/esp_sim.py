"""A local email-provider simulator speaking the SendGrid v3 shape, on 127.0.0.1.

A real HTTP server (Starlette + uvicorn in a thread), so `EspTransport` is tested over
real sockets. It records every request it receives, and has knobs for what providers do
to you: rate limits with `Retry-After`, 5xx answers (also *after* accepting a message),
latency, a bad API key. `GET /v3/messages?query=unique_args['reelcast_message_id']="…"`
answers whether it has a message, which is how `unknown` outbox rows are reconciled.

Endpoints: `POST /v3/mail/send` (202 + `X-Message-Id`), `POST /v3/mail/batch`,
`GET /v3/messages`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_QUERY = re.compile(r"unique_args\['(?P<key>[A-Za-z0-9_]+)'\]=\"(?P<value>[^\"]*)\"")
_MAX_SEND_AT_AHEAD = 72 * 3600


@dataclass
class Received:
    """One request as the simulator saw it."""

    method: str
    path: str
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class _Scripted:
    status: int
    retry_after: str | None
    after_accept: bool


@dataclass
class EspSimulator:
    """SendGrid-v3-shaped provider on loopback. Knobs may be changed while it runs.

    `rate_limit=(n, seconds)`: 429 past n sends per window, with Retry-After. `p429`,
    `p5xx`: random refusals (seeded). `latency`: seconds before each answer. Use
    `fail_next` for exact scripts.
    """

    api_key: str = "sim-key"
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    rate_limit: tuple[int, float] | None = None
    p429: float = 0.0
    p5xx: float = 0.0
    retry_after: str | None = "1"
    latency: float = 0.0
    received: list[Received] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    """msg_id → payload of every message the simulator accepted (as if delivered)."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._script: deque[_Scripted] = deque()
        self._window: deque[float] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v3/mail/send", self._send, methods=["POST"]),
                Route("/v3/mail/batch", self._batch, methods=["POST"]),
                Route("/v3/messages", self._messages, methods=["GET"]),
            ]
        )

    # -- knobs -----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        after_accept: bool = False,
    ) -> None:
        """Answer the next `times` sends with `status`; `after_accept` stores the message
        first (the provider took it, then its gateway failed)."""
        with self._lock:
            for _ in range(times):
                self._script.append(_Scripted(status, retry_after, after_accept))

    def sends(self) -> list[Received]:
        """Every `POST /v3/mail/send` received, whatever the answer."""
        return [r for r in self.received if r.path == "/v3/mail/send"]

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running simulator."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> EspSimulator:
        """Serve in a background thread; returns once the port is bound."""
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="esp-sim", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("ESP simulator did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> EspSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- endpoints -------------------------------------------------------------------

    def _record(self, request: Request, status: int, body: Any) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        with self._lock:
            self.received.append(Received(request.method, request.url.path, status, body, headers))

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"errors": [{"message": message}]}, status, headers=headers)

    def _throttled(self) -> float | None:
        if self.rate_limit is None:
            return None
        limit, window = self.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._window and now - self._window[0] >= window:
                self._window.popleft()
            if len(self._window) >= limit:
                return window - (now - self._window[0])
            self._window.append(now)
        return None

    async def _send(self, request: Request) -> Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            body = json.loads(await request.body())
        except ValueError:
            self._record(request, 400, None)
            return self._error(400, "body is not JSON")
        if not self._authorized(request):
            self._record(request, 401, body)
            return self._error(401, "The provided authorization grant is invalid")
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None and not scripted.after_accept:
            self._record(request, scripted.status, body)
            headers = {"Retry-After": scripted.retry_after} if scripted.retry_after else None
            return self._error(scripted.status, "scripted failure", headers)
        wait = self._throttled()
        if wait is not None or (scripted is None and self._rng.random() < self.p429):
            self._record(request, 429, body)
            retry = str(max(1, round(wait))) if wait is not None else self.retry_after
            return self._error(429, "too many requests", {"Retry-After": retry} if retry else None)
        if scripted is None and self._rng.random() < self.p5xx:
            self._record(request, 503, body)
            return self._error(503, "service unavailable")
        problem = _validate(body)
        if problem:
            self._record(request, 400, body)
            return self._error(400, problem)
        msg_id = secrets.token_urlsafe(16)
        with self._lock:
            self.accepted[msg_id] = body
        if scripted is not None:  # after_accept: taken, but the answer is lost
            self._record(request, scripted.status, body)
            return self._error(scripted.status, "gateway timeout")
        self._record(request, 202, body)
        return Response(status_code=202, headers={"X-Message-Id": msg_id})

    async def _batch(self, request: Request) -> Response:
        if not self._authorized(request):
            self._record(request, 401, None)
            return self._error(401, "unauthorized")
        self._record(request, 201, None)
        return JSONResponse({"batch_id": secrets.token_hex(16)}, 201)

    async def _messages(self, request: Request) -> Response:
        if not self._authorized(request):
            self._record(request, 401, None)
            return self._error(401, "unauthorized")
        match = _QUERY.fullmatch(request.query_params.get("query", "").strip())
        if match is None:
            self._record(request, 400, None)
            return self._error(400, "query must be unique_args['key']=\"value\"")
        key, value = match["key"], match["value"]
        with self._lock:
            found = [
                {"msg_id": msg_id, "status": "delivered", "subject": body.get("subject")}
                for msg_id, body in self.accepted.items()
                if body.get("custom_args", {}).get(key) == value
            ]
        limit = int(request.query_params.get("limit", "10"))
        self._record(request, 200, None)
        return JSONResponse({"messages": found[:limit]})


def _validate(body: Any) -> str | None:
    """The checks SendGrid makes that our client could get wrong; None when fine."""
    if not isinstance(body, dict):
        return "body must be an object"
    for key in ("personalizations", "from", "subject", "content"):
        if not body.get(key):
            return f"{key} is required"
    for p in body["personalizations"]:
        if not p.get("to") or any("@" not in str(t.get("email", "")) for t in p["to"]):
            return "personalizations.to needs email addresses"
    args = body.get("custom_args", {})
    if not isinstance(args, dict) or any(not isinstance(v, str) for v in args.values()):
        return "custom_args values must be strings"
    if len(body.get("categories", [])) > 10:
        return "at most 10 categories"
    send_at = body.get("send_at")
    if send_at is not None and (
        not isinstance(send_at, int) or send_at - time.time() > _MAX_SEND_AT_AHEAD
    ):
        return "send_at must be a unix time at most 72 hours ahead"
    return None
