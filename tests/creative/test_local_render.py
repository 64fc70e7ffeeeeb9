"""The local renderer: a real, checkable MP4 and poster, reused by key, never half-written."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from creative import (
    LocalRenderer,
    Render,
    Renderer,
    RenderError,
    Storyboard,
    Template,
    build_storyboard,
    check_video,
    load_template,
    probe_video,
)
from creative.frames import FrameComposer
from creative.qc import Expect, qc_video
from creative.render import render_dir
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[2]
TEMPLATES, ASSETS = REPO / "templates", REPO / "assets"


@pytest.fixture
def board(
    hero: Template,
    make_product: Callable[..., Product],
    customer: Customer,
    pick: Pick,
    images_root: Path,
) -> Storyboard:
    product = make_product()
    return build_storyboard(hero, pick, {product.id: product}, customer, images_root=images_root)


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory,
    hero: Template,
    images_root: Path,
) -> tuple[Storyboard, Render, Path]:
    """One real render of the hero template, shared by the checks below."""
    product = Product(
        id="p1",
        title="Trailblazer GTX waterproof hiking boots",
        brand="Alpenweg",
        category="Shoes",
        price="149.90",
        currency="EUR",
        image="shoes/p1.jpg",
        url="https://shop.example/p/p1",
    )
    customer = Customer(id="c-1", email="a@example.com", first_name="Anna", locale="en_US")
    pick = Pick(
        customer_id="c-1", product_ids=("p1",), scores=(1.0,), reasons=("x",), model_version="m"
    )
    board = build_storyboard(hero, pick, {"p1": product}, customer, images_root=images_root)
    out_dir = tmp_path_factory.mktemp("renders")
    return board, LocalRenderer().render(board, out_dir), out_dir


def _children() -> set[int]:
    """Live child processes of this test process (to catch leaked ffmpeg processes)."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def test_local_renderer_is_a_renderer() -> None:
    assert isinstance(LocalRenderer(), Renderer)


@pytest.mark.slow
def test_render_is_an_h264_yuv420p_faststart_mp4_of_6_to_10_seconds(
    rendered: tuple[Storyboard, Render, Path],
) -> None:
    board, render, out_dir = rendered
    assert render.video == render_dir(out_dir, board.key()) / "video.mp4"
    assert (render.width, render.height, render.duration_s, render.reused) == (720, 1280, 8, False)
    info = probe_video(render.video)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 720, 1280)
    assert 6 <= info.duration_s <= 10 and info.fps == 24 and info.frames == 192
    assert info.faststart and info.color_range == "tv"
    assert check_video(info) == []


@pytest.mark.slow
def test_render_writes_a_poster_of_the_video_size(
    rendered: tuple[Storyboard, Render, Path],
) -> None:
    _, render, _ = rendered
    with Image.open(render.poster) as poster:
        assert poster.format == "JPEG" and poster.size == (720, 1280)
        pixels = np.asarray(poster.convert("L"))
    assert pixels.std() > 20  # a real picture, not a blank frame


@pytest.mark.slow
def test_second_render_of_the_same_storyboard_is_reused(
    rendered: tuple[Storyboard, Render, Path],
) -> None:
    board, first, out_dir = rendered
    mtime = first.video.stat().st_mtime_ns
    again = LocalRenderer().render(board, out_dir)
    assert again.reused and again.video == first.video and again.key == first.key
    assert first.video.stat().st_mtime_ns == mtime


def test_ffmpeg_failure_raises_render_error_with_its_log_and_leaves_nothing(
    board: Storyboard, tmp_path: Path
) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    before = _children()
    with pytest.raises(RenderError, match="Unknown encoder libx264"):
        LocalRenderer(ffmpeg=str(fake)).render(board, tmp_path / "out")
    assert _children() <= before
    assert not render_dir(tmp_path / "out", board.key()).exists()
    assert list((tmp_path / "out").glob("*/.tmp-*")) == []


