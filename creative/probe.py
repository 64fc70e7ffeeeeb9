"""What a video file really is (read in-process with PyAV), and whether it is fit to send.

Faststart is read from the MP4's top-level boxes directly: the `moov` index must come
before the `mdat` media data, or a browser has to download the whole file before playing.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
from pydantic import BaseModel, ConfigDict

from creative.errors import CreativeError

_RANGES = {1: "tv", 2: "pc"}  # AVColorRange: MPEG (limited), JPEG (full)


class VideoInfo(BaseModel):
    """The facts about a video file that delivery cares about."""

    model_config = ConfigDict(frozen=True)

    path: Path
    codec: str
    pix_fmt: str
    width: int
    height: int
    duration_s: float
    fps: float
    frames: int | None
    color_range: str | None
    faststart: bool
    size_bytes: int
    has_audio: bool = False


def probe_video(path: Path) -> VideoInfo:
    """The facts about the first video stream of `path` (no decoding).

    Raises CreativeError if the file cannot be read or has no video stream.
    """
    try:
        with av.open(str(path)) as container:
            return video_info(container, path)
    except (av.FFmpegError, OSError) as exc:
        raise CreativeError(f"cannot read {path}: {exc}") from None


def video_info(container: av.container.InputContainer, path: Path) -> VideoInfo:
    """The VideoInfo of an opened container (raises CreativeError without a video stream)."""
    if not container.streams.video:
        raise CreativeError(f"{path} has no video stream")
    stream = container.streams.video[0]
    context = stream.codec_context
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = (container.duration or 0) / av.time_base
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        path=path,
        codec=context.name or "",
        pix_fmt=context.format.name if context.format is not None else "",
        width=int(stream.width or 0),
        height=int(stream.height or 0),
        duration_s=duration,
        fps=float(rate) if rate else 0.0,
        frames=int(stream.frames) or None,
        color_range=_RANGES.get(int(context.color_range or 0)),
        faststart=_moov_before_mdat(path),
        size_bytes=path.stat().st_size,
        has_audio=bool(container.streams.audio),
    )


def check_video(
    info: VideoInfo, min_s: float = 6.0, max_s: float = 10.0, *, codec: str = "h264"
) -> list[str]:
    """Problems that make a video unfit for email landing pages; empty means OK.

    `codec` is the codec the video must have (the template's; h264 by default).
    """
    problems = []
    if info.codec != codec:
        problems.append(f"codec is {info.codec or 'unknown'}, expected {codec}")
    if info.pix_fmt != "yuv420p":
        problems.append(f"pixel format is {info.pix_fmt or 'unknown'}, expected yuv420p")
    if info.color_range == "pc":
        problems.append("full color range (pc); players expect limited range (tv)")
    if not min_s <= info.duration_s <= max_s:
        problems.append(f"duration {info.duration_s:.2f} s is outside {min_s:g}–{max_s:g} s")
    if info.width <= 0 or info.height <= 0 or info.width % 2 or info.height % 2:
        problems.append(f"size {info.width}×{info.height} must be positive and even")
    if info.fps <= 0:
        problems.append("frame rate unknown")
    if not info.faststart:
        problems.append("not faststart: the moov box comes after the media data")
    return problems


def _moov_before_mdat(path: Path) -> bool:
    """Walk the top-level MP4 boxes until `moov` or `mdat` shows up first.

    Anything that is not a well-formed box list (a raw stream, a damaged file) is False.
    """
    end = path.stat().st_size
    with path.open("rb") as f:
        try:
            while header := f.read(8):
                if len(header) < 8:
                    return False
                size, kind = struct.unpack(">I4s", header)
                if kind == b"moov":
                    return True
                if kind == b"mdat":
                    return False
                start = f.tell() - 8
                if size == 1:  # 64-bit size follows the type
                    size = struct.unpack(">Q", f.read(8))[0]
                    if size < 16:
                        return False
                elif size < 8:  # 0 means "to the end of the file": no moov after it
                    return False
                if start + size > end:
                    return False
                f.seek(start + size)
        except (struct.error, ValueError, OverflowError):
            return False
    return False
