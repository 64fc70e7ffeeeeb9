"""A client-side rate limit: stay under the vendor's limit instead of bouncing off it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """At most `capacity` requests at once, refilled at `rate` per second (asyncio).

    `hold_until` makes every caller wait, e.g. until a 429's Retry-After has passed:
    one throttled request pauses them all rather than each finding out on its own.
    """

    def __init__(
        self, rate: float, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()
        self._held_until = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def within(cls, requests: int, per_s: float) -> TokenBucket:
        """A bucket that never lets more than `requests` through in any `per_s` window.

        A full bucket plus the refill over one window must not exceed the vendor's limit:
        capacity + rate × window ≤ requests.
        """
        capacity = max(1, requests // 6)
        return cls(rate=max(requests - capacity, 1) / per_s, capacity=capacity)

    def hold_until(self, deadline: float) -> None:
        """Let no request through before `deadline` (the clock's seconds)."""
        self._held_until = max(self._held_until, deadline)

    async def acquire(self) -> None:
        """Wait for a token."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._held_until:
                    await asyncio.sleep(self._held_until - now)
                    continue
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)
