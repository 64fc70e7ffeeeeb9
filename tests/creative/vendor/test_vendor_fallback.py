"""When the vendor fails for good, the video is rendered locally, and the ledger says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from creative import LocalRenderer, Renderer, Storyboard
from creative.render import MANIFEST_FILE
from creative.vendor import FallbackRenderer, VendorRenderer
from creative.vendor.simulator import VendorSimulator

DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens


def test_vendor_down_past_the_budget_renders_locally_and_says_so(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    out_dir: Path,
) -> None:
    vendor = make_renderer(base_url=DOWN, attempts=2, webhook_secret=None)
    renderer = FallbackRenderer(vendor, LocalRenderer())
    assert isinstance(renderer, Renderer)
    board = make_board()

    render = renderer.render(board, out_dir)

    manifest = json.loads((render.video.parent / MANIFEST_FILE).read_text())
    assert "renderer" not in manifest  # LocalRenderer's own manifest
    assert render.video.is_file() and render.key == board.key()
    assert renderer.fallbacks[render.key].startswith("VendorUnavailable: vendor: could not")
    assert renderer.rendered_locally("spring") == {board.key(): renderer.fallbacks[render.key]}
    costs = vendor.costs("spring")
    assert (costs.renders, costs.local_fallbacks) == (0, 1)


def test_after_repeated_outages_the_vendor_is_skipped_for_a_while(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.fail_before_create = 100
    vendor = make_renderer(attempts=2)
    renderer = FallbackRenderer(vendor, LocalRenderer(), trip_after=1, cooldown_s=60)
    renderer.render(make_board("One"), out_dir)
    asked = len(sim.received)

    second = renderer.render(make_board("Two"), out_dir)

    assert len(sim.received) == asked  # not even one request: no retry budget spent
    assert "skipped after repeated failures" in renderer.fallbacks[second.key]
    assert sim.counts.created == 0


def test_a_healthy_vendor_is_used_and_nothing_falls_back(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    renderer = FallbackRenderer(make_renderer(), LocalRenderer())

    render = renderer.render(make_board(), out_dir)

    assert json.loads((render.video.parent / MANIFEST_FILE).read_text())["renderer"] == "vendor"
    assert renderer.fallbacks == {} and renderer.rendered_locally() == {}
    assert simulator[0].counts.created == 1


def test_a_video_the_vendor_renders_later_is_no_longer_reported_as_a_fallback(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    tmp_path: Path,
) -> None:
    sim, _ = simulator
    workspace = tmp_path / "ws"
    sim.knobs.fail_before_create = 100
    down = FallbackRenderer(make_renderer(workspace, attempts=1), LocalRenderer())
    board = make_board()
    down.render(board, tmp_path / "first")
    assert set(down.rendered_locally()) == {board.key()}

    # A later run of the same campaign: the local file is not there, the vendor is back.
    sim.knobs.fail_before_create = 0
    up = FallbackRenderer(make_renderer(workspace), LocalRenderer())
    render = up.render(board, tmp_path / "second")

    assert not render.reused and sim.counts.created == 1
    assert up.rendered_locally() == {}
    assert make_renderer(workspace).costs("spring").local_fallbacks == 0
