"""The vendor behind the `Renderer` interface, and a fallback to rendering locally.

`VendorRenderer.render(storyboard, out_dir)` is blocking like `LocalRenderer.render`, so a
flow can swap it in; it runs the async client on one background event loop thread that
any number of worker threads may call at once. `FallbackRenderer` renders locally when
the vendor fails for good and records that it did, so the campaign's artifact can say so.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import TracebackType

from creative.render import CampaignCosts, LocalRenderer, Render, Renderer
from creative.storyboard import Storyboard
from creative.vendor.client import VendorClient
from creative.vendor.config import VendorConfig
from creative.vendor.errors import PayloadError, VendorError, VendorUnavailable
from creative.vendor.ledger import RenderLedger
from creative.vendor.results import vendor_key
from creative.vendor.serve import ServerTask
from creative.vendor.webhooks import WEBHOOK_PATH, WebhookInbox
from retail.types import Customer
from storage import Target

LEDGER_FILE = "vendor.sqlite"


class VendorRenderer:
    """Renders at the vendor; results land in `out_dir` like local renders.

    `workspace` holds the ledger (`vendor.sqlite`: key→render id, charges, fallbacks),
    unless `ledger` names another place for it (a SQLite file or a database URL: on
    PostgreSQL, renderers in several processes share the ledger and never render one
    storyboard twice at once).
    `campaign` is charged for the renders unless a call names another. Close it (or use
    it as a context manager) to stop its event loop and webhook receiver.
    """

    def __init__(
        self,
        config: VendorConfig,
        workspace: Path,
        *,
        campaign: str | None = None,
        ffmpeg: str | None = None,
        ledger: Target | None = None,
    ) -> None:
        self.config = config
        self.campaign = campaign
        self.ledger = RenderLedger(ledger if ledger is not None else workspace / LEDGER_FILE)
        self._ffmpeg = ffmpeg
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: VendorClient | None = None
        self._receiver: ServerTask | None = None

    def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        subject: str | None = None,
        customer: Customer | None = None,
        campaign: str | None = None,
    ) -> Render:
        """Render `storyboard` at the vendor, or reuse the result filed earlier.

        `subject` (a pseudonymous id) goes into the render's metadata; `customer` is only
        used to check that the payload carries none of their personal data. Raises what
        `VendorClient.render` raises.
        """
        client, loop = self._started()
        job = client.render(
            storyboard,
            out_dir,
            campaign=campaign or self.campaign,
            subject=subject,
            customer=customer,
        )
        return asyncio.run_coroutine_threadsafe(job, loop).result()

    def output_keys(self, storyboard: Storyboard) -> tuple[str, ...]:
        """The key the vendor's video of `storyboard` is filed under (see results.py)."""
        return (vendor_key(storyboard),)

    def costs(self, campaign: str | None = None) -> CampaignCosts:
        """What `campaign` (default: this renderer's) paid the vendor."""
        name = campaign or self.campaign
        if name is None:
            raise ValueError("name the campaign whose costs you want")
        return self.ledger.costs(name)

    def rendered_locally(self, campaign: str | None = None) -> dict[str, str]:
        """Nothing: without a fallback, a video the vendor cannot make is an error."""
        return {}

    @property
    def inbox(self) -> WebhookInbox | None:
        """The webhook inbox (None when polling only), e.g. to mount its app elsewhere."""
        return self._client.inbox if self._client is not None else None

    @property
    def webhook_url(self) -> str | None:
        """Where the vendor is asked to post webhooks."""
        return self._client.webhook_url if self._client is not None else None

    def _started(self) -> tuple[VendorClient, asyncio.AbstractEventLoop]:
        with self._lock:
            if self._client is None or self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="vendor", daemon=True)
                thread.start()
                try:
                    self._client = asyncio.run_coroutine_threadsafe(self._open(), loop).result()
                except BaseException:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(timeout=5)
                    loop.close()
                    raise
                self._loop, self._thread = loop, thread
            return self._client, self._loop

    async def _open(self) -> VendorClient:
        cfg = self.config
        inbox = None
        webhook_url = cfg.webhook_url
        if cfg.webhook_secret is not None:
            inbox = WebhookInbox(
                cfg.webhook_secret.get_secret_value().encode(), cfg.webhook_tolerance_s
            )
            if webhook_url is None:
                self._receiver = await ServerTask(inbox.app()).start()
                webhook_url = self._receiver.url + WEBHOOK_PATH
        return VendorClient(
            cfg, self.ledger, inbox=inbox, webhook_url=webhook_url, ffmpeg=self._ffmpeg
        )

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._receiver is not None:
            await self._receiver.stop()

    def close(self) -> None:
        """Stop the webhook receiver and the event loop; close the ledger."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is not None and thread is not None:
                asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(timeout=10)
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=5)
                loop.close()
            self._loop = self._thread = self._client = self._receiver = None
            self.ledger.close()

    def __enter__(self) -> VendorRenderer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FallbackRenderer:
    """The vendor first; on a vendor failure or a refused payload, render locally.

    Falls back on anything the vendor backend raises on purpose (unavailable past the
    retry budget, failed renders, refusals such as 401/402, an expired result, a payload
    that may not leave the house); a bad storyboard is not the vendor's fault and
    propagates. After `trip_after` VendorUnavailable in a row the vendor is skipped for
    `cooldown_s`, so a vendor outage costs one retry budget, not one per video.
    Every fallback is recorded in the ledger under the campaign (and in `fallbacks`).
    """

    def __init__(
        self,
        primary: VendorRenderer,
        fallback: Renderer | None = None,
        *,
        trip_after: int = 3,
        cooldown_s: float = 300.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback if fallback is not None else LocalRenderer()
        self.trip_after = trip_after
        self.cooldown_s = cooldown_s
        self.fallbacks: dict[str, str] = {}
        self._lock = threading.Lock()
        self._unavailable_in_a_row = 0
        self._open_until = 0.0

    def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        subject: str | None = None,
        customer: Customer | None = None,
        campaign: str | None = None,
    ) -> Render:
        """Render at the vendor, or locally when the vendor cannot; says which in the ledger."""
        if time.monotonic() < self._open_until:
            reason = "vendor unavailable (skipped after repeated failures)"
            return self._local(storyboard, out_dir, campaign, reason)
        try:
            rendered = self.primary.render(
                storyboard, out_dir, subject=subject, customer=customer, campaign=campaign
            )
        except (VendorError, PayloadError) as exc:
            if isinstance(exc, VendorUnavailable):
                with self._lock:
                    self._unavailable_in_a_row += 1
                    if self._unavailable_in_a_row >= self.trip_after:
                        self._open_until = time.monotonic() + self.cooldown_s
            return self._local(storyboard, out_dir, campaign, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._unavailable_in_a_row = 0
        if not rendered.reused:  # an earlier run's local fallback, now done by the vendor
            self.primary.ledger.clear_fallback(storyboard.key(), campaign or self.primary.campaign)
        return rendered

    def output_keys(self, storyboard: Storyboard) -> tuple[str, ...]:
        """The vendor's key first, then the local fallback's (when it can name its own)."""
        keys = self.primary.output_keys(storyboard)
        fallback = getattr(self.fallback, "output_keys", None)
        return keys + tuple(fallback(storyboard)) if callable(fallback) else keys

    def rendered_locally(self, campaign: str | None = None) -> dict[str, str]:
        """Storyboard key → reason for every video of the campaign rendered locally instead."""
        return self.primary.ledger.fallbacks(campaign or self.primary.campaign)

    def costs(self, campaign: str | None = None) -> CampaignCosts:
        """What the campaign paid the vendor (local fallbacks are counted, not charged)."""
        return self.primary.costs(campaign)

    def close(self) -> None:
        """Close the vendor's side and the local fallback."""
        self.primary.close()
        self.fallback.close()

    def _local(
        self, storyboard: Storyboard, out_dir: Path, campaign: str | None, reason: str
    ) -> Render:
        rendered = self.fallback.render(storyboard, out_dir)
        self.primary.ledger.record_fallback(
            storyboard.key(), campaign or self.primary.campaign, reason
        )
        with self._lock:
            self.fallbacks[rendered.key] = reason
        return rendered
