"""A vendor's MP4 filed in the renders folder like a local render: video, poster, GIF, manifest.

The folder is keyed by `vendor_key(storyboard)`, not by the storyboard key itself: the
vendor's encoder makes different bytes than ours from the same storyboard, and a folder
name must say which bytes it holds. Like local renders, the folder is built under a
temporary name and renamed into place, so a folder with the final name is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from creative.errors import CreativeError
from creative.probe import probe_video
from creative.render import (
    GIF_FILE,
    GIF_MAX_BYTES,
    MANIFEST_FILE,
    POSTER_FILE,
    VIDEO_FILE,
    Render,
    render_dir,
)
from creative.storyboard import Storyboard
from creative.vendor.errors import VendorError

RENDERER = "vendor"
_FFMPEG_TIMEOUT_S = 120
# Tries for an email-safe GIF: (width factor, fps, colors); the last must fit the budget.
_GIF_TRIES = ((1.0, None, 128), (0.8, 8, 64), (0.6, 6, 32))


def vendor_key(storyboard: Storyboard) -> str:
    """The renders-folder key of the vendor's video of `storyboard`."""
    return hashlib.sha256(f"{RENDERER}:{storyboard.key()}".encode()).hexdigest()


def existing_result(out_dir: Path, key: str) -> Render | None:
    """The complete vendor render filed under `key`, if there is one."""
    folder = render_dir(out_dir, key)
    video, poster = folder / VIDEO_FILE, folder / POSTER_FILE
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest["key"] != key or video.stat().st_size == 0 or poster.stat().st_size == 0:
            return None
        gif = folder / GIF_FILE
        return Render(
            video=video,
            poster=poster,
            gif=gif if gif.is_file() else None,
            key=key,
            duration_s=manifest["duration_s"],
            width=manifest["width"],
            height=manifest["height"],
            reused=True,
            origin="vendor",
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def staging_folder(out_dir: Path, key: str) -> Path:
    """A fresh temporary folder beside the final one (same filesystem: rename is atomic)."""
    final = render_dir(out_dir, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def file_result(
    staging: Path,
    out_dir: Path,
    storyboard: Storyboard,
    *,
    vendor_render_id: str,
    ffmpeg: str,
) -> Render:
    """Check the downloaded `staging/video.mp4`, add a poster and manifest, move into place.

    Raises VendorError if the file is not a video of the storyboard's size.
    """
    key = vendor_key(storyboard)
    video = staging / VIDEO_FILE
    try:
        info = probe_video(video)
    except CreativeError as exc:
        raise VendorError(
            f"vendor render {vendor_render_id}: not a playable video ({exc})"
        ) from None
    fmt = storyboard.format
    if (info.width, info.height) != (fmt.width, fmt.height):
        raise VendorError(
            f"vendor render {vendor_render_id} is {info.width}x{info.height},"
            f" the storyboard asks for {fmt.width}x{fmt.height}"
        )
    _extract_poster(ffmpeg, video, staging / POSTER_FILE, min(storyboard.poster_s, info.duration_s))
    _extract_gif(ffmpeg, video, staging / GIF_FILE, storyboard)
    manifest = {
        "key": key,
        "storyboard_key": storyboard.key(),
        "renderer": RENDERER,
        "vendor_render_id": vendor_render_id,
        "template": storyboard.template,
        "template_version": storyboard.template_version,
        "duration_s": info.duration_s,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "codec": info.codec,
        "size_bytes": info.size_bytes,
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    final = render_dir(out_dir, key)
    try:
        staging.rename(final)
    except OSError:
        if existing_result(out_dir, key) is None:  # a broken folder: replace it
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
    rendered = existing_result(out_dir, key)
    if rendered is None:
        raise VendorError(f"vendor render {vendor_render_id}: the filed result is incomplete")
    return rendered.model_copy(update={"reused": False})


def _extract_poster(ffmpeg: str, video: Path, poster: Path, at_s: float) -> None:
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-ss", f"{at_s:.3f}", "-i", str(video),
        "-frames:v", "1", "-q:v", "3", "-y", str(poster),
    ]  # fmt: skip
    _ffmpeg(command, poster, "a poster")


def _extract_gif(ffmpeg: str, video: Path, gif: Path, storyboard: Storyboard) -> None:
    """The storyboard's GIF preview stretch, email-safe (at most GIF_MAX_BYTES)."""
    spec = storyboard.gif
    for scale, fps, colors in _GIF_TRIES:
        width = max(120, round(spec.width * scale) // 2 * 2)
        graph = (
            f"fps={fps or spec.fps},scale={width}:-2:flags=lanczos,split[a][b];"
            f"[a]palettegen=max_colors={colors}:stats_mode=diff[p];"
            "[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle"
        )
        command = [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
            "-ss", f"{spec.start:.3f}", "-t", f"{spec.duration:.3f}", "-i", str(video),
            "-filter_complex", graph, "-loop", "0", "-y", str(gif),
        ]  # fmt: skip
        _ffmpeg(command, gif, "a GIF preview")
        if gif.stat().st_size <= GIF_MAX_BYTES:
            return
    raise VendorError(f"the GIF preview stays over {GIF_MAX_BYTES} bytes even when shrunk")


def _ffmpeg(command: list[str], out: Path, what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise VendorError(f"extracting {what} from the vendor's video timed out") from None
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace")[-500:]
        raise VendorError(f"could not extract {what} from the vendor's video: {tail}")
