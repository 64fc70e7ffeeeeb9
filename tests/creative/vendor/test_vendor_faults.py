"""The vendor client under the faults real vendors produce, against the real simulator.

The invariant under every fault: one storyboard costs at most one vendor render.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from creative import Storyboard, probe_video
from creative.storyboard import ImagePart
from creative.vendor import (
    VendorClient,
    VendorConfig,
    VendorError,
    VendorRenderer,
    VendorUnavailable,
)
from creative.vendor.ledger import LedgerEntry, RenderLedger
from creative.vendor.protocol import RenderObject
from creative.vendor.renderer import LEDGER_FILE
from creative.vendor.simulator import VendorSimulator
from tests.creative.vendor.conftest import API_KEY


def _creates(sim: VendorSimulator) -> int:
    return sum(r.method == "POST" and r.path == "/v2/renders" for r in sim.received)


def test_429_with_retry_after_is_obeyed(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.rate_limit, sim.knobs.rate_window_s = 2, 1.0
    # The client believes in a far higher limit, so it runs into the vendor's.
    renderer = make_renderer(requests_per_window=1000, window_s=1.0, attempts=6)

    started = time.monotonic()
    render = renderer.render(make_board(), out_dir)

    assert probe_video(render.video).width == 180
    assert sim.counts.answers[429] >= 1
    assert time.monotonic() - started >= 1.0  # waited for Retry-After (whole seconds)
    assert sim.counts.created == 1


def test_429_without_retry_after_backs_off_and_succeeds(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.rate_limit, sim.knobs.rate_window_s, sim.knobs.retry_after = 2, 1.0, False
    renderer = make_renderer(
        requests_per_window=1000, window_s=1.0, attempts=10, backoff_s=0.1, backoff_max_s=0.4
    )

    render = renderer.render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.answers[429] >= 1
    assert sim.counts.created == 1


def test_client_rate_limit_keeps_a_batch_under_the_vendor_limit(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.rate_limit, sim.knobs.rate_window_s = 6, 1.0
    renderer = make_renderer(requests_per_window=6, window_s=1.0, attempts=1)

    for title in ("One", "Two"):
        renderer.render(make_board(title), out_dir)

    assert sim.counts.answers[429] == 0
    assert sim.counts.created == 2


def test_5xx_before_create_is_retried(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.fail_before_create = 2
    renderer = make_renderer()

    render = renderer.render(make_board(), out_dir)

    assert render.video.is_file()
    assert _creates(sim) == 3
    assert sim.counts.created == 1


def test_5xx_after_create_adopts_the_render_instead_of_paying_twice(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.fail_after_create = 1
    renderer = make_renderer()

    render = renderer.render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.created == 1
    assert _creates(sim) == 1  # looked the render up by metadata, never POSTed again
    lookups = [r for r in sim.received if r.method == "GET" and r.path == "/v2/renders"]
    assert lookups and lookups[0].query == {"metadata.key": make_board().key()}
    assert renderer.costs().renders == 1


def test_timeout_after_create_never_creates_a_second_render(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.hang_after_create, sim.knobs.hang_s = 1, 2.0
    renderer = make_renderer(request_timeout_s=0.5)

    render = renderer.render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.created == 1
    assert _creates(sim) == 1


def test_an_ambiguous_failure_survives_a_restart_without_a_second_render(
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.fail_after_create = 5
    workspace = tmp_path / "workspace"
    first = make_renderer(workspace, attempts=1)
    with pytest.raises(VendorUnavailable):
        first.render(make_board(), out_dir)
    first.close()
    entry = RenderLedger(workspace / LEDGER_FILE).get(make_board().key())
    assert entry is not None and entry.render_id is None  # the create may have happened

    # A new process: the ledger says "maybe created", so it asks the vendor first. The
    # render's webhook went to the old process; the slow poll finds it.
    render = make_renderer(workspace, slow_poll_s=0.3).render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.created == 1
    assert _creates(sim) == 1


def _ledger_entry(workspace: Path, key: str) -> LedgerEntry | None:
    ledger = RenderLedger(workspace / LEDGER_FILE)
    try:
        return ledger.get(key)
    finally:
        ledger.close()


def test_the_render_id_is_recorded_on_the_first_2xx_and_a_restart_follows_it(
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, url = simulator
    workspace = tmp_path / "workspace"
    board = make_board()
    config = VendorConfig(base_url=url, api_key=API_KEY, request_timeout_s=3.0)

    async def create_only() -> RenderObject:
        ledger = RenderLedger(workspace / LEDGER_FILE)
        try:
            async with VendorClient(config, ledger) as client:
                return await client.create(board, campaign="spring")
        finally:
            ledger.close()

    created = asyncio.run(create_only())  # the process ends right after the create's 2xx

    # Recorded on the 2xx itself, not later by polling: nothing has read the render yet.
    entry = _ledger_entry(workspace, board.key())
    assert entry is not None and entry.render_id == created.id
    assert not [r for r in sim.received if r.path.startswith("/v2/renders/")]
    seen = len(sim.received)

    # A new process follows the recorded render: no second create, no metadata lookup.
    render = make_renderer(workspace, webhook_secret=None).render(board, out_dir)

    assert render.video.is_file()
    after = sim.received[seen:]
    assert not [r for r in after if r.path == "/v2/renders"], after
    assert {r.path for r in after} == {f"/v2/renders/{created.id}"}
    assert sim.counts.created == 1 and _creates(sim) == 1


def test_answers_slower_than_the_client_timeout_never_cost_a_second_render(
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, url = simulator
    workspace = tmp_path / "workspace"
    board = make_board()
    config = VendorConfig(
        base_url=url, api_key=API_KEY, request_timeout_s=1.0, attempts=3, backoff_s=0.05,
        backoff_max_s=0.1,
    )  # fmt: skip
    images = {p.sha256: p.path for p in board.layers if isinstance(p, ImagePart)}

    async def create_on_a_slow_vendor() -> None:
        ledger = RenderLedger(workspace / LEDGER_FILE)
        try:
            async with VendorClient(config, ledger) as client:
                for digest, path in images.items():
                    await client.upload(path, digest)
                # From here every answer comes after the client stopped waiting for it
                # (wide margins: a loaded machine must still record each request in time).
                sim.knobs.latency_s = 4.0
                with pytest.raises(VendorUnavailable, match=r"no answer \(ReadTimeout\)"):
                    await client.create(board, campaign="spring")
        finally:
            ledger.close()

    asyncio.run(create_on_a_slow_vendor())

    # The vendor did create the render; the client never heard, so its later tries were
    # metadata lookups, never a second create, and the ledger says "maybe created".
    assert sim.counts.created == 1 and _creates(sim) == 1
    lookups = [r for r in sim.received if r.method == "GET" and r.path == "/v2/renders"]
    assert len(lookups) == 2
    entry = _ledger_entry(workspace, board.key())
    assert entry is not None and entry.render_id is None

    sim.knobs.latency_s = 0.0
    renderer = make_renderer(workspace, webhook_secret=None)
    render = renderer.render(board, out_dir)

    assert render.video.is_file()
    assert sim.counts.created == 1 and _creates(sim) == 1
    assert renderer.costs().renders == 1


def test_vendor_down_raises_vendor_unavailable_within_the_budget(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    out_dir: Path,
) -> None:
    renderer = make_renderer(base_url="http://127.0.0.1:9", attempts=3, webhook_secret=None)

    started = time.monotonic()
    with pytest.raises(VendorUnavailable, match="3 tries"):
        renderer.render(make_board(), out_dir)

    assert time.monotonic() - started < 3


def test_random_5xx_on_every_kind_of_request_still_ends_in_one_render(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    sim.knobs.error_rate = 0.5
    renderer = make_renderer(attempts=12)

    render = renderer.render(make_board(), out_dir)

    assert render.video.is_file()
    assert sim.counts.answers[503] >= 1
    assert sim.counts.created == 1


@pytest.mark.parametrize(
    ("knob", "value", "message"),
    [
        ("api_key", "another-key", "rejected the API key"),
        ("credits_s", 4.0, "out of credits"),
    ],
)
def test_refusals_are_clear_errors_without_retries(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
    knob: str,
    value: object,
    message: str,
) -> None:
    sim, _ = simulator
    setattr(sim.knobs, knob, value)
    renderer = make_renderer()

    with pytest.raises(VendorError, match=message):
        renderer.render(make_board(), out_dir)

    assert sim.counts.created == 0
    assert _creates(sim) <= 1


def test_a_render_the_vendor_does_not_know_is_a_clear_404(
    tmp_path: Path, simulator: tuple[VendorSimulator, str]
) -> None:
    config = VendorConfig(base_url=simulator[1], api_key=API_KEY)

    async def read() -> None:
        async with VendorClient(config, RenderLedger(tmp_path / "ledger.sqlite")) as client:
            await client.get("no-such-render")

    with pytest.raises(VendorError, match=r"does not know this render.*404"):
        asyncio.run(read())


def test_a_template_the_vendor_does_not_have_in_this_version_is_refused(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    board = make_board()
    stale = board.model_copy(update={"template_version": "0" * 64})

    with pytest.raises(VendorError, match=r"answered 400: .*version"):
        make_renderer().render(stale, out_dir)

    assert simulator[0].counts.created == 0


def test_failed_renders_are_tried_again_then_reported(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    from creative.vendor import RenderFailed

    sim, _ = simulator
    sim.knobs.failure_rate = 1.0
    renderer = make_renderer(render_attempts=2)

    with pytest.raises(RenderFailed, match="tried 2 time"):
        renderer.render(make_board(), out_dir)

    assert sim.counts.created == 2
    assert renderer.costs().renders == 0  # failed renders are not charged


def test_the_vendors_own_words_stay_out_of_errors_once_first_names_may_reach_it(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    """With names allowed, a vendor's error text could quote one: only status and id stay."""
    from creative.vendor import RenderFailed

    sim, _ = simulator
    stale = make_board().model_copy(update={"template_version": "0" * 64})
    with pytest.raises(VendorError) as refused:
        make_renderer(allow_first_name=True).render(stale, out_dir)
    assert "answered 400)" in str(refused.value) and "version" not in str(refused.value)

    sim.knobs.failure_rate = 1.0
    with pytest.raises(RenderFailed) as failed:
        make_renderer(allow_first_name=True, render_attempts=1).render(make_board(), out_dir)
    assert "no reason shown" in str(failed.value) and "injected" not in str(failed.value)
    # Names off (the default): the vendor knows nothing personal, its words help the operator.
    with pytest.raises(RenderFailed, match=r"render failed \(injected\)"):
        make_renderer(render_attempts=1).render(make_board("Other boots"), out_dir)
