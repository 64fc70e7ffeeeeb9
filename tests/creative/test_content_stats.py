"""Frame statistics: black and frozen stretches found in the frames themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from creative.content import ContentStats, FrameStats
from creative.qc import Expect, qc_video

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


def test_qc_reports_what_the_render_measured(tmp_path: Path) -> None:
    """Given the renderer's statistics, QC judges black/frozen by them (no full decode)."""
    content = ContentStats(frames=192, black=((2.0, 3.0),), freezes=(), luma=(100.0,) * 192)
    verdict = qc_video(tmp_path / "missing.mp4", Expect(width=48, height=64), content)
    assert not verdict.ok and verdict.problems[0].startswith("unreadable video")