def test_interrupted_render_kills_ffmpeg_and_leaves_no_valid_looking_output(
    board: Storyboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_frames = FrameComposer.frames

    def frames_then_crash(self: FrameComposer) -> Iterator[np.ndarray]:
        for index, frame in enumerate(real_frames(self)):
            if index == 10:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(FrameComposer, "frames", frames_then_crash)
    before = _children()
    with pytest.raises(KeyboardInterrupt):
        LocalRenderer().render(board, tmp_path)
    assert _children() <= before
    assert not render_dir(tmp_path, board.key()).exists()
    assert list(tmp_path.glob("*/.tmp-*")) == []


def test_incomplete_render_folder_is_not_reused(board: Storyboard, tmp_path: Path) -> None:
    folder = render_dir(tmp_path, board.key())
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"half")  # no poster, no manifest
    calls = []

    class Recording(LocalRenderer):
        def _render_into(
            self, storyboard: Storyboard, key: str, target: Path, out_dir: Path
        ) -> None:
            calls.append(key)
            raise RenderError("stop here")

    with pytest.raises(RenderError):
        Recording().render(board, tmp_path)
    assert calls == [board.key()]


@pytest.mark.slow
def test_render_writes_an_email_safe_gif_preview(rendered: tuple[Storyboard, Render, Path]) -> None:
    board, render, _ = rendered
    assert render.gif is not None and render.gif.name == "preview.gif"
    assert render.gif.stat().st_size <= 1_000_000
    with Image.open(render.gif) as gif:
        assert gif.format == "GIF" and gif.size == (240, 427) and gif.n_frames == 36
        assert gif.info.get("loop") == 0  # loops forever
    assert LocalRenderer().render(board, render.video.parents[2]).gif == render.gif


@pytest.mark.slow
def test_render_passes_video_qc_with_its_end_card_hold(
    rendered: tuple[Storyboard, Render, Path],
) -> None:
    board, render, _ = rendered
    expect = Expect.from_storyboard(board)
    assert expect.still_spans[-1] == (6.75, 8.0)  # the end card, held on purpose
    verdict = qc_video(render.video, expect)
    assert verdict.ok, verdict.problems
    assert verdict.measured["frames"] == 192


@pytest.mark.slow
def test_stats_measured_while_rendering_agree_with_a_full_decode(
    rendered: tuple[Storyboard, Render, Path],
) -> None:
    board, render, _ = rendered
    assert render.content is not None
    reused = LocalRenderer().render(board, render.video.parents[2])
    assert reused.reused and reused.content == render.content  # kept in the manifest
    expect = Expect.from_storyboard(board)
    quick = qc_video(render.video, expect, render.content)
    full = qc_video(render.video, expect)
    assert quick.ok and full.ok, (quick.problems, full.problems)
    assert quick.measured["content"] == "rendered, keyframes checked"
    assert full.measured["content"] == "decoded"
    assert quick.measured["frames"] == full.measured["frames"] == 192
    # The end card's hold, seen the same way on both sides (to a frame).
    (q_start, q_end), (f_start, f_end) = quick.measured["freezes"][-1], full.measured["freezes"][-1]  # type: ignore[index]
    assert abs(q_start - f_start) <= 1 / 24 + 1e-9 and q_end == f_end == 8.0
    decoded = _decoded_luma(render.video)
    assert np.abs(np.array(render.content.luma) - decoded).max() < 2.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hero", "carousel", "price-drop"])
def test_every_template_passes_qc_both_ways(name: str, tmp_path: Path, images_root: Path) -> None:
    """A render of each shipped template passes QC from its own statistics and from a full
    decode (the carousel's audio bed is 9 s: loudness must be read to the very end)."""
    from creative.check import SAMPLE_PRODUCTS, sample_images

    template = load_template(TEMPLATES, name, ASSETS)
    customer = Customer(id="c-1", email="a@example.com", first_name="Anna", locale="en_US")
    pick = Pick(
        customer_id="c-1", product_ids=tuple(p.id for p in SAMPLE_PRODUCTS[:3]),
        scores=(1.0, 0.9, 0.8), reasons=("x",) * 3, model_version="m",
    )  # fmt: skip
    board = build_storyboard(
        template, pick, {p.id: p for p in SAMPLE_PRODUCTS}, customer,
        images_root=sample_images(images_root),
    )  # fmt: skip
    render = LocalRenderer(preset="ultrafast").render(board, tmp_path)
    expect = Expect.from_storyboard(board)
    for verdict in (qc_video(render.video, expect, render.content), qc_video(render.video, expect)):
        assert verdict.ok, (name, verdict.measured["content"], verdict.problems)
        if board.audio is not None:
            assert verdict.measured["loudness_lufs"] is not None


