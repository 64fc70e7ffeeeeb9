"""The tracking web app: landing page, click redirect, open pixel, video files, unsubscribe.

Routes (every `{token}` is a `delivery.links` token; a forged, tampered or unknown one
gets the same bare 404 as a path that does not exist, so nothing can be enumerated):

    GET  /v/{token}              landing page: video, poster, AI label, product links
    GET  /c/{token}?u=URL        records a click, redirects (302) to URL if its host is
                                 the shop's own (allowlist), else 400: no open redirect
    GET  /o/{token}.gif          1×1 transparent GIF; records an open
    GET  /r/{key}/video.mp4      a rendered video (Range requests work, so players seek)
    GET  /r/{key}/poster.jpg     its poster (and /r/{key}/preview.gif, its GIF preview)
    GET  /g/{campaign}?exp&sig   a campaign's preview gallery, for whoever approves it:
                                 a signed link that expires (`delivery.gallery`); a
                                 forged one is a 404, an expired one a 410 saying what
                                 to do
    GET  /u/{token}              unsubscribe page with a confirm button (changes nothing)
    POST /u/{token}              RFC 8058 one-click unsubscribe: urlencoded or multipart
                                 body `List-Unsubscribe=One-Click`; suppresses at once;
                                 200, never a redirect; idempotent

Event mapping (what each hit becomes in the `TrackingEvents` store, `tracking.sqlite`):

    open pixel loaded          → open
    landing page visited       → click (product_id empty: the email's video/button link)
    click redirect followed    → click (product_id of the catalog product whose URL it is)
    unsubscribe POST           → unsubscribe (once per campaign and customer)
    email sent                 → exposure (not a hit: the flow records it after dispatch,
                                 `TrackingEvents.record_exposures`)

Noise kept out of training and the report (`delivery.traffic`):

- de-duplication: one open per token and one click per token and product per
  `TrafficPolicy.dedup_window` (1 h); repeats only raise the stored event's count;
- machine traffic: HEAD requests, known scanner/preview/library agents, and hits within
  `TrafficPolicy.too_soon` (10 s) of the message's delivery are stored with a reason
  code ('head', 'agent', 'soon') and never reach `TrackingEvents.events`. The user
  agent and the address are looked at, never stored;
- limits: a token bucket per client address (every route but the one-click POST) and
  one per token (landing, click, pixel, unsubscribe page); past either the answer is
  429 with Retry-After. Bodies are refused over 64 KiB (413) or when they take longer
  than 10 s to arrive (408).

The one-click unsubscribe POST with a valid token is never refused by a limit (mailbox
providers make it from shared servers) and never redirects; once the customer is
suppressed a repeat writes nothing when its token is over the limit. A hit the store
cannot take (the database busy past its short timeout, or unreachable) is logged and
dropped: the visitor still gets the redirect, the page or the pixel.

Several processes (`reelcast track serve --workers N`, or copies behind a load balancer)
may serve one campaign against one database (a SQLite file on one machine, PostgreSQL
for several): what must hold for the data is decided by the database, not by a process's
memory — one open and one click per window (`TrackingEvents.record_hit` locks the hit's
key in the database), one unsubscribe event and one suppression per customer (unique
keys). The rate limits are the exception: their buckets are in each process's memory,
so with N processes a token or an address may make up to N times the configured rate
(a front proxy's limit is the place for an exact one).

Logs carry the route shape and status only — no tokens, ids, query strings or client
addresses.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from compliance.suppression import SuppressionList
from delivery.errors import InvalidToken
from delivery.events_store import TrackingEvents
from delivery.gallery import Gallery, LinkCheck, check_link, render_page, served_href
from delivery.links import Secret, read_token
from delivery.policy import leaf_payload
from delivery.tracking_pages import Landing, expired_page, landing_page, unsubscribe_page
from delivery.traffic import (
    PER_ADDRESS,
    PER_TOKEN,
    RateLimit,
    RateLimiter,
    TrafficPolicy,
    machine_reason,
    retry_after,
)
from retail.errors import ReelcastError
from retail.types import EventType

log = logging.getLogger("reelcast.tracking")

LandingSource = Callable[[str, str], Landing | None]
"""(campaign_id, customer_id) → what that recipient's landing page shows, or None."""

