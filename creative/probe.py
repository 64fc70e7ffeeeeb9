"""What a video file really is (ffprobe), and whether it is fit to send.

Faststart is read from the MP4's top-level boxes directly: the `moov` index must come
before the `mdat` media data, or a browser has to download the whole file before playing.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from creative.errors import CreativeError


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


def probe_video(path: Path, ffprobe: str | None = None) -> VideoInfo:
    """Probe the first video stream of `path` with ffprobe.

    Raises CreativeError if ffprobe is missing or cannot read the file.
    """
    binary = shutil.which(ffprobe or "ffprobe")
    if binary is None:
        raise CreativeError(
            "ffprobe not found: install ffmpeg, which ships it (e.g. apt-get install -y ffmpeg)"
        )
    command = [
        binary, "-v", "error", "-print_format", "json",
        "-show_format", "-show_streams", "-select_streams", "v:0", str(path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-1000:].strip()
        raise CreativeError(f"ffprobe cannot read {path}: {tail}")
    data = json.loads(result.stdout)
    streams = data.get("streams") or []
    if not streams:
        raise CreativeError(f"{path} has no video stream")
    stream, fmt = streams[0], data.get("format", {})
    duration = stream.get("duration") or fmt.get("duration") or 0
    frames = stream.get("nb_frames")
    return VideoInfo(
        path=path,
        codec=stream.get("codec_name", ""),
        pix_fmt=stream.get("pix_fmt", ""),
        width=int(stream.get("width", 0)),
        height=int(stream.get("height", 0)),
        duration_s=float(duration),
        fps=_rate(stream.get("avg_frame_rate") or stream.get("r_frame_rate") or "0/1"),
        frames=int(frames) if frames and str(frames).isdigit() else None,
        color_range=stream.get("color_range"),
        faststart=_moov_before_mdat(path),
        size_bytes=path.stat().st_size,
    )


def check_video(info: VideoInfo, min_s: float = 6.0, max_s: float = 10.0) -> list[str]:
    """Problems that make a video unfit for email landing pages; empty means OK."""
    problems = []
    if info.codec != "h264":
        problems.append(f"codec is {info.codec or 'unknown'}, expected h264")
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


def _rate(value: str) -> float:
    try:
        return float(Fraction(value))
    except (ValueError, ZeroDivisionError):
        return 0.0


def _moov_before_mdat(path: Path) -> bool:
    """Walk the top-level MP4 boxes until `moov` or `mdat` shows up first."""
    with path.open("rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                return False
            size, kind = struct.unpack(">I4s", header)
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:  # 64-bit size follows the type
                size = struct.unpack(">Q", f.read(8))[0]
                f.seek(size - 16, 1)
            elif size < 8:  # 0 means "to the end of the file": no moov after it
                return False
            else:
                f.seek(size - 8, 1)
    return False
