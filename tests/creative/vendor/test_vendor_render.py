"""The vendor backend's happy path: a real MP4 of exactly our storyboard, filed like a
local render, reused by key, paid once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from creative import Renderer, Storyboard, probe_video
from creative.render import MANIFEST_FILE
from creative.vendor import VendorRenderer
from creative.vendor.simulator import VendorSimulator
from tests.creative.vendor.conftest import PRICE


def test_vendor_render_is_a_real_video_of_our_storyboard(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    board = make_board()
    renderer = make_renderer()
    assert isinstance(renderer, Renderer)

    started = time.monotonic()
    render = renderer.render(board, out_dir, subject="cu_0123456789abcdef")
    elapsed = time.monotonic() - started

    info = probe_video(render.video)
    assert (info.width, info.height) == (180, 320)
    assert info.codec == "h264"
    assert abs(info.duration_s - 8.0) < 0.2
    assert render.poster.stat().st_size > 0
    assert render.gif is not None and render.gif.read_bytes()[:6] == b"GIF89a"
    assert not render.reused
    assert render.video.parent.parent.parent == out_dir  # content-addressed like local renders
    manifest = json.loads((render.video.parent / MANIFEST_FILE).read_text())
    assert manifest["renderer"] == "vendor"
    assert manifest["storyboard_key"] == board.key()
    # The vendor rebuilt our storyboard from the payload, pixel for pixel.
    (created,) = sim.renders()
    assert sim.storyboard_key(created["id"]) == board.key()
    assert manifest["vendor_render_id"] == created["id"]
    # The webhook woke the wait: no need to sit out the 5 s slow poll.
    assert elapsed < 4.5
    assert renderer.inbox is not None and renderer.inbox.counts.accepted == 1


def test_a_second_render_of_the_same_storyboard_reuses_the_file_without_calling(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    renderer = make_renderer()
    first = renderer.render(make_board(), out_dir)
    requests = len(sim.received)

    again = renderer.render(make_board(), out_dir)

    assert again.reused and again.video == first.video
    assert len(sim.received) == requests
    assert sim.counts.created == 1


def test_poll_only_client_finds_the_result_with_backoff(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.queue_s, sim.knobs.latency_s = 0.4, 0.02
    renderer = make_renderer(webhook_secret=None)

    render = renderer.render(make_board(), out_dir)

    assert probe_video(render.video).width == 180
    assert renderer.inbox is None
    assert all("webhook_url" not in (r.body or {}) for r in sim.received)
    polls = [r for r in sim.received if r.method == "GET" and r.path.startswith("/v2/renders/")]
    assert len(polls) >= 2


def test_concurrent_renders_of_one_storyboard_create_one_vendor_render(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    renderer = make_renderer()
    board = make_board()

    with ThreadPoolExecutor(4) as pool:
        renders = list(pool.map(lambda _: renderer.render(board, out_dir), range(4)))

    assert sim.counts.created == 1
    assert len({r.video for r in renders}) == 1
    assert renderer.costs().renders == 1


def test_costs_are_accounted_per_campaign_once_per_paid_render(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    out_dir: Path,
) -> None:
    renderer = make_renderer(campaign="spring")
    renderer.render(make_board("Boots one"), out_dir)
    renderer.render(make_board("Boots two"), out_dir)
    renderer.render(make_board("Boots one"), out_dir)  # reused: not paid again
    renderer.render(make_board("Boots three"), out_dir, campaign="summer")

    spring, summer = renderer.costs("spring"), renderer.costs("summer")

    assert (spring.renders, spring.seconds, spring.amount) == (2, 16.0, 16 * PRICE)
    assert (summer.renders, summer.amount) == (1, 8 * PRICE)
    assert renderer.costs("autumn").renders == 0
