"""Video QC: is a rendered file fit to send? One decode pass plus ffprobe.

The decode pass runs blackdetect, freezedetect and (when there is audio) ebur128 over the
whole file and counts its frames. freezedetect's noise floor is -80 dB: a slow Ken Burns
over a flat product shot changes frames by about -65 dB and must not count as frozen,
while a truly repeated frame differs by nothing. ffprobe gives codec, size, duration and
the MP4 layout.

Intended stills: an end card held for a second is frozen by design. The storyboard knows
exactly when nothing perceptible changes (`Storyboard.still_spans`), so `Expect` carries
those spans and a freeze is a problem only where it reaches outside them. The template
check (`creative.check`) in turn allows holds over 0.5 s only at the very end, so a
template cannot hide a stalled middle behind this rule.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from creative.audio import parse_ebur128
from creative.encode import find_ffmpeg
from creative.errors import CreativeError
from creative.probe import VideoInfo, check_video, probe_video
from creative.storyboard import Storyboard

_BLACK = re.compile(r"black_start:\s*([\d.]+)\s+black_end:\s*([\d.]+)\s+black_duration:\s*([\d.]+)")
_FREEZE = re.compile(r"lavfi\.freezedetect\.freeze_(start|end):\s*([\d.]+)")
_TOLERANCE_S = 0.15  # freezedetect's timestamps are a frame or two late


class Expect(BaseModel):
    """What a video must be: from the template's storyboard, or written by hand."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    codec: str = "h264"
    fps: float | None = None
    frames: int | None = None
    min_s: float = 6.0
    max_s: float = 10.0
    max_bytes: int = 4_000_000
    max_black_s: float = 0.5
    max_freeze_s: float = 0.5
    still_spans: tuple[tuple[float, float], ...] = ()
    audio: bool | None = Field(default=None, description="True: must have audio; None: either")
    loudness_lufs: tuple[float, float] = (-19.0, -13.0)
    max_true_peak_db: float = -1.0

    @classmethod
    def from_storyboard(cls, storyboard: Storyboard) -> Expect:
        """The expectations a render of `storyboard` must meet."""
        fmt = storyboard.format
        return cls(
            width=fmt.width,
            height=fmt.height,
            fps=fmt.fps,
            frames=fmt.frame_count,
            max_bytes=round(storyboard.max_file_mb * 1_000_000),
            still_spans=tuple(storyboard.still_spans()),
            audio=storyboard.audio is not None,
            loudness_lufs=(
                (storyboard.audio.loudness - 3, storyboard.audio.loudness + 3)
                if storyboard.audio
                else (-19.0, -13.0)
            ),
        )


