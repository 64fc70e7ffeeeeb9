"""Video QC: is a rendered file fit to send? One in-process decode pass (PyAV).

The file is opened once: its container tells codec, size, frame rate, duration and
layout, and one demux pass decodes every video frame (and the audio, through ffmpeg's
ebur128 filter). Per frame, a 1-in-16 point sample of the luma plane is enough:

- black: at least 98 % of the samples at most 5 % above video black (ffmpeg's
  blackdetect rule, pix_th=0.05);
- frozen: the mean absolute luma difference to the first frame of a candidate freeze at
  most 0.064 levels (-72 dB of full scale). Point samples estimate that mean without
  bias. x264 keeps refining a repeated picture, so its frames differ by up to about 0.035
  (-77 dB); the slowest Ken Burns of our templates moves 0.045–0.13 a frame and more
  than 0.1 within two frames of the reference, so it never counts as frozen.

Intended stills: an end card held for a second is frozen by design. The storyboard knows
exactly when nothing perceptible changes (`Storyboard.still_spans`), so `Expect` carries
those spans and a freeze is a problem only where it reaches outside them. The template
check (`creative.check`) in turn allows holds over 0.5 s only at the very end, so a
template cannot hide a stalled middle behind this rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from creative.errors import CreativeError
from creative.probe import VideoInfo, check_video, video_info
from creative.storyboard import Storyboard

_TOLERANCE_S = 0.15  # a few frames of slack around the intended still spans
_SAMPLE = 4  # every 4th luma sample in each direction
_BLACK_RATIO = 0.98  # blackdetect's picture_black_ratio_th
_BLACK_PIX = 0.05  # blackdetect's pix_th, as a share of the luma range
_FREEZE_MAFD = 10 ** (-72 / 20) * 255  # in 8-bit luma levels


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


def qc_video(path: Path, expect: Expect) -> Verdict:
    """Check `path` against `expect` in one pass over the file; never raises for a bad file.

    An unreadable or undecodable file is a failed Verdict.
    """
    try:
        with av.open(str(path)) as container:
            info = video_info(container, path)
            scan = _scan(container, info)
    except (av.FFmpegError, OSError, CreativeError) as exc:
        return Verdict(ok=False, problems=[f"unreadable video: {exc}"])
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


def _scan(container: av.container.InputContainer, info: VideoInfo) -> _Scan:
    """The one decode pass: black and frozen stretches, loudness, frame count."""
    video = container.streams.video[0]
    video.thread_type = "SLICE"
    video.codec_context.thread_count = 1  # QC runs beside renders, one core each
    audio = container.streams.audio[0] if container.streams.audio else None
    meter = _Loudness(audio) if audio is not None else None
    black_level: float | None = None
    times: list[float] = []
    black: list[bool] = []
    moved: list[bool] = []
    reference: np.ndarray | None = None
    streams = (video, audio) if audio is not None else (video,)
    for packet in container.demux(*streams):
        for frame in packet.decode():
            if isinstance(frame, av.AudioFrame):
                assert meter is not None
                meter.push(frame)
                continue
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            sample = luma[::_SAMPLE, : frame.width : _SAMPLE].astype(np.int16)
            if black_level is None:
                lo, hi = (0, 255) if frame.color_range == 2 else (16, 235)
                black_level = lo + _BLACK_PIX * (hi - lo)
            times.append(float(frame.time) if frame.time is not None else len(times) / info.fps)
            black.append(float(np.mean(sample <= black_level)) >= _BLACK_RATIO)
            if reference is None or np.abs(sample - reference).mean() > _FREEZE_MAFD:
                reference = sample
                moved.append(True)
            else:
                moved.append(False)
    end = times[-1] + 1 / info.fps if times and info.fps else info.duration_s
    at = lambda i: times[i] if i < len(times) else end  # noqa: E731
    loudness, peak = meter.result() if meter is not None else (None, None)
    return _Scan(
        frames=len(times),
        black=[(at(a), at(b)) for a, b in _runs(black)],
        # A frozen run starts at the frame it repeats: the one before its first repeat.
        freezes=[(at(max(0, a - 1)), at(b)) for a, b in _runs([not m for m in moved])],
        loudness=loudness,
        true_peak=peak,
        has_audio=audio is not None,
    )


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(first, last + 1) frame indices of each run of True flags."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, flag in enumerate(flags):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


class _Loudness:
    """EBU R128 integrated loudness and true peak of an audio stream (ffmpeg's ebur128)."""

    def __init__(self, stream: av.audio.stream.AudioStream) -> None:
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(template=stream)
        meter = self._graph.add("ebur128", "peak=true:metadata=1")
        sink = self._graph.add("abuffersink")
        source.link_to(meter)
        meter.link_to(sink)
        self._graph.configure()
        self._last: dict[str, str] = {}

    def push(self, frame: av.AudioFrame | None) -> None:
        self._graph.push(frame)
        for out in self._drain():
            self._last = dict(out.metadata)

    def result(self) -> tuple[float | None, float | None]:
        """(integrated LUFS, true peak dBFS); None for silence."""
        self.push(None)
        loud = self._last.get("lavfi.r128.I")
        peak = self._last.get("lavfi.r128.true_peak")
        lufs = float(loud) if loud is not None and float(loud) > -70 else None
        peak_db = 20 * math.log10(float(peak)) if peak is not None and float(peak) > 0 else None
        return lufs, peak_db

    def _drain(self) -> Iterator[av.AudioFrame]:
        while True:
            try:
                yield self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
