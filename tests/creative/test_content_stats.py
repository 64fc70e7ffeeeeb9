"""Frame statistics: black and frozen stretches found in the frames themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from creative.content import ContentStats, FrameStats
from creative.encode import FrameEncoder
from creative.qc import Expect, qc_video
from creative.storyboard import Encode

FPS = 24


def _moving(index: int) -> np.ndarray:
    """A frame that differs clearly from its neighbours (a bar sweeping across)."""
    frame = np.full((64, 48, 3), 120, np.uint8)
    frame[:, (index * 3) % 48 : (index * 3) % 48 + 6] = 230
    return frame


def _stats(frames: list[np.ndarray]) -> ContentStats:
    stats = FrameStats(FPS)
    for frame in frames:
        stats.add_rgb(frame)
    return stats.result()


def test_moving_frames_have_no_black_or_frozen_stretch() -> None:
    result = _stats([_moving(i) for i in range(48)])
    assert result.frames == 48 and result.black == () and result.freezes == ()


def test_a_black_second_is_found_with_its_times() -> None:
    frames = [_moving(i) for i in range(72)]
    frames[24:48] = [np.zeros((64, 48, 3), np.uint8)] * 24
    result = _stats(frames)
    assert result.black == ((1.0, 2.0),)


def test_a_repeated_frame_is_a_freeze_from_the_frame_it_repeats() -> None:
    frames = [_moving(i) for i in range(72)]
    frames[30:60] = [frames[29]] * 30  # frames 29…59 show the same picture
    result = _stats(frames)
    assert result.freezes == ((29 / FPS, 60 / FPS),)


def test_a_slow_change_is_not_frozen() -> None:
    """A gradient brightening by a fraction of a level a frame: slow, but moving."""
    base = np.tile(np.linspace(40, 200, 48, dtype=np.float32), (64, 1))
    frames = [np.repeat((base + 0.4 * i)[..., None], 3, axis=2).astype(np.uint8) for i in range(48)]
    assert _stats(frames).freezes == ()


def test_a_missing_file_fails_even_with_statistics(tmp_path: Path) -> None:
    """Statistics never stand in for the file: without it, the verdict is unreadable."""
    content = ContentStats(frames=192, black=((2.0, 3.0),), freezes=(), luma=(100.0,) * 192)
    verdict = qc_video(tmp_path / "missing.mp4", Expect(width=48, height=64), content)
    assert not verdict.ok and verdict.problems[0].startswith("unreadable video")


def test_on_exact_frames_any_change_is_movement() -> None:
    frames = [_moving(0)] * 30
    frames[15] = frames[15].copy()
    frames[15][:4, :4] = 0  # a 4×4 corner changes (one sample point)
    exact = FrameStats(FPS, freeze_threshold=0.0)
    for frame in frames:
        exact.add_rgb(frame)
    # Frames 0…14 are one picture, frame 15 another, 16…29 the first again: two stills.
    assert exact.result().freezes == ((0.0, 15 / FPS), (16 / FPS, 30 / FPS))


def _encode(path: Path, frames: list[np.ndarray]) -> ContentStats:
    """Encode `frames` like a render (2 s keyframes) and measure them as the renderer does."""
    height, width = frames[0].shape[:2]
    stats = FrameStats(FPS, freeze_threshold=0.0)
    with FrameEncoder(path, width, height, FPS, Encode(preset="ultrafast")) as encoder:
        for frame in frames:
            encoder.write(frame)
            stats.add_rgb(frame)
    return stats.result()


def _textured(index: int) -> np.ndarray:
    """A 96×64 frame with detail (a sweeping bar on a gradient)."""
    base = np.tile(np.linspace(60, 200, 64, dtype=np.float32), (96, 1))
    frame = np.repeat(base[..., None], 3, axis=2).astype(np.uint8)
    frame[:, (index * 2) % 64 : (index * 2) % 64 + 8] = 240
    return frame


EXPECT_SMALL = Expect(width=64, height=96, fps=FPS, frames=192, max_bytes=10_000_000)


def test_qc_judges_black_and_frozen_by_the_renders_statistics(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    content = _encode(video, [_textured(i) for i in range(192)])
    assert qc_video(video, EXPECT_SMALL, content).ok
    with_black = content.model_copy(update={"black": ((2.0, 3.0),)})
    verdict = qc_video(video, EXPECT_SMALL, with_black)
    assert verdict.problems == ["black from 2.00 s to 3.00 s (1.00 s)"]


def test_a_file_whose_later_frames_differ_from_the_render_fails(tmp_path: Path) -> None:
    """Frame 0 matches, but from 2 s on the file is black: the 2 s keyframe gives it away."""
    rendered = tmp_path / "rendered.mp4"
    content = _encode(rendered, [_textured(i) for i in range(192)])
    swapped = tmp_path / "swapped.mp4"
    black = np.zeros((96, 64, 3), np.uint8)
    _encode(swapped, [_textured(i) if i < 48 else black for i in range(192)])
    verdict = qc_video(swapped, EXPECT_SMALL, content)
    assert any(
        p.startswith("frame 48 in the file is not the rendered frame") for p in verdict.problems
    )
    # The same file, fully decoded, shows the black stretch itself.
    assert any(p.startswith("black from 2.00 s") for p in qc_video(swapped, EXPECT_SMALL).problems)


def test_a_file_with_fewer_frames_than_rendered_fails(tmp_path: Path) -> None:
    video = tmp_path / "short.mp4"
    content = _encode(video, [_textured(i) for i in range(192)])
    _encode(video, [_textured(i) for i in range(168)])
    verdict = qc_video(video, EXPECT_SMALL, content)
    assert any("the file has 168 frames, 192 were rendered" in p for p in verdict.problems)