# The smallest transparent GIF (43 bytes).
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_RENDER_KEY = re.compile(r"^[0-9a-f]{16,128}$")  # content-addressed: a lowercase hex digest
_RENDER_FILES = {"video.mp4": "video/mp4", "poster.jpg": "image/jpeg", "preview.gif": "image/gif"}
_MAX_BODY = 64 * 1024
_BODY_TIMEOUT = 10.0  # seconds for a (tiny) unsubscribe body to arrive
_NO_STORE = {"Cache-Control": "no-store, private", "Pragma": "no-cache", "Expires": "0"}
_HTML_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; "
    "style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Robots-Tag": "noindex, nofollow",
}
# Token, key and query are capabilities or personal: logs show only the route's shape.
_LOG_PATH = re.compile(r"^/(v|c|o|u|r|g)/[^/]+")
# The gallery shows the campaign's videos, posters and GIFs, which the `/r/` route may
# redirect to presigned URLs on the render store's host.
_GALLERY_HEADERS = {
    **_HTML_HEADERS,
    "Content-Security-Policy": "default-src 'none'; img-src 'self' http: https:; "
    "media-src 'self' http: https:; style-src 'unsafe-inline'; base-uri 'none'; "
    "frame-ancestors 'none'",
}


#: What a store raises when it cannot take a write now, on either engine: SQLite busy or
#: locked past the timeout, a PostgreSQL lock timeout or a server that cannot be reached
#: (OperationalError), or every pooled connection in use for too long (PoolTimeout).
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)


def _reason(exc: BaseException) -> str:
    """The driver's own first line (SQLAlchemy's message also shows the statement and its
    parameters: customer ids, which the logs never carry)."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    return detail.splitlines()[0] if detail else type(exc).__name__


def _not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404, headers=_NO_STORE)


def _bad_request() -> Response:
    return PlainTextResponse("Bad Request", status_code=400, headers=_NO_STORE)


def _unavailable() -> Response:
    return PlainTextResponse(
        "video storage unavailable, try again shortly",
        status_code=503,
        headers={"Retry-After": "30", **_NO_STORE},
    )


def _too_many(wait: float) -> Response:
    headers = {**_NO_STORE, "Retry-After": retry_after(wait)}
    return PlainTextResponse("Too Many Requests", status_code=429, headers=headers)


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def normalize_host(host: str) -> str:
    """Lowercase, without a trailing dot: the form hosts are compared in."""
    return host.strip().lower().rstrip(".")


def hosts_of(urls: Iterable[str]) -> frozenset[str]:
    """The hosts of these URLs (e.g. the catalog's product pages): a redirect allowlist."""
    hosts = set()
    for url in urls:
        host = urlsplit(url).hostname
        if host:
            hosts.add(normalize_host(host))
    return frozenset(hosts)


def safe_redirect(url: str | None, allowed_hosts: frozenset[str]) -> str | None:
    """`url`, re-serialized, when it is an absolute http(s) URL on an allowed host; else None.

    Refuses what browsers and parsers disagree about: scheme-relative `//host`,
    backslashes, whitespace and control characters, user info (`shop@evil`), and any
    host that is not exactly on the list (`shop.example.com.evil.com`).
    """
    if not url or len(url) > 4096 or any(c in url for c in "\\\t\r\n ") or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return None
    host = normalize_host(parts.hostname)
    if host not in allowed_hosts:
        return None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def _one_click_body(content_type: str, body: bytes) -> bool:
    """Whether a POST body carries `List-Unsubscribe=One-Click` in either form encoding."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("ascii"), keep_blank_values=True)
        except UnicodeDecodeError:
            return False
        return "One-Click" in fields.get("List-Unsubscribe", [])
    if media == "multipart/form-data":
        # The stdlib MIME parser reads form-data fine; python-multipart is not needed.
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return False
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                value = leaf_payload(part)
                if value.strip() == b"One-Click":
                    return True
        return False
    return False


class _Hygiene:
    """ASGI middleware: safe default headers on every response, and privacy-safe logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ):
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            shape = _LOG_PATH.sub(lambda m: f"/{m.group(1)}/…", scope.get("path", ""))
            log.info(
                "%s %s %d %.1fms",
                scope.get("method", ""),
                shape,
                status,
                (time.perf_counter() - started) * 1000,
            )


