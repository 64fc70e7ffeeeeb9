"""The async vendor client: one storyboard in, one downloaded, checked `Render` out.

The rules it keeps (DESIGN.md, "Vendor protocol to emulate"):
- A ledger row is written before the create request and gets the render id on the first
  2xx. After an ambiguous failure (timeout, 5xx, dropped connection) it never re-POSTs
  blindly: it first asks the vendor for a render with the storyboard's key in its
  metadata and adopts it; only a clean "none" allows a new create. So one storyboard
  costs at most one paid render.
- Every request passes a token bucket sized under the vendor's rate limit; a 429's
  Retry-After is obeyed (and pauses all requests), otherwise waits back off
  exponentially with jitter. A request that keeps failing past `attempts` raises
  VendorUnavailable.
- Webhooks only wake the wait early; every state is confirmed with a GET, and a slow
  poll finds renders whose webhook was lost.
- Results are downloaded as soon as they succeed (vendor URLs expire); an expired URL is
  refreshed once by reading the render again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from creative.encode import find_ffmpeg
from creative.render import VIDEO_FILE, Render
from creative.storyboard import ImagePart, Storyboard
from creative.vendor.config import VendorConfig
from creative.vendor.errors import (
    RenderFailed,
    ResultExpired,
    VendorError,
    VendorUnavailable,
)
from creative.vendor.ledger import RenderLedger
from creative.vendor.payload import build_payload
from creative.vendor.protocol import FINAL_STATUSES, RENDERS_PATH, UPLOADS_PATH, RenderObject
from creative.vendor.ratelimit import TokenBucket
from creative.vendor.results import existing_result, file_result, staging_folder, vendor_key
from creative.vendor.webhooks import WebhookInbox
from retail.types import Customer

T = TypeVar("T")
_IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
_PLACEHOLDER_URL = "https://vendor.invalid/v2/uploads/pending"
#: How often a render waits for a storyboard key that another process is rendering.
_KEY_LOCK_POLL_S, _KEY_LOCK_POLL_MAX_S = 0.05, 1.0


class _Retryable(Exception):
    """A failure worth another try. `ambiguous`: the vendor may have acted on it."""

    def __init__(self, reason: str, *, ambiguous: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.ambiguous = ambiguous
        self.retry_after = retry_after


class VendorClient:
    """Talks to one vendor account; use inside one event loop (`async with`)."""

    def __init__(
        self,
        config: VendorConfig,
        ledger: RenderLedger,
        *,
        inbox: WebhookInbox | None = None,
        webhook_url: str | None = None,
        ffmpeg: str | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.inbox = inbox
        self.webhook_url = webhook_url
        self.ffmpeg = find_ffmpeg(ffmpeg)
        self.limiter = TokenBucket.within(config.requests_per_window, config.window_s)
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"), timeout=config.request_timeout_s
        )
        self._auth = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
        self._uploaded: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._backoff = wait_exponential_jitter(
            initial=config.backoff_s, max=config.backoff_max_s, jitter=config.backoff_s
        )

    async def __aenter__(self) -> VendorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- the whole job -------------------------------------------------------------------

    async def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        campaign: str | None = None,
        subject: str | None = None,
        customer: Customer | None = None,
    ) -> Render:
        """Render `storyboard` at the vendor (or reuse the earlier result) and file it.

        `subject` is the customer's pseudonymous id; `customer`, if given, is only used to
        check that none of their personal data is in the payload. Raises PayloadError
        before anything is sent, VendorUnavailable past the retry budget, RenderFailed
        when every try failed at the vendor, VendorError for refusals (400/401/402/404).
        """
        key = storyboard.key()
        filed_as = vendor_key(storyboard)
        async with self._key_lock(key):
            done = existing_result(out_dir, filed_as)
            if done is not None:
                return done
            for attempt in range(1, self.config.render_attempts + 1):
                created = await self.create(
                    storyboard, campaign=campaign, subject=subject, customer=customer
                )
                finished = await self.wait(created.id)
                entry = self.ledger.get(key)
                self.ledger.set_status(key, finished.status)
                if finished.status == "succeeded":
                    self.ledger.charge(
                        key,
                        finished.id,
                        entry.campaign if entry else campaign,
                        finished.duration or storyboard.format.duration_s,
                        self.config.price_per_second,
                    )
                    return await self.fetch(finished, storyboard, out_dir)
                if attempt == self.config.render_attempts:
                    said = self._vendor_text(finished.error_message)
                    raise RenderFailed(
                        f"vendor render {finished.id} failed ({said or 'no reason shown'});"
                        f" tried {attempt} time(s)"
                    )
        raise AssertionError("render_attempts is at least 1")

    @contextlib.asynccontextmanager
    async def _key_lock(self, key: str) -> AsyncIterator[None]:
        """One job per storyboard key at a time: in this client (an asyncio lock) and,
        when the ledger is on PostgreSQL, in every process that shares it (the ledger's
        advisory lock, polled so the event loop keeps running). Without it, two jobs
        could both find no render yet and both pay for one."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            pause = _KEY_LOCK_POLL_S
            while not self.ledger.hold(key):
                await asyncio.sleep(pause)
                pause = min(pause * 2, _KEY_LOCK_POLL_MAX_S)
            try:
                yield
            finally:
                self.ledger.release(key)

    # -- create, idempotently ------------------------------------------------------------

    async def create(
        self,
        storyboard: Storyboard,
        *,
        campaign: str | None = None,
        subject: str | None = None,
        customer: Customer | None = None,
    ) -> RenderObject:
        """The vendor's render of `storyboard`: the known one, one found by metadata, or new.

        Creates a render only when the ledger has no render id for the storyboard's key
        and the vendor, asked by metadata, has none either. The payload is checked against
        the allowlist (and `customer`'s personal data) before anything is sent. Calls
        for one storyboard must not overlap (`render` serializes them per key, across
        processes too when the ledger is on PostgreSQL).
        """
        key = storyboard.key()

        def build(image_urls: dict[str, str]) -> dict[str, Any]:
            return build_payload(
                storyboard,
                image_urls=image_urls,
                key=key,
                campaign=campaign,
                subject=subject,
                webhook_url=self.webhook_url,
                customer=customer,
                allow_first_name=self.config.allow_first_name,
            )

        build(dict.fromkeys(self._image_digests(storyboard), _PLACEHOLDER_URL))
        entry = self.ledger.get(key)
        if entry is not None and entry.render_id and entry.status != "failed":
            return await self.get(entry.render_id)
        maybe_created = entry is not None and entry.render_id is None
        images = {
            digest: await self.upload(path, digest)
            for digest, path in self._image_digests(storyboard).items()
        }
        payload = build(images)
        if not maybe_created:
            self.ledger.intend(key, campaign)

        async def attempt() -> RenderObject:
            nonlocal maybe_created
            if maybe_created:
                found = await self._find_once(key)
                if found is not None:
                    self.ledger.adopt(key, found.id, found.status)
                    return found
            try:
                response = await self._send("POST", RENDERS_PATH, json=payload)
            except _Retryable as exc:
                maybe_created = maybe_created or exc.ambiguous
                raise
            created = RenderObject.model_validate(response.json())
            self.ledger.adopt(key, created.id, created.status)
            return created

        return await self._retrying(attempt, "create render")

    async def find(self, key: str) -> RenderObject | None:
        """The vendor's live render (not failed) whose metadata key is `key`, if any."""
        return await self._retrying(lambda: self._find_once(key), "look up render")

    async def _find_once(self, key: str) -> RenderObject | None:
        response = await self._send("GET", RENDERS_PATH, params={"metadata.key": key})
        found = [RenderObject.model_validate(item) for item in response.json()]
        live = [r for r in found if r.status != "failed" and r.metadata.get("key") == key]
        return max(live, key=lambda r: r.created_at or 0, default=None)

    async def upload(self, path: Path, digest: str) -> str:
        """The vendor URL of an image file (uploaded once per client; uploads are idempotent)."""
        if digest not in self._uploaded:
            content_type = _IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
            data = path.read_bytes()

            async def attempt() -> str:
                response = await self._send(
                    "POST", UPLOADS_PATH, content=data, headers={"content-type": content_type}
                )
                return str(response.json()["url"])

            self._uploaded[digest] = await self._retrying(attempt, "upload image")
        return self._uploaded[digest]

    # -- follow and fetch ----------------------------------------------------------------

    async def get(self, render_id: str) -> RenderObject:
        """The render as the vendor reports it now."""

        async def attempt() -> RenderObject:
            response = await self._send("GET", f"{RENDERS_PATH}/{render_id}")
            return RenderObject.model_validate(response.json())

        return await self._retrying(attempt, "read render")

    async def wait(self, render_id: str) -> RenderObject:
        """Poll (woken early by webhooks) until the render succeeded or failed."""
        cfg = self.config
        event = self.inbox.expect(render_id) if self.inbox is not None else None
        interval = cfg.slow_poll_s if event is not None else cfg.poll_s
        deadline = time.monotonic() + cfg.render_timeout_s
        try:
            while True:
                render = await self.get(render_id)
                if render.status in FINAL_STATUSES:
                    return render
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VendorUnavailable(
                        f"vendor render {render_id} is still {render.status} after"
                        f" {cfg.render_timeout_s:g} s"
                    )
                if event is None:
                    await asyncio.sleep(min(interval, left))
                    interval = min(interval * 1.5, cfg.poll_max_s)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), timeout=min(interval, left))
                    event.clear()
        finally:
            if self.inbox is not None:
                self.inbox.done(render_id)

    async def fetch(self, render: RenderObject, storyboard: Storyboard, out_dir: Path) -> Render:
        """Download a succeeded render now and file it with a poster (see results.py)."""
        staging = staging_folder(out_dir, vendor_key(storyboard))
        try:
            await self.download(render, staging / VIDEO_FILE)
            return await asyncio.to_thread(
                file_result,
                staging,
                out_dir,
                storyboard,
                vendor_render_id=render.id,
                ffmpeg=self.ffmpeg,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    async def download(self, render: RenderObject, dest: Path) -> None:
        """Save the render's file; an expired URL is refreshed once from the vendor."""
        for refreshed in (False, True):
            if render.url is None:
                raise VendorError(f"vendor render {render.id} succeeded without a URL")
            url = render.url
            try:
                await self._retrying(functools.partial(self._download_once, url, dest), "download")
            except ResultExpired:
                if refreshed:
                    raise ResultExpired(
                        f"vendor render {render.id}: the result URL had expired, and so had"
                        " the fresh one; download sooner or ask the vendor for longer-lived"
                        " URLs"
                    ) from None
                render = await self.get(render.id)
                continue
            if render.file_size is not None and dest.stat().st_size != render.file_size:
                raise VendorError(
                    f"vendor render {render.id}: downloaded {dest.stat().st_size} bytes,"
                    f" the vendor reported {render.file_size}"
                )
            return

    async def _download_once(self, url: str, dest: Path) -> None:
        # The result URL is pre-signed (often another host): never send our API key there.
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code in (403, 410):
                    raise ResultExpired(f"result URL answered {response.status_code}")
                if response.status_code >= 500 or response.status_code == 429:
                    raise _Retryable(f"download answered {response.status_code}", ambiguous=False)
                if response.status_code != 200:
                    raise VendorError(f"result download answered {response.status_code}")
                with dest.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 16):
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise _Retryable(f"download failed: {type(exc).__name__}", ambiguous=False) from None

    # -- one request, and retrying ---------------------------------------------------------

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API request through the rate limit; failures classified for retrying."""
        await self.limiter.acquire()
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Retryable(f"cannot connect ({type(exc).__name__})", ambiguous=False) from None
        except httpx.TransportError as exc:  # the request may have arrived
            raise _Retryable(f"no answer ({type(exc).__name__})", ambiguous=True) from None
        status = response.status_code
        if status < 300:
            return response
        if status == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                self.limiter.hold_until(time.monotonic() + retry_after)
            raise _Retryable("rate limited (429)", ambiguous=False, retry_after=retry_after)
        if status >= 500:
            raise _Retryable(f"server error ({status})", ambiguous=True)
        _refusal(method, path, response, self._vendor_text(_error_text(response)))

    def _vendor_text(self, text: str | None) -> str:
        """The vendor's own words, for a message, only if they cannot hold personal data.

        The vendor knows only what we sent it: with first names allowed to reach it, its
        error text may quote one, so it is left out (look the render up at the vendor).
        """
        if not text or self.config.allow_first_name:
            return ""
        return " ".join(text.split())[:300]

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            async for trial in retrying:
                with trial:
                    return await attempt()
        except _Retryable as exc:
            raise VendorUnavailable(
                f"vendor: could not {what} in {self.config.attempts} tries (last: {exc.reason})"
            ) from None
        raise AssertionError("tenacity ends a failed retry loop by raising")

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the vendor sent one (capped), else exponential backoff."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, self.config.retry_after_max_s)
        return float(self._backoff(state))

    @staticmethod
    def _image_digests(storyboard: Storyboard) -> dict[str, Path]:
        return {p.sha256: p.path for p in storyboard.layers if isinstance(p, ImagePart)}


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _error_text(response: httpx.Response) -> str:
    """The `error` field of a JSON error answer ("" if there is none)."""
    try:
        return str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        return ""


def _refusal(method: str, path: str, response: httpx.Response, message: str) -> NoReturn:
    status = response.status_code
    hint = {
        400: "the vendor refused the request",
        401: "the vendor rejected the API key: check the vendor API key setting",
        402: "the vendor account is out of credits: top it up or render locally",
        404: "the vendor does not know this render",
    }.get(status, "the vendor refused the request")
    detail = f": {message}" if message else ""
    raise VendorError(f"{hint} ({method} {path} answered {status}{detail})")