class Verdict(BaseModel):
    """QC's answer: ok, or the problems (plain sentences) and what was measured."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    problems: list[str]
    measured: dict[str, object] = Field(default_factory=dict)


class _Scan(BaseModel):
    frames: int | None
    black: list[tuple[float, float]]
    freezes: list[tuple[float, float]]
    loudness: float | None
    true_peak: float | None
    has_audio: bool


def qc_video(
    path: Path, expect: Expect, *, ffmpeg: str | None = None, ffprobe: str | None = None
) -> Verdict:
    """Check `path` against `expect` with ffprobe and one decode pass.

    Raises CreativeError only if ffmpeg/ffprobe are missing; an unreadable file is a
    failed Verdict.
    """
    try:
        info = probe_video(path, ffprobe)
    except CreativeError as exc:
        if str(exc).startswith("ffprobe not found"):
            raise
        return Verdict(ok=False, problems=[f"unreadable video: {exc}"])
    scan = _scan(path, info, find_ffmpeg(ffmpeg))
    problems = check_video(info, expect.min_s, expect.max_s)
    if info.codec != expect.codec and info.codec != "h264":
        problems.append(f"codec is {info.codec}, expected {expect.codec}")
    if (info.width, info.height) != (expect.width, expect.height):
        problems.append(
            f"size is {info.width}×{info.height}, expected {expect.width}×{expect.height}"
        )
    if expect.fps is not None and abs(info.fps - expect.fps) > 0.01:
        problems.append(f"frame rate is {info.fps:g}, expected {expect.fps:g}")
    if expect.frames is not None and scan.frames is not None and scan.frames != expect.frames:
        problems.append(f"{scan.frames} frames decoded, expected {expect.frames}")
    if info.size_bytes > expect.max_bytes:
        problems.append(f"file is {info.size_bytes:,} bytes, over the {expect.max_bytes:,} budget")
    for start, end in scan.black:
        if end - start > expect.max_black_s:
            problems.append(f"black from {start:.2f} s to {end:.2f} s ({end - start:.2f} s)")
    for start, end in scan.freezes:
        outside = _outside(start, end, expect.still_spans)
        if outside > expect.max_freeze_s:
            problems.append(
                f"frozen from {start:.2f} s to {end:.2f} s"
                f" ({outside:.2f} s outside the template's intended stills)"
            )
    if expect.audio and not scan.has_audio:
        problems.append("no audio track, but the template has an audio bed")
    if scan.has_audio:
        lo, hi = expect.loudness_lufs
        if scan.loudness is None or not lo <= scan.loudness <= hi:
            shown = "silent" if scan.loudness is None else f"{scan.loudness:.1f} LUFS"
            problems.append(f"audio loudness {shown}, expected {lo:g}…{hi:g} LUFS")
        if scan.true_peak is not None and scan.true_peak > expect.max_true_peak_db:
            problems.append(
                f"audio true peak {scan.true_peak:.1f} dBFS, over {expect.max_true_peak_db:g}"
            )
    measured = {
        "duration_s": info.duration_s,
        "size_bytes": info.size_bytes,
        "frames": scan.frames,
        "black": scan.black,
        "freezes": scan.freezes,
        "loudness_lufs": scan.loudness,
        "true_peak_db": scan.true_peak,
    }
    return Verdict(ok=not problems, problems=problems, measured=measured)


def _outside(start: float, end: float, spans: tuple[tuple[float, float], ...]) -> float:
    """Seconds of [start, end] not covered by the intended still spans (± tolerance)."""
    covered = 0.0
    for s0, s1 in spans:
        lo, hi = max(start, s0 - _TOLERANCE_S), min(end, s1 + _TOLERANCE_S)
        covered += max(0.0, hi - lo)
    return max(0.0, end - start - covered)


def _scan(path: Path, info: VideoInfo, ffmpeg: str) -> _Scan:
    """The one decode pass: black and frozen stretches, loudness, frame count."""
    has_audio = _has_audio(path, ffmpeg)
    video = "[0:v]blackdetect=d=0.3:pix_th=0.05,freezedetect=n=-80dB:d=0.3[v]"
    graph, maps = video, ["-map", "[v]"]
    if has_audio:
        graph += ";[0:a]ebur128=peak=true[a]"
        maps += ["-map", "[a]"]
    command = [
        ffmpeg, "-hide_banner", "-nostats", "-loglevel", "info", "-i", str(path),
        "-filter_complex", graph, *maps, "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    log = result.stderr.decode("utf-8", "replace")
    if result.returncode != 0:
        raise CreativeError(f"ffmpeg cannot decode {path}: {log[-800:].strip()}")
    frames = re.findall(r"^frame=(\d+)", result.stdout.decode(), re.MULTILINE)
    black = [(float(a), float(b)) for a, b, _ in _BLACK.findall(log)]
    freezes: list[tuple[float, float]] = []
    start: float | None = None
    for kind, value in _FREEZE.findall(log):
        if kind == "start":
            start = float(value)
        elif start is not None:
            freezes.append((start, float(value)))
            start = None
    if start is not None:  # frozen up to the end of the file
        freezes.append((start, info.duration_s))
    loudness, peak = parse_ebur128(log) if has_audio else (None, None)
    return _Scan(
        frames=int(frames[-1]) if frames else None,
        black=black,
        freezes=freezes,
        loudness=loudness,
        true_peak=peak,
        has_audio=has_audio,
    )


def _has_audio(path: Path, ffmpeg: str) -> bool:
    ffprobe = str(Path(ffmpeg).with_name("ffprobe"))
    command = [
        ffprobe, "-v", "error", "-select_streams", "a", "-show_entries", "stream=index",
        "-of", "csv=p=0", str(path),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except OSError:
        return False
    return bool(result.stdout.strip())