class _Limits:
    """ASGI middleware: a rate limit per client address, and a bound on request bodies.

    The one-click unsubscribe POST is exempt from the address limit (mailbox providers
    send it from shared servers for many recipients); the handler decides about it.
    """

    def __init__(self, app: ASGIApp, *, per_address: RateLimiter, max_body: int) -> None:
        self.app = app
        self.per_address = per_address
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        one_click = scope.get("method") == "POST" and scope.get("path", "").startswith("/u/")
        response: Response | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_body
                except ValueError:
                    response = _bad_request()
                    break
                if too_big:
                    response = PlainTextResponse("Payload Too Large", status_code=413)
        if response is None and not one_click:
            wait = self.per_address.take(_client_address(scope))
            if wait:
                response = _too_many(wait)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    *,
    secret: Secret,
    events: TrackingEvents,
    suppression: SuppressionList,
    renders_dir: Path | None = None,
    allowed_redirect_hosts: Iterable[str],
    landing: LandingSource | None = None,
    product_ids_by_url: Mapping[str, str] | None = None,
    brand: str = "",
    postal_address: str = "",
    ai_label: str = "AI-generated video",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    traffic: TrafficPolicy | None = None,
    per_token: RateLimit = PER_TOKEN,
    per_address: RateLimit = PER_ADDRESS,
    delivered_at: Callable[[str, str], datetime | None] | None = None,
    locate_render: Callable[[str, str], Path | str | None] | None = None,
    galleries: Callable[[str], bytes | None] | None = None,
    gallery_secret: bytes | None = None,
) -> Starlette:
    """The tracking app over explicit stores; `cli.tracking` wires it from settings.

    `allowed_redirect_hosts` are the only hosts `/c/` redirects to (the shop's own: see
    `hosts_of`). `product_ids_by_url` maps a catalog product URL to its id, so a click
    names the product. `landing` finds what a recipient's page shows; without it (or
    when it returns None) the landing page is a 404. `clock` is for tests.

    `traffic` sets the de-duplication window and what counts as machine traffic;
    `per_token` and `per_address` the rate limits. `delivered_at(campaign, customer)`
    says when that email went out when the store has no exposure for it yet (the CLI
    reads the outbox: an exposure is recorded only after the dispatch pass).

    Videos and posters come from `renders_dir`, or from `locate_render(key, file name)`
    (the render store's `locate`): a local Path is served as a file, a URL (a presigned
    object on shared storage) is redirected to, None is a 404, a store that cannot be
    reached a 503.

    `galleries(campaign)` reads a campaign's gallery document (the render store's
    `get_gallery`); links to it are signed with `gallery_secret`. Without both, `/g/`
    is a 404.
    """
    if renders_dir is None and locate_render is None:
        raise ValueError("create_app needs renders_dir or locate_render")
    allowed = frozenset(normalize_host(h) for h in allowed_redirect_hosts)
    by_url = dict(product_ids_by_url or {})
    renders_root = Path(renders_dir).resolve() if renders_dir is not None else None
    policy = traffic or TrafficPolicy()
    token_limiter = RateLimiter(per_token)
    address_limiter = RateLimiter(per_address)

    def token_wait(ids: tuple[str, str]) -> float:
        return token_limiter.take(f"{ids[0]}\x00{ids[1]}")

    def delivered(ids: tuple[str, str]) -> datetime | None:
        known = events.delivered_at(*ids)
        if known is None and delivered_at is not None:
            known = delivered_at(*ids)
        return known

    def reader(token: str) -> tuple[str, str] | None:
        try:
            return read_token(secret, token)
        except InvalidToken:
            return None

    def record(
        request: Request, ids: tuple[str, str], kind: EventType, product: str | None
    ) -> None:
        at = clock()
        try:
            reason = machine_reason(
                policy,
                method=request.method,
                user_agent=request.headers.get("user-agent"),
                kind=kind,
                at=at,
                delivered_at=delivered(ids),
            )
            events.record_hit(
                ids[0],
                ids[1],
                kind,
                at=at,
                product_id=product,
                machine=reason,
                window=policy.dedup_window,
            )
        except STORE_UNAVAILABLE as exc:  # busy, locked or unreachable: the visitor goes on
            log.warning("a %s was not recorded: %s", kind, _reason(exc))

    def landing_view(request: Request) -> Response:
        token = request.path_params["token"]
        ids = reader(token)
        if ids is None:
            return _not_found()
        if wait := token_wait(ids):
            return _too_many(wait)
        page = landing(*ids) if landing is not None else None
        if page is None:
            return _not_found()
        record(request, ids, EventType.click, None)
        html = landing_page(
            token=token, landing=page, brand=brand, ai_label=ai_label, postal_address=postal_address
        )
        return HTMLResponse(html, headers=_HTML_HEADERS)

    def click(request: Request) -> Response:
        ids = reader(request.path_params["token"])
        if ids is None:
            return _not_found()
        if wait := token_wait(ids):
            return _too_many(wait)
        values = request.query_params.getlist("u")
        target = safe_redirect(values[0], allowed) if len(values) == 1 else None
        if target is None:
            return _bad_request()
        record(request, ids, EventType.click, by_url.get(values[0]))
        return Response(status_code=302, headers={**_NO_STORE, "Location": target})

    def pixel(request: Request) -> Response:
        ids = reader(request.path_params["token"])
        if ids is None:
            return _not_found()
        if wait := token_wait(ids):
            return _too_many(wait)
        record(request, ids, EventType.open, None)
        return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)

    def render_file(request: Request) -> Response:
        key, name = request.path_params["key"], request.path_params["name"]
        if not _RENDER_KEY.fullmatch(key) or name not in _RENDER_FILES:
            return _not_found()
        if locate_render is not None:
            try:
                found = locate_render(key, name)
            except ReelcastError as exc:
                log.warning("render store unavailable: %s", str(exc).splitlines()[0])
                return _unavailable()
            if found is None:
                return _not_found()
            if isinstance(found, str):  # a presigned URL: it expires, so never cached
                return RedirectResponse(
                    found,
                    status_code=307,
                    headers={"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"},
                )
            path = found
        else:
            assert renders_root is not None
            path = (renders_root / key[:2] / key / name).resolve()
            if not path.is_relative_to(renders_root) or not path.is_file():
                return _not_found()
        # Content-addressed, so never changes; private because a video may show a name.
        headers = {
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Robots-Tag": "noindex",
        }
        return FileResponse(path, media_type=_RENDER_FILES[name], headers=headers)

    def gallery(request: Request) -> Response:
        campaign = request.path_params["campaign"]
        if galleries is None or gallery_secret is None:
            return _not_found()
        verdict = check_link(
            gallery_secret,
            campaign,
            request.query_params.get("exp", ""),
            request.query_params.get("sig", ""),
            clock(),
        )
        if verdict is LinkCheck.forged:
            return _not_found()
        if verdict is LinkCheck.expired:
            return HTMLResponse(expired_page(campaign), status_code=410, headers=_HTML_HEADERS)
        try:
            raw = galleries(campaign)
        except ReelcastError as exc:
            log.warning("render store unavailable: %s", str(exc).splitlines()[0])
            return _unavailable()
        if raw is None:
            return _not_found()
        try:
            page = render_page(Gallery.from_json(raw), served_href)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("a gallery document cannot be read: %s", type(exc).__name__)
            return _not_found()
        return HTMLResponse(page, headers=_GALLERY_HEADERS)

    def unsubscribe_form(request: Request) -> Response:
        token = request.path_params["token"]
        ids = reader(token)
        if ids is None:
            return _not_found()
        if wait := token_wait(ids):
            return _too_many(wait)
        html = unsubscribe_page(
            token=token, brand=brand, postal_address=postal_address, done=ids[1] in suppression
        )
        return HTMLResponse(html, headers=_HTML_HEADERS)

    async def read_body(request: Request) -> bytes | Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_BODY:
                return PlainTextResponse("Payload Too Large", status_code=413)
        return bytes(body)

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        ids = reader(token)
        if ids is None:
            if wait := address_limiter.take(_client_address(request.scope)):
                return _too_many(wait)  # guessing tokens is limited; unsubscribing is not
            return _not_found()
        try:
            body = await asyncio.wait_for(read_body(request), _BODY_TIMEOUT)
        except TimeoutError:
            return PlainTextResponse("Request Timeout", status_code=408)
        if isinstance(body, Response):
            return body
        if not _one_click_body(request.headers.get("content-type", ""), body):
            return _bad_request()
        campaign_id, customer_id = ids

        def apply() -> None:
            # A repeat past the token's limit writes nothing: the customer is suppressed
            # already and the unsubscribe event is stored once anyway.
            if customer_id in suppression and token_wait(ids):
                return
            # Suppression first: it is what stops the next email; the event is for reports.
            suppression.add([customer_id], reason="unsubscribe", source=f"one-click:{campaign_id}")
            try:
                events.record(campaign_id, customer_id, EventType.unsubscribe, at=clock())
            except STORE_UNAVAILABLE as exc:
                log.warning("an unsubscribe event was not recorded: %s", _reason(exc))

        await run_in_threadpool(apply)
        html = unsubscribe_page(token=token, brand=brand, postal_address=postal_address, done=True)
        return HTMLResponse(html, headers=_HTML_HEADERS)

    routes = [
        Route("/v/{token}", landing_view, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
        Route("/o/{token}.gif", pixel, methods=["GET"]),
        Route("/r/{key}/{name}", render_file, methods=["GET"]),
        Route("/g/{campaign}", gallery, methods=["GET"]),
        Route("/u/{token}", unsubscribe_form, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
    ]
    middleware = [
        Middleware(_Hygiene),
        Middleware(_Limits, per_address=address_limiter, max_body=_MAX_BODY),
    ]
    return Starlette(routes=routes, middleware=middleware)
