"""Rendering storyboards to files: the Renderer interface and the local ffmpeg renderer.

Outputs are content-addressed: `out_dir/<key[:2]>/<key>/` holds `video.mp4`, `poster.jpg`
and `render.json`. The folder is built under a temporary name and renamed into place in
one step, so a folder with the final name is always complete; a killed render leaves only
a `.tmp-*` folder that nothing reads (and that a later render of the shard sweeps away).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ConfigDict

from creative.encode import FrameEncoder, find_ffmpeg
from creative.frames import FrameComposer
from creative.storyboard import Encode, Storyboard

VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
MANIFEST_FILE = "render.json"
_STALE_TMP_S = 3600


class Render(BaseModel):
    """Where a rendered video and its poster are, and what they are."""

    model_config = ConfigDict(frozen=True)

    video: Path
    poster: Path
    key: str
    duration_s: float
    width: int
    height: int
    reused: bool


@runtime_checkable
class Renderer(Protocol):
    """Turns a storyboard into a video file plus a poster image."""

    def render(self, storyboard: Storyboard, out_dir: Path) -> Render:
        """Render `storyboard` under `out_dir` (or reuse an earlier identical render)."""
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

    def render(self, storyboard: Storyboard, out_dir: Path) -> Render:
        """Render `storyboard`, or return the existing render of the same key."""
        storyboard = storyboard.with_encode(self.encode)
        key = storyboard.key()
        final = render_dir(out_dir, key)
        existing = _existing(final, key)
        if existing is not None:
            return existing
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(final.parent)
        tmp = final.parent / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            self._render_into(storyboard, key, tmp)
            try:
                tmp.rename(final)
            except OSError:
                # Someone else finished the same key first (or left a broken folder).
                existing = _existing(final, key)
                if existing is None:
                    shutil.rmtree(final, ignore_errors=True)
                    tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rendered = _existing(final, key)
        assert rendered is not None, "a render folder vanished right after it was written"
        return rendered.model_copy(update={"reused": False})

    def _render_into(self, storyboard: Storyboard, key: str, folder: Path) -> None:
        fmt = storyboard.format
        composer = FrameComposer(storyboard)
        poster = None
        with FrameEncoder(
            folder / VIDEO_FILE,
            fmt.width,
            fmt.height,
            fmt.fps,
            storyboard.encode,
            ffmpeg=self.ffmpeg,
            threads=self.threads,
        ) as encoder:
            for index, frame in enumerate(composer.frames()):
                encoder.write(frame)
                if index == composer.poster_index:
                    poster = frame.copy()
        assert poster is not None
        Image.fromarray(poster).save(
            folder / POSTER_FILE, quality=self.poster_quality, optimize=True, progressive=True
        )
        manifest = {
            "key": key,
            "template": storyboard.template,
            "template_version": storyboard.template_version,
            "duration_s": composer.frame_count / fmt.fps,
            "width": fmt.width,
            "height": fmt.height,
            "fps": fmt.fps,
            "encode": storyboard.encode.model_dump(),
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _existing(folder: Path, key: str) -> Render | None:
    """The render in `folder` if it is complete and is the one for `key`."""
    video, poster = folder / VIDEO_FILE, folder / POSTER_FILE
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest["key"] != key or video.stat().st_size == 0 or poster.stat().st_size == 0:
            return None
        return Render(
            video=video,
            poster=poster,
            key=key,
            duration_s=manifest["duration_s"],
            width=manifest["width"],
            height=manifest["height"],
            reused=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sweep_stale(shard: Path) -> None:
    """Remove temporary folders of renders that were killed long ago."""
    now = time.time()
    for entry in shard.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(entry, ignore_errors=True)
