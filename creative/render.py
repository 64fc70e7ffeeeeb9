"""Rendering storyboards to files: the Renderer interface and the local ffmpeg renderer.

Outputs are content-addressed: `out_dir/<key[:2]>/<key>/` holds `video.mp4`, `poster.jpg`,
`preview.gif` (an email-safe looping preview, ≤ 1 MB) and `render.json`. The folder is
built under a temporary name and renamed into place in one step, so a folder with the
final name is always complete; a killed render leaves only a `.tmp-*` folder that nothing
reads (and that a later render of the shard sweeps away).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from creative.audio import normalization_gain_db
from creative.content import ContentStats, FrameStats
from creative.encode import FrameEncoder, FramePipe, GifEncoder, find_ffmpeg
from creative.errors import RenderError
from creative.frames import FrameComposer
from creative.storyboard import Encode, Storyboard
from retail.types import Customer

VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
GIF_FILE = "preview.gif"
MANIFEST_FILE = "render.json"
GIF_MAX_BYTES = 1_000_000
_STALE_TMP_S = 3600
_BUFFERS = 3  # frames composed ahead of the encoder


class Render(BaseModel):
    """Where a rendered video and its poster are, and what they are."""

    model_config = ConfigDict(frozen=True)

    video: Path
    poster: Path
    gif: Path | None = None
    key: str
    duration_s: float
    width: int
    height: int
    reused: bool
    content: ContentStats | None = Field(
        default=None, description="what the encoded frames show, measured while rendering"
    )
    origin: Literal["local", "vendor"] = Field(
        default="local", description="where the video was made: on this machine or at the vendor"
    )


@dataclass(frozen=True)
class CampaignCosts:
    """What one campaign paid the vendor, and how many videos it rendered locally instead."""

    campaign: str
    renders: int
    seconds: float
    amount: Decimal
    local_fallbacks: int


@runtime_checkable
class Renderer(Protocol):
    """Turns a storyboard into a video file plus a poster image.

    Everything a caller needs is here, so no caller asks which renderer it holds (local,
    vendor, vendor with a local fallback): like an httpx transport, one interface.
    """

    def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        subject: str | None = None,
        customer: Customer | None = None,
    ) -> Render:
        """Render `storyboard` under `out_dir` (or reuse an earlier identical render).

        `subject` is the customer's pseudonymous id, the only name an outside renderer may
        see; `customer` lets it check that its payload carries none of their personal
        data. A renderer on this machine needs neither.
        """
        ...

    def costs(self, campaign: str) -> CampaignCosts | None:
        """What `campaign` paid for renders; None when this renderer charges nothing."""
        ...

    def rendered_locally(self, campaign: str) -> dict[str, str]:
        """Storyboard key → why a video of `campaign` meant for the vendor was made here."""
        ...

    def close(self) -> None:
        """Release what the renderer holds (event loops, ledgers); it is not used after."""
        ...


def render_dir(out_dir: Path, key: str) -> Path:
    """The folder that holds the render with this key."""
    return out_dir / key[:2] / key


class LocalRenderer:
    """Renders on this machine: numpy-composited frames piped into ffmpeg's libx264.

    `crf` and `preset` are written into the storyboard before it is keyed, so renders
    with different settings never share a folder (at the defaults the key is
    `storyboard.key()`). `threads` is x264's thread count: 1 suits one render per core.
    """

    def __init__(
        self,
        ffmpeg: str | None = None,
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 1,
        poster_quality: int = 85,
    ) -> None:
        self.ffmpeg = find_ffmpeg(ffmpeg)
        self.encode = Encode(crf=crf, preset=preset)
        self.threads = threads
        self.poster_quality = poster_quality

    def output_keys(self, storyboard: Storyboard) -> tuple[str, ...]:
        """The key this renderer files `storyboard` under (its encode settings count)."""
        return (self.key(storyboard),)

    def key(self, storyboard: Storyboard) -> str:
        """The key of this renderer's render of `storyboard`."""
        return storyboard.with_encode(self.encode).key()

    def compose(self, storyboard: Storyboard) -> tuple[Iterator[np.ndarray], int]:
        """The frames of `storyboard` in order, and the index of the poster frame."""
        composer = FrameComposer(storyboard)
        return composer.frames(), composer.poster_index

    def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        subject: str | None = None,
        customer: Customer | None = None,
    ) -> Render:
        """Render `storyboard`, or return the existing render of the same key.

        `subject` and `customer` are not needed: nothing leaves this machine.
        """
        key = self.key(storyboard)
        storyboard = storyboard.with_encode(self.encode)
        final = render_dir(out_dir, key)
        existing = _existing(final, key)
        if existing is not None:
            return existing
        tmp = final.parent / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale(final.parent)
            tmp.mkdir()
            self._render_into(storyboard, key, tmp, out_dir)
            try:
                tmp.rename(final)
            except OSError:
                # Someone else finished the same key first (or left a broken folder).
                existing = _existing(final, key)
                if existing is None:
                    shutil.rmtree(final, ignore_errors=True)
                    tmp.rename(final)
        except OSError as exc:
            failure = _write_failure(exc, out_dir)
            if failure is None:
                raise
            raise failure from None
        except RenderError as exc:
            if "No space left on device" not in str(exc):
                raise
            raise _disk_full(out_dir) from None  # ffmpeg's own write failed
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rendered = _existing(final, key)
        assert rendered is not None, "a render folder vanished right after it was written"
        return rendered.model_copy(update={"reused": False})

    def costs(self, campaign: str) -> CampaignCosts | None:
        """None: rendering on this machine is not charged per video."""
        return None

    def rendered_locally(self, campaign: str) -> dict[str, str]:
        """Nothing: every video is rendered here by design, none instead of the vendor."""
        return {}

    def close(self) -> None:
        """Nothing to release: each render's ffmpeg ends with the render."""

    def _render_into(self, storyboard: Storyboard, key: str, folder: Path, out_dir: Path) -> None:
        """Write the render's files into `folder` (a temporary folder, renamed by the
        caller); `out_dir` is the renders folder (where a subclass finds its pieces)."""
        fmt = storyboard.format
        gain = self.audio_gain(storyboard)
        gif_frames = gif_range(storyboard)
        with (
            FrameEncoder(
                folder / VIDEO_FILE,
                fmt.width,
                fmt.height,
                fmt.fps,
                storyboard.encode,
                ffmpeg=self.ffmpeg,
                threads=self.threads,
                audio=storyboard.audio,
                duration_s=fmt.frame_count / fmt.fps,
                audio_gain_db=gain,
            ) as encoder,
            GifEncoder(
                folder / GIF_FILE, fmt.width, fmt.height, fmt.fps / gif_frames.step,
                storyboard.gif.width, ffmpeg=self.ffmpeg,
            ) as gif_encoder,
        ):  # fmt: skip
            # Built while the two ffmpeg processes start up (tens of ms each).
            frames, poster_index = self.compose(storyboard)
            stats = FrameStats(fmt.fps, freeze_threshold=0.0)  # exact frames
            poster = pump(frames, encoder, stats, gif_encoder, gif_frames, poster_index)
        assert poster is not None
        self.save_poster(poster, folder / POSTER_FILE)
        self.check_gif(storyboard, folder)
        write_manifest(folder, storyboard, key, gain, stats.result())

    def audio_gain(self, storyboard: Storyboard) -> float:
        """The gain (dB) that brings the storyboard's audio bed to its loudness (0: none)."""
        if storyboard.audio is None:
            return 0.0
        return normalization_gain_db(storyboard.audio.path, storyboard.audio.loudness, self.ffmpeg)

    def save_poster(self, frame: np.ndarray, path: Path) -> None:
        """Write the poster image of a render."""
        Image.fromarray(frame).save(
            path, quality=self.poster_quality, optimize=True, progressive=True
        )

    def check_gif(self, storyboard: Storyboard, folder: Path) -> None:
        """Make the folder's GIF smaller when it came out over the email budget (rare)."""
        if (folder / GIF_FILE).stat().st_size > GIF_MAX_BYTES:
            start = gif_range(storyboard).start / storyboard.format.fps
            self._smaller_gif(folder, start, storyboard.gif.duration, storyboard.gif.width)

    def _smaller_gif(self, folder: Path, start: float, duration: float, width: int) -> None:
        """Redo a GIF that came out over budget: narrower, slower, fewer colors (rare)."""
        out = folder / GIF_FILE
        for scale, fps, colors in ((0.8, 8, 64), (0.6, 6, 32)):
            w = max(120, round(width * scale) // 2 * 2)
            graph = (
                f"fps={fps},scale={w}:-2:flags=lanczos,split[a][b];"
                f"[a]palettegen=max_colors={colors}:stats_mode=diff[p];"
                "[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle"
            )
            command = [
                self.ffmpeg, "-hide_banner", "-loglevel", "error", "-ss", f"{start:.3f}",
                "-t", f"{duration:.3f}", "-i", str(folder / VIDEO_FILE),
                "-filter_complex", graph, "-loop", "0", "-y", str(out),
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, timeout=120, check=False)
            if result.returncode != 0:
                tail = result.stderr.decode("utf-8", "replace")[-1000:].strip()
                raise RenderError(f"ffmpeg could not shrink {GIF_FILE}: {tail}")
            if out.stat().st_size <= GIF_MAX_BYTES:
                return
        raise RenderError(f"{GIF_FILE} stays over {GIF_MAX_BYTES} bytes even when shrunk")


def gif_range(storyboard: Storyboard) -> range:
    """The indices of the video frames that become the GIF preview's frames."""
    fmt, gif = storyboard.format, storyboard.gif
    step = max(1, round(fmt.fps / gif.fps))
    first = min(round(gif.start * fmt.fps), fmt.frame_count - 1)
    last = min(fmt.frame_count, first + round(gif.duration * fmt.fps))
    return range(first, last, step)


def write_manifest(
    folder: Path,
    storyboard: Storyboard,
    key: str,
    gain: float,
    content: ContentStats,
    **extra: object,
) -> None:
    """Write `render.json` (last: its presence marks the folder complete)."""
    fmt = storyboard.format
    manifest = {
        "key": key,
        "template": storyboard.template,
        "template_version": storyboard.template_version,
        "duration_s": fmt.frame_count / fmt.fps,
        "width": fmt.width,
        "height": fmt.height,
        "fps": fmt.fps,
        "encode": storyboard.encode.model_dump(),
        "audio_gain_db": gain if storyboard.audio is not None else None,
        "still_spans": storyboard.still_spans(),
        "content": content.model_dump(mode="json"),
        # What a reuse checks the files against: a file cut short or overwritten after
        # this run (a full disk, a bad copy, a person) is rendered again, not mailed.
        "files": {name: fingerprint(folder / name) for name in _FILES},
        **extra,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def pump(
    frames: Iterator[np.ndarray],
    encoder: FramePipe,
    stats: FrameStats,
    gif: GifEncoder | None = None,
    gif_frames: range = range(0),
    poster_index: int | None = None,
    first: int = 0,
) -> np.ndarray | None:
    """Take `frames` (video frames `first`, `first` + 1, …) here while a writer thread
    feeds them to ffmpeg and measures them into `stats` (for QC); returns a copy of the
    frame `poster_index` when it is among them.

    Writing to a pipe releases the GIL, so composing frame n + 1 overlaps with ffmpeg
    reading frame n; a few preallocated buffers cap the memory and avoid allocations.
    """
    free: queue.Queue[np.ndarray] = queue.Queue()
    work: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue()
    failure: list[BaseException] = []

    def write() -> None:
        while (item := work.get()) is not None:
            index, frame = item
            if not failure:
                try:
                    encoder.write(frame)
                    if gif is not None and index in gif_frames:
                        gif.write(frame)
                    stats.add_rgb(frame)
                except BaseException as exc:  # handed to the composing thread
                    failure.append(exc)
            free.put(frame)

    writer = threading.Thread(target=write, name="ffmpeg-writer", daemon=True)
    writer.start()
    poster = None
    try:
        for index, frame in enumerate(frames, start=first):
            if failure:
                break
            if index < first + _BUFFERS:
                free.put(np.empty_like(frame))
            buffer = free.get()
            np.copyto(buffer, frame)
            work.put((index, buffer))
            if index == poster_index:
                poster = frame.copy()
    finally:
        work.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return poster


def _existing(folder: Path, key: str) -> Render | None:
    """The render in `folder` if it is complete and is the one for `key`."""
    video, poster, gif = folder / VIDEO_FILE, folder / POSTER_FILE, folder / GIF_FILE
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest["key"] != key or any(f.stat().st_size == 0 for f in (video, poster, gif)):
            return None
        recorded = manifest.get("files")  # absent in renders made before it was recorded
        if recorded is not None and any(
            recorded[name] != fingerprint(folder / name) for name in _FILES
        ):
            return None
        content = manifest.get("content")
        return Render(
            video=video,
            poster=poster,
            gif=gif,
            key=key,
            duration_s=manifest["duration_s"],
            width=manifest["width"],
            height=manifest["height"],
            reused=True,
            content=None if content is None else ContentStats.model_validate(content),
        )
    except (OSError, ValueError, KeyError, TypeError):  # pydantic's errors are ValueErrors
        return None


_FILES = (VIDEO_FILE, POSTER_FILE, GIF_FILE)


def fingerprint(path: Path) -> dict[str, object]:
    """Size and SHA-256 of one output file (a few ms for a video of a few MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _disk_full(folder: Path) -> RenderError:
    return RenderError(
        f"disk full (no space left on device) while writing a video in {folder}: "
        "free space there (or point --workspace elsewhere) and run again"
    )


def _write_failure(exc: OSError, folder: Path) -> RenderError | None:
    """A RenderError naming why writing in `folder` failed, when the disk or its
    permissions are the cause (None for anything else: not ours to reword)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _disk_full(folder)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RenderError(f"cannot write a video in {folder}: {exc.strerror}")
    return None


def sweep_stale(shard: Path) -> None:
    """Remove temporary folders of renders that were killed long ago."""
    now = time.time()
    for entry in shard.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(entry, ignore_errors=True)
