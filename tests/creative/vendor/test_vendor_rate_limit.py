"""The client-side token bucket never lets more through than the vendor's window allows."""

from __future__ import annotations

import asyncio
import time

from creative.vendor.ratelimit import TokenBucket


def test_no_window_ever_holds_more_requests_than_the_vendor_allows() -> None:
    limit, window = 6, 0.5
    bucket = TokenBucket.within(limit, window)

    async def burst() -> list[float]:
        stamps = []
        for _ in range(14):
            await bucket.acquire()
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(burst())

    for i, start in enumerate(stamps):
        assert sum(1 for t in stamps[i:] if t - start < window) <= limit


def test_a_hold_pauses_every_caller_until_it_ends() -> None:
    bucket = TokenBucket(rate=100, capacity=10)

    async def held() -> float:
        bucket.hold_until(time.monotonic() + 0.3)
        started = time.monotonic()
        await asyncio.gather(bucket.acquire(), bucket.acquire())
        return time.monotonic() - started

    assert asyncio.run(held()) >= 0.29