@pytest.mark.slow
def test_a_file_that_does_not_hold_the_rendered_frames_fails(
    rendered: tuple[Storyboard, Render, Path], tmp_path: Path
) -> None:
    board, render, _ = rendered
    other = tmp_path / "other.mp4"
    command = [
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=720x1280:rate=24:duration=8",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-y", str(other),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=120)
    verdict = qc_video(other, Expect.from_storyboard(board), render.content)
    assert not verdict.ok
    assert any("is not the rendered frame" in p for p in verdict.problems), verdict.problems


def _decoded_luma(video: Path) -> np.ndarray:
    """Mean luma (the Y plane as coded) of every frame's 1-in-16 sample, decoded in full."""
    import av

    means = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            means.append(luma[::4, : frame.width : 4].mean())
    return np.array(means)


@pytest.mark.slow
def test_audio_bed_is_normalized_to_the_templates_loudness(
    tmp_path: Path, images_root: Path
) -> None:
    from creative.check import SAMPLE_PRODUCTS, sample_images

    template = load_template(TEMPLATES, "price-drop", ASSETS, "1:1")
    images = sample_images(images_root)
    customer = Customer(id="c-1", email="a@example.com", first_name="Anna", locale="en_US")
    pick = Pick(
        customer_id="c-1", product_ids=("sample-2",), scores=(1.0,), reasons=("x",),
        model_version="m",
    )  # fmt: skip
    board = build_storyboard(
        template, pick, {p.id: p for p in SAMPLE_PRODUCTS}, customer, images_root=images
    )
    render = LocalRenderer(preset="ultrafast").render(board, tmp_path)
    verdict = qc_video(render.video, Expect.from_storyboard(board))
    assert verdict.ok, verdict.problems
    assert -17 <= verdict.measured["loudness_lufs"] <= -15  # type: ignore[operator]


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_many_renders_leak_no_processes_files_or_memory(
    template_copy: Callable[..., Path],
    make_product: Callable[..., Product],
    customer: Customer,
    pick: Pick,
    images_root: Path,
    tmp_path: Path,
) -> None:
    """15 renders in one process (bench/render.py --leak-check 200 does the long run)."""

    def small(data: dict) -> None:  # type: ignore[type-arg]
        data["aspects"] = {
            "9:16": data["aspects"]["9:16"] | {"canvas": {"width": 240, "height": 426}}
        }
        data["fps"] = 8
        for layer in data["layers"]:
            layer.get("at", {}).clear()

    template = load_template(template_copy(small), "hero", ASSETS)
    renderer = LocalRenderer(preset="ultrafast")
    before_children = _children()
    fds = len(list(Path("/proc/self/fd").iterdir()))

    def render(i: int) -> None:
        product = make_product(title=f"Trailblazer GTX waterproof hiking boots no. {i}")
        board = build_storyboard(
            template, pick, {product.id: product}, customer, images_root=images_root
        )
        assert not renderer.render(board, tmp_path / "renders").reused

    for i in range(5):  # warm-up: caches, imports, allocator pools
        render(i)
    rss = _rss_kb()
    for i in range(5, 15):
        render(i)
        assert _children() <= before_children
    assert len(list(Path("/proc/self/fd").iterdir())) <= fds
    assert _rss_kb() - rss < 20_000, f"RSS grew by {(_rss_kb() - rss) / 1000:.1f} MB"
