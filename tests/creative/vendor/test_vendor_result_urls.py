"""Result URLs expire: the client downloads at once, refreshes an expired URL once, and
says clearly when even the fresh one has expired."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from creative import Storyboard
from creative.vendor import ResultExpired, VendorClient, VendorConfig, VendorRenderer
from creative.vendor.ledger import RenderLedger
from creative.vendor.protocol import RenderObject
from creative.vendor.simulator import VendorSimulator
from tests.creative.vendor.conftest import API_KEY


def test_short_lived_urls_are_fine_because_results_are_downloaded_at_once(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.url_ttl_s = 3.0

    render = make_renderer().render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.expired_downloads == 0


async def _finished_render(client: VendorClient, board: Storyboard) -> RenderObject:
    created = await client.create(board)
    return await client.wait(created.id)


def test_an_expired_url_is_refreshed_once_from_the_vendor(
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    simulator: tuple[VendorSimulator, str],
) -> None:
    sim, url = simulator
    board = make_board()
    config = VendorConfig(base_url=url, api_key=API_KEY, poll_s=0.05, backoff_s=0.05)

    async def scenario() -> int:
        async with VendorClient(config, RenderLedger(tmp_path / "ledger.sqlite")) as client:
            sim.knobs.url_ttl_s = 0.05
            finished = await _finished_render(client, board)
            await asyncio.sleep(0.1)  # the URL we hold has expired
            sim.knobs.url_ttl_s = 60
            await client.download(finished, tmp_path / "video.mp4")
            return (tmp_path / "video.mp4").stat().st_size

    size = asyncio.run(scenario())

    assert size == sim.renders()[0]["file_size"]
    assert sim.counts.expired_downloads == 1
    assert sim.counts.created == 1


def test_a_url_that_expires_again_gives_a_clear_error(
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    simulator: tuple[VendorSimulator, str],
) -> None:
    sim, url = simulator
    board = make_board()
    config = VendorConfig(base_url=url, api_key=API_KEY, poll_s=0.05, backoff_s=0.05)

    async def scenario() -> None:
        async with VendorClient(config, RenderLedger(tmp_path / "ledger.sqlite")) as client:
            sim.knobs.url_ttl_s = 0.001
            finished = await _finished_render(client, board)
            fetch = client.get

            async def get_slowly(render_id: str) -> RenderObject:
                # Loopback can answer within the URL's millisecond of life: let the fresh
                # URL expire too before it is used, as it would on a slow link.
                fresh = await fetch(render_id)
                await asyncio.sleep(0.01)
                return fresh

            client.get = get_slowly  # type: ignore[method-assign]
            await asyncio.sleep(0.01)
            await client.download(finished, tmp_path / "video.mp4")

    with pytest.raises(ResultExpired, match="expired, and so had the fresh one"):
        asyncio.run(scenario())
    assert sim.counts.expired_downloads == 2
