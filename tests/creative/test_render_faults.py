"""The renderer under environment faults: a damaged earlier render, a full disk, no ffmpeg."""

from __future__ import annotations

import errno
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from creative import LocalRenderer, RenderError, Storyboard, Template, build_storyboard
from creative.encode import find_ffmpeg
from creative.errors import CreativeError
from creative.qc import Expect, qc_video
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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damaged", "damage"),
    [
        ("video.mp4", "truncated"),
        ("video.mp4", "overwritten"),
        ("preview.gif", "truncated"),
    ],
)
def test_a_damaged_earlier_render_is_rendered_again_not_reused(
    board: Storyboard, tmp_path: Path, damaged: str, damage: str
) -> None:
    renderer = LocalRenderer(preset="ultrafast")
    first = renderer.render(board, tmp_path)
    path = render_dir(tmp_path, first.key) / damaged
    data = path.read_bytes()
    if damage == "truncated":  # a full disk or a killed copy
        path.write_bytes(data[: len(data) // 2])
    else:  # same size, other bytes
        path.write_bytes(bytes(b ^ 0x5A for b in data[:4096]) + data[4096:])
    if damaged == "video.mp4":
        # What QC would say of the damaged file, were it reused: the second line of defence.
        copy = tmp_path / "damaged.mp4"
        shutil.copyfile(path, copy)
        assert not qc_video(copy, Expect.from_storyboard(board), first.content).ok

    again = renderer.render(board, tmp_path)

    assert not again.reused and again.video == first.video
    assert path.read_bytes() != data[: len(data) // 2]
    verdict = qc_video(again.video, Expect.from_storyboard(board), again.content)
    assert verdict.ok, verdict.problems
    with Image.open(again.gif) as gif:  # type: ignore[arg-type]
        assert gif.format == "GIF" and gif.n_frames > 1
    assert renderer.render(board, tmp_path).reused  # and it is whole again


def test_a_full_disk_while_writing_a_render_names_it_and_leaves_nothing(
    board: Storyboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", no_space)  # the poster write
    with pytest.raises(RenderError, match=r"disk full \(no space left on device\)") as caught:
        LocalRenderer(preset="ultrafast").render(board, tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert not render_dir(tmp_path, board.key()).exists()
    assert list(tmp_path.glob("*/.tmp-*")) == []


def test_ffmpeg_failing_on_a_full_disk_is_reported_as_a_full_disk(
    board: Storyboard, tmp_path: Path
) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\ncat >/dev/null\n"
        "echo 'Error writing trailer of video.mp4: No space left on device' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(RenderError, match=r"disk full"):
        LocalRenderer(ffmpeg=str(fake)).render(board, tmp_path / "out")
    assert not render_dir(tmp_path / "out", board.key()).exists()


def test_no_ffmpeg_anywhere_is_one_error_saying_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    # imageio-ffmpeg hands back IMAGEIO_FFMPEG_EXE without checking it.
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "nowhere" / "ffmpeg"))
    with pytest.raises(CreativeError, match=r"ffmpeg not found.*apt-get install ffmpeg"):
        find_ffmpeg()
    with pytest.raises(CreativeError, match="ffmpeg not found"):
        LocalRenderer()
