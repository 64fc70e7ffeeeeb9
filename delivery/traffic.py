"""Which tracking hits are people, and how many a token or an address may make.

Link scanners (mail security gateways), link-preview bots and prefetchers follow every
link of a message, often seconds after it is delivered. Counted as clicks, they would
make every customer a clicker and teach the recommender noise. The tracking app asks
`machine_reason` about every open and click and stores the answer as a short reason
code (never the user agent or the address it was given):

    head    a HEAD request: browsers fetch with GET; scanners probe with HEAD
    agent   a user agent naming a known scanner, preview bot or HTTP library, or none
    soon    within `TrafficPolicy.too_soon` of the message's delivery (its exposure)

Machine hits are kept out of training (`TrackingEvents.events`) and out of the report's
rates; the report shows how many there were.

Choices, documented because they are judgement calls:

- `GoogleImageProxy` fetches the open pixel when a Gmail user opens the message (Gmail
  proxies images on display, it does not prefetch on delivery), so an *open* through it
  is a person's open. A *click* or landing visit with that agent is a machine.
- Apple Mail Privacy Protection prefetches images with an ordinary browser agent; only
  the `soon` rule can catch it, and only when it fetches right after delivery. Opens stay
  a weak signal for that reason; clicks are the ones training relies on.
- One-click unsubscribe POSTs (RFC 8058) are made by mailbox providers' servers, with
  non-browser agents, on the recipient's behalf: they are never machine traffic and are
  never refused by the rate limits (see `delivery.tracking`).

`RateLimiter` is an in-memory token bucket per key (a token, a client address). Keys
are hashed with a per-process random key before they are held, so the table never
holds a client address in the clear; nothing of it is stored or logged.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from retail.types import EventType

MachineReason = str
"""'head', 'agent' or 'soon': why a hit counts as machine traffic."""

#: Lowercase fragments of user agents that belong to mail security scanners, link-preview
#: bots, headless browsers and HTTP libraries: no person clicks with these.
SCANNER_AGENTS: tuple[str, ...] = (
    # mail security gateways and safe-links rewriters
    "safelinks",
    "bingpreview",
    "barracuda",
    "proofpoint",
    "mimecast",
    "ironport",
    "forcepoint",
    "trendmicro",
    # link previews and crawlers
    "googlebot",
    "bingbot",
    "applebot",
    "slackbot",
    "twitterbot",
    "discordbot",
    "telegrambot",
    "linkedinbot",
    "facebookexternalhit",
    "whatsapp",
    "skypeuripreview",
    "crawler",
    "spider",
    "headlesschrome",
    # HTTP libraries and command-line tools
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "libwww-perl",
    "apache-httpclient",
    "java/",
)
#: Image proxies that fetch the pixel when a person opens the message: an open through
#: them is a person's; anything else through them is a machine.
IMAGE_PROXY_AGENTS: tuple[str, ...] = ("googleimageproxy",)


@dataclass(frozen=True)
class TrafficPolicy:
    """How the tracking app tells people from machines and folds repeats."""

    #: one open per token, and one click per token and product, in this window; later
    #: hits inside it only raise the stored event's repeat count
    dedup_window: timedelta = timedelta(hours=1)
    #: a hit this soon after the message's delivery is a scanner's or a prefetcher's
    too_soon: timedelta = timedelta(seconds=10)
    scanner_agents: tuple[str, ...] = SCANNER_AGENTS
    image_proxy_agents: tuple[str, ...] = IMAGE_PROXY_AGENTS


def machine_reason(
    policy: TrafficPolicy,
    *,
    method: str,
    user_agent: str | None,
    kind: EventType,
    at: datetime,
    delivered_at: datetime | None,
) -> MachineReason | None:
    """Why this open or click is machine traffic, or None for a person's hit."""
    if method.upper() == "HEAD":
        return "head"
    agent = (user_agent or "").strip().lower()
    if not agent or any(fragment in agent for fragment in policy.scanner_agents):
        return "agent"
    if kind is not EventType.open and any(p in agent for p in policy.image_proxy_agents):
        return "agent"
    if delivered_at is not None and at - delivered_at < policy.too_soon:
        return "soon"
    return None


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` requests at once, refilled at `per_minute`."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")


#: Defaults: a person opening, reading and clicking an email makes a handful of requests
#: per token; an address may stand for many people (a mailbox provider's image proxy,
#: an office behind one NAT), so its bucket is much larger.
PER_TOKEN = RateLimit(per_minute=30, burst=30)
PER_ADDRESS = RateLimit(per_minute=600, burst=300)


class RateLimiter:
    """Token buckets per key, in memory, safe to share between threads.

    `take(key)` spends one request: 0.0 when allowed, else the seconds until the key may
    try again (for a Retry-After header). At most `max_keys` buckets are held; the least
    recently used go first (a forgotten key starts with a full bucket again).
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._rate = limit.per_minute / 60.0
        self._max_keys = max_keys
        self._clock = clock
        self._salt = secrets.token_bytes(16)
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode("utf-8"), key=self._salt, digest_size=16).digest()

    def take(self, key: str) -> float:
        """Spend one request of `key`'s bucket; 0.0 if allowed, else seconds to wait."""
        hashed = self._key(key)
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(hashed, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - stamp) * self._rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self._rate
            self._buckets[hashed] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait


def retry_after(wait: float) -> str:
    """A Retry-After value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))
