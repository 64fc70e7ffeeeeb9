"""The local renderer: a real, checkable MP4 and poster, reused by key, never half-written."""

from __future__ import annotations

import os
import stat
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
    probe_video,
)
from creative.frames import FrameComposer
from creative.render import render_dir
from retail.types import Customer, Pick, Product


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
        def _render_into(self, storyboard: Storyboard, key: str, target: Path) -> None:
            calls.append(key)
            raise RenderError("stop here")

    with pytest.raises(RenderError):
        Recording().render(board, tmp_path)
    assert calls == [board.key()]
