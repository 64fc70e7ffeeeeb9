"""Video QC catches black, frozen, wrong-size, too-long, slow-start, silent and loud videos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from creative.qc import Expect, qc_video

SIZE = (320, 240)


def _make(
    path: Path,
    video: str,
    *,
    audio: str | None = None,
    faststart: bool = True,
    graph: str | None = None,
    encoder: str = "libx264",
) -> Path:
    """Encode a lavfi source (optionally through `graph`, and with audio) like our renders."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", video]
    if graph:
        command += ["-filter_complex", graph]
    if audio:
        command += ["-f", "lavfi", "-i", audio, "-c:a", "aac", "-shortest"]
    command += ["-c:v", encoder, "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    command += ["-x265-params", "log-level=error"] if encoder == "libx265" else []
    command += ["-movflags", "+faststart"] if faststart else []
    subprocess.run([*command, "-y", str(path)], check=True, timeout=60)
    return path


def _moving(seconds: float, size: tuple[int, int] = SIZE) -> str:
    return f"testsrc2=size={size[0]}x{size[1]}:rate=24:duration={seconds}"


EXPECT = Expect(width=SIZE[0], height=SIZE[1], fps=24, frames=192)


def test_a_good_video_passes(tmp_path: Path) -> None:
    verdict = qc_video(_make(tmp_path / "ok.mp4", _moving(8)), EXPECT)
    assert verdict.ok, verdict.problems
    assert verdict.measured["frames"] == 192


def test_black_stretch_over_half_a_second_is_caught(tmp_path: Path) -> None:
    graph = f"{_moving(8)},drawbox=c=black:t=fill:enable='between(t,3,4)'"
    verdict = qc_video(_make(tmp_path / "black.mp4", graph), EXPECT)
    assert not verdict.ok
    assert any(p.startswith("black from 3.0") for p in verdict.problems), verdict.problems


def test_frozen_stretch_is_caught(tmp_path: Path) -> None:
    graph = "[0:v]split[a][b];[a][b]freezeframes=first=60:last=84:replace=59"
    verdict = qc_video(_make(tmp_path / "frozen.mp4", _moving(8), graph=graph), EXPECT)
    assert not verdict.ok
    assert any(p.startswith("frozen from 2.") for p in verdict.problems), verdict.problems


def test_intended_still_end_card_passes_but_the_same_freeze_elsewhere_does_not(
    tmp_path: Path,
) -> None:
    graph = "[0:v]split[a][b];[a][b]freezeframes=first=157:last=191:replace=156"  # 1.5 s still
    video = _make(tmp_path / "end-card.mp4", _moving(8), graph=graph)
    assert not qc_video(video, EXPECT).ok
    allowed = EXPECT.model_copy(update={"still_spans": ((6.5, 8.0),)})
    verdict = qc_video(video, allowed)
    assert verdict.ok, verdict.problems


def test_wrong_size_is_caught(tmp_path: Path) -> None:
    verdict = qc_video(_make(tmp_path / "small.mp4", _moving(8, (160, 120))), EXPECT)
    assert "size is 160×120, expected 320×240" in verdict.problems


def test_too_long_video_is_caught(tmp_path: Path) -> None:
    verdict = qc_video(_make(tmp_path / "long.mp4", _moving(12)), EXPECT)
    assert any("duration 12.00 s is outside 6–10 s" in p for p in verdict.problems)
    assert "288 frames decoded, expected 192" in verdict.problems


def test_an_h264_file_fails_when_the_template_expects_another_codec(tmp_path: Path) -> None:
    video = _make(tmp_path / "ok.mp4", _moving(8))
    verdict = qc_video(video, EXPECT.model_copy(update={"codec": "hevc"}))
    assert verdict.problems == ["codec is h264, expected hevc"]


def test_the_expected_codec_is_the_one_checked(tmp_path: Path) -> None:
    hevc = _make(tmp_path / "hevc.mp4", _moving(8), encoder="libx265")
    assert qc_video(hevc, EXPECT.model_copy(update={"codec": "hevc"})).ok
    assert qc_video(hevc, EXPECT).problems == ["codec is hevc, expected h264"]


def test_missing_faststart_and_size_budget_are_caught(tmp_path: Path) -> None:
    video = _make(tmp_path / "slow.mp4", _moving(8), faststart=False)
    verdict = qc_video(video, EXPECT.model_copy(update={"max_bytes": 1000}))
    assert any("not faststart" in p for p in verdict.problems)
    assert any("over the 1,000 budget" in p for p in verdict.problems)


@pytest.mark.parametrize(
    ("volume", "problem"), [("0.05", "audio loudness -"), ("8.0", "audio true peak")]
)
def test_audio_loudness_out_of_range_is_caught(tmp_path: Path, volume: str, problem: str) -> None:
    audio = f"sine=frequency=440:duration=8:sample_rate=48000,volume={volume}"
    video = _make(tmp_path / "tone.mp4", _moving(8), audio=audio)
    verdict = qc_video(video, EXPECT.model_copy(update={"audio": True}))
    assert any(p.startswith(problem) for p in verdict.problems), verdict.problems


def test_a_tone_at_the_target_loudness_passes(tmp_path: Path) -> None:
    # ffmpeg's sine source has amplitude 1/8 (-21.8 LUFS); ×1.6 makes about -17.7 LUFS.
    audio = "sine=frequency=440:duration=8:sample_rate=48000,volume=1.6"
    video = _make(tmp_path / "tone.mp4", _moving(8), audio=audio)
    verdict = qc_video(video, EXPECT.model_copy(update={"audio": True}))
    assert verdict.ok, verdict.problems
    assert -19 <= verdict.measured["loudness_lufs"] <= -13  # type: ignore[operator]


def test_missing_audio_is_caught_when_the_template_has_a_bed(tmp_path: Path) -> None:
    expect = EXPECT.model_copy(update={"audio": True})
    verdict = qc_video(_make(tmp_path / "mute.mp4", _moving(8)), expect)
    assert "no audio track, but the template has an audio bed" in verdict.problems


def test_unreadable_file_is_a_failed_verdict(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    verdict = qc_video(bad, EXPECT)
    assert not verdict.ok and verdict.problems[0].startswith("unreadable video")
