"""Video QC: is a rendered file fit to send? One in-process pass over the file (PyAV).

The container tells codec, size, frame rate, frame count, duration and layout. What the
frames show (black or frozen stretches, `creative.content`) is measured by one decode
pass, or, for a local render, taken from the statistics the renderer measured on the
frames it encoded: then QC decodes only the keyframes (one at least every 2 s,
`Encode.keyframe_s`) and checks that each matches the rendered frame of the same index
and that the file has as many frames as were rendered, so a file that does not hold
those frames fails. Audio is decoded and metered (EBU R128 through ffmpeg's ebur128
filter) either way.

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
from typing import cast

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from creative.content import SAMPLE, ContentStats, FrameStats
from creative.errors import CreativeError
from creative.probe import VideoInfo, check_video, video_info
from creative.storyboard import Storyboard

_TOLERANCE_S = 0.15  # a few frames of slack around the intended still spans
_LUMA_TOLERANCE = 3.0  # mean luma levels between a rendered frame and its encoding


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
            codec=storyboard.encode.codec,
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
    content: ContentStats
    mismatches: list[str] = []  # the file is not the render its statistics describe
    loudness: float | None
    true_peak: float | None
    has_audio: bool


def qc_video(path: Path, expect: Expect, content: ContentStats | None = None) -> Verdict:
    """Check `path` against `expect` in one pass over the file; never raises for a bad file.

    With `content` (what the renderer measured on the frames it encoded) only keyframes
    are decoded, to check that the file holds those frames. An unreadable or undecodable
    file is a failed Verdict.
    """
    try:
        with av.open(str(path)) as container:
            info = video_info(container, path)
            scan = _scan(container, info, content)
    except (av.FFmpegError, OSError, CreativeError) as exc:
        return Verdict(ok=False, problems=[f"unreadable video: {exc}"])
    problems = check_video(info, expect.min_s, expect.max_s, codec=expect.codec)
    problems += scan.mismatches
    if (info.width, info.height) != (expect.width, expect.height):
        problems.append(
            f"size is {info.width}×{info.height}, expected {expect.width}×{expect.height}"
        )
    if expect.fps is not None and abs(info.fps - expect.fps) > 0.01:
        problems.append(f"frame rate is {info.fps:g}, expected {expect.fps:g}")
    frames = scan.content.frames
    if expect.frames is not None and frames != expect.frames:
        where = "decoded" if content is None else "in the file"
        problems.append(f"{frames} frames {where}, expected {expect.frames}")
    if info.size_bytes > expect.max_bytes:
        problems.append(f"file is {info.size_bytes:,} bytes, over the {expect.max_bytes:,} budget")
    for start, end in scan.content.black:
        if end - start > expect.max_black_s:
            problems.append(f"black from {start:.2f} s to {end:.2f} s ({end - start:.2f} s)")
    for start, end in scan.content.freezes:
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
        "frames": frames,
        "content": "decoded" if content is None else "rendered, keyframes checked",
        "black": list(scan.content.black),
        "freezes": list(scan.content.freezes),
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


def _scan(
    container: av.container.InputContainer, info: VideoInfo, content: ContentStats | None
) -> _Scan:
    """The one pass: frames (all, or only keyframes when `content` is known) and audio.

    Times are counted from the video stream's first timestamp, as the storyboard counts.
    """
    video = container.streams.video[0]
    video.thread_type = "SLICE"
    video.codec_context.thread_count = 1  # QC runs beside renders, one core each
    if content is not None:
        video.codec_context.skip_frame = "NONKEY"
    time_base = video.time_base  # set on every decodable stream
    start = (
        float(video.start_time * time_base)
        if video.start_time is not None and time_base is not None
        else 0.0
    )
    audio = container.streams.audio[0] if container.streams.audio else None
    meter = _Loudness(audio) if audio is not None else None
    stats = FrameStats(info.fps or 1.0)
    problems: list[str] = []
    keyframes = 0
    streams = (video, audio) if audio is not None else (video,)
    for packet in container.demux(*streams):
        for frame in packet.decode():
            if isinstance(frame, av.AudioFrame):
                assert meter is not None
                meter.push(frame)
                continue
            assert isinstance(frame, av.VideoFrame)  # demuxed from the video stream
            plane = frame.planes[0]
            luma = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
            luma = luma[:, : frame.width]
            time_s = float(frame.time) - start if frame.time is not None else None
            if content is None:
                stats.add_luma(luma, time_s, full_range=frame.color_range == 2)
            elif not problems:
                keyframes += 1
                problems += _spot_check(luma, time_s, info.fps, content)
    loudness, peak = meter.result() if meter is not None else (None, None)
    if content is None:
        content = stats.result()
    else:
        frames = info.frames or 0
        if frames != content.frames:
            problems.append(f"the file has {frames} frames, {content.frames} were rendered")
        if not keyframes:
            problems.append("no keyframe could be decoded")
        content = content.model_copy(update={"frames": frames})
    return _Scan(
        content=content,
        mismatches=problems,
        loudness=loudness,
        true_peak=peak,
        has_audio=audio is not None,
    )


def _spot_check(
    luma: np.ndarray, time_s: float | None, fps: float, content: ContentStats
) -> list[str]:
    """A problem if this decoded keyframe is not the rendered frame of the same index."""
    if time_s is None:
        return ["a keyframe in the file has no timestamp"]
    index = round(time_s * fps)
    decoded = float(luma[::SAMPLE, ::SAMPLE].mean())
    if not 0 <= index < len(content.luma):
        return [f"the file has a frame at {time_s:.2f} s that was never rendered"]
    rendered = content.luma[index]
    if abs(decoded - rendered) > _LUMA_TOLERANCE:
        return [
            f"frame {index} in the file is not the rendered frame"
            f" (mean luma {decoded:.1f}, rendered {rendered:.1f})"
        ]
    return []


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
            if "lavfi.r128.I" in out.metadata:  # the flushed tail may carry none
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
                # An audio-only graph: what comes out is audio.
                yield cast(av.AudioFrame, self._graph.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return
