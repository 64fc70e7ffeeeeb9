"""Webhooks are hints: verified, deduplicated, confirmed by GET; lost ones found by polling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from creative import Storyboard
from creative.vendor import VendorRenderer, WebhookInbox
from creative.vendor.protocol import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from creative.vendor.simulator import VendorSimulator
from tests.creative.vendor.conftest import WEBHOOK_SECRET

SECRET = WEBHOOK_SECRET.encode()
RENDER = {"id": "r-1", "status": "succeeded", "template_id": "hero-180x320"}


def _delivery(body: dict, *, secret: bytes = SECRET, at: float | None = None) -> tuple:
    raw = json.dumps(body).encode()
    stamp = int(time.time() if at is None else at)
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(secret, stamp, raw)}, raw


def test_dropped_webhooks_are_made_up_for_by_the_slow_poll(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.webhook_drop_rate = 1.0
    renderer = make_renderer(slow_poll_s=0.5)

    render = renderer.render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.webhooks_dropped == 1 and sim.counts.webhooks_sent == 0
    assert renderer.inbox is not None and renderer.inbox.counts.accepted == 0


def test_duplicated_and_out_of_order_webhooks_are_deduplicated(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.webhook_duplicates = 2
    sim.knobs.webhook_out_of_order = True
    renderer = make_renderer()

    first = renderer.render(make_board(), out_dir)
    deadline = time.monotonic() + 5
    while sim.counts.webhooks_sent < 4 and time.monotonic() < deadline:
        time.sleep(0.05)

    inbox = renderer.inbox
    assert inbox is not None
    assert (inbox.counts.accepted, inbox.counts.duplicates, inbox.counts.out_of_order) == (1, 2, 1)
    assert renderer.render(make_board(), out_dir).reused
    assert first.video.is_file() and sim.counts.created == 1


def test_a_forged_or_stale_webhook_is_rejected_by_the_receiver(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    out_dir: Path,
) -> None:
    renderer = make_renderer()
    renderer.render(make_board(), out_dir)  # starts the receiver
    assert renderer.webhook_url is not None and renderer.inbox is not None

    forged_headers, forged = _delivery(RENDER, secret=b"not-the-secret")
    stale_headers, stale = _delivery(RENDER, at=time.time() - 3600)
    fresh_headers, fresh = _delivery(RENDER)
    answers = [
        httpx.post(renderer.webhook_url, content=forged, headers=forged_headers).status_code,
        httpx.post(renderer.webhook_url, content=stale, headers=stale_headers).status_code,
        httpx.post(renderer.webhook_url, content=b"{}", headers=fresh_headers).status_code,
        httpx.post(renderer.webhook_url, content=fresh, headers={}).status_code,
        httpx.post(renderer.webhook_url, content=fresh, headers=fresh_headers).status_code,
    ]

    assert answers == [401, 401, 401, 401, 200]
    assert renderer.inbox.counts.rejected == 4


def test_a_webhook_only_wakes_the_wait_it_never_decides_the_result() -> None:
    inbox = WebhookInbox(SECRET)
    headers, body = _delivery(RENDER)

    assert inbox.receive(headers, body) == (200, "accepted")
    assert inbox.receive(headers, body) == (200, "duplicate")
    older_headers, older = _delivery({**RENDER, "status": "rendering"})
    assert inbox.receive(older_headers, older) == (200, "out of order")
    # A waiter that starts after the webhook arrived is woken at once.
    assert inbox.expect("r-1").is_set()
    assert not inbox.expect("r-2").is_set()


@pytest.mark.parametrize("skew_s", [-301, 301])
def test_webhook_timestamps_outside_the_tolerance_are_replays(skew_s: int) -> None:
    inbox = WebhookInbox(SECRET, tolerance_s=300)
    headers, body = _delivery(RENDER, at=time.time() + skew_s)

    assert inbox.receive(headers, body) == (401, "timestamp outside tolerance")
