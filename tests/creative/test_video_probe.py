"""Probing and checking video files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from creative import CreativeError, VideoInfo, check_video, probe_video


def _good(**changes: object) -> VideoInfo:
    info = VideoInfo(
        path=Path("v.mp4"),
        codec="h264",
        pix_fmt="yuv420p",
        width=720,
        height=1280,
        duration_s=8.0,
        fps=24.0,
        frames=192,
        color_range="tv",
        faststart=True,
        size_bytes=150_000,
    )
    return info.model_copy(update=changes)


def _tiny_video(path: Path, *, faststart: bool) -> Path:
    """A 2-second 64×64 H.264 file, with or without the moov box moved to the front."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    command = [
        ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=24:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    command += ["-movflags", "+faststart"] if faststart else []
    subprocess.run([*command, "-y", str(path)], check=True, timeout=60)
    return path


def test_good_video_has_no_problems() -> None:
    assert check_video(_good()) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"codec": "hevc"}, "codec is hevc"),
        ({"pix_fmt": "yuv444p"}, "pixel format is yuv444p"),
        ({"duration_s": 12.5}, "duration 12.50 s is outside 6–10 s"),
        ({"duration_s": 3.0}, "outside"),
        ({"faststart": False}, "not faststart"),
        ({"color_range": "pc"}, "full color range"),
        ({"width": 721}, "must be positive and even"),
    ],
)
def test_check_video_names_each_problem(changes: dict[str, object], problem: str) -> None:
    problems = check_video(_good(**changes))
    assert len(problems) == 1 and problem in problems[0]


def test_probe_reads_codec_size_duration_and_faststart(tmp_path: Path) -> None:
    fast = probe_video(_tiny_video(tmp_path / "fast.mp4", faststart=True))
    slow = probe_video(_tiny_video(tmp_path / "slow.mp4", faststart=False))
    assert (fast.codec, fast.pix_fmt, fast.width, fast.height) == ("h264", "yuv420p", 64, 64)
    assert fast.duration_s == pytest.approx(2.0, abs=0.05) and fast.fps == 24
    assert fast.faststart and not slow.faststart
    assert check_video(fast, min_s=1, max_s=3) == []


def test_unreadable_file_is_a_creative_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(CreativeError, match="cannot read"):
        probe_video(bad)


def test_a_missing_file_is_a_creative_error(tmp_path: Path) -> None:
    with pytest.raises(CreativeError, match="cannot read"):
        probe_video(tmp_path / "nowhere.mp4")


def test_audio_stream_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "tone.mp4"
    command = [
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=24:duration=2",
        "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", "-shortest",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=60)
    assert probe_video(out).has_audio
    assert not probe_video(_tiny_video(tmp_path / "mute.mp4", faststart=True)).has_audio


def test_a_raw_stream_is_not_faststart_and_qc_does_not_raise(tmp_path: Path) -> None:
    """Annex-B H.264 reads as a 64-bit box size of garbage: no box walk may crash on it."""
    from creative.qc import Expect, qc_video

    raw = tmp_path / "raw.h264"
    command = [
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=24:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "h264",
        "-y", str(raw),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=60)
    assert probe_video(raw).faststart is False
    verdict = qc_video(raw, Expect(width=64, height=64))
    assert not verdict.ok and any("not faststart" in p for p in verdict.problems)
