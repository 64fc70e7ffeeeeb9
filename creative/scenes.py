"""Scene reuse: render what differs once per customer, everything else once per campaign.

A storyboard is cut at its scene boundaries (`Storyboard.cuts`: each scene's start and
end, in whole frames) into segments. A segment's key is the hash of only what changes its
pixels: the frames it covers, the layers visible in them (with their texts, images and
timings), the frame format and the encoder settings. A segment showing no first name has
the same key for every customer who sees the same product, so it is encoded once per
campaign (and reused by later campaigns); a segment that shows a name is encoded for
each name.

Each segment is its own H.264 stream (x264 starts every encode with an IDR frame and
keeps GOPs closed), encoded with the settings and time base of a whole render; a video is
its segments joined with ffmpeg's concat demuxer and stream copy, no frame re-encoded,
with the audio bed (encoded once, fitted to the video's length) laid over the result.
The GIF preview is a piece of its own, keyed by the segments it shows: when those are
shared, so is the GIF. The poster is the frame the storyboard names, kept by the segment
that holds it.

Pieces live beside the renders, content-addressed the same way
(`<renders>/<key[:2]>/<key>/`), each a folder built under a temporary name and renamed
into place with `piece.json` (its marker: what it holds, with sizes and SHA-256). With a
render store elsewhere (`REELCAST_RENDER_STORE`), pieces are published there too, so a
segment one worker made is fetched by every other instead of encoded again.

What the customer gets is checked like any render: the joined file passes the same QC,
and the statistics QC compares it with are exact. Each segment keeps its frames'
statistics and a digest of its first and last frame samples, and `FrameStats.joined`
puts them together into exactly what measuring the whole video's frames gives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from creative.content import FrameStats, PieceStats
from creative.encode import FrameEncoder, GifEncoder, audio_args
from creative.errors import RenderError
from creative.frames import FrameComposer
from creative.render import (
    GIF_FILE,
    POSTER_FILE,
    VIDEO_FILE,
    LocalRenderer,
    fingerprint,
    gif_range,
    pump,
    render_dir,
    sweep_stale,
    write_manifest,
)
from creative.store import PIECE_FILES, PIECE_MARKER, RenderStore
from creative.storyboard import RECIPE_VERSION, Storyboard, TextPart, Timing

SEGMENT_FILE = "segment.mp4"
AUDIO_FILE = "audio.m4a"
#: Bump when pieces made by this module change for the same inputs.
PIECE_VERSION = 1
_JOIN_TIMEOUT_S = 120
_CHECKED_MAX = 256  # pieces whose files were checked, remembered per process
_STRIPES = 64


class Segment(BaseModel):
    """Frames `first` … `stop` - 1 of a video, and the key of their encode."""

    model_config = ConfigDict(frozen=True)

    first: int
    stop: int
    key: str
    personal: bool  # shows a first name: the customer's own piece
    poster: bool  # holds the frame the poster is taken from

    @property
    def frames(self) -> int:
        """How many frames the segment has."""
        return self.stop - self.first


def plan(storyboard: Storyboard) -> list[Segment]:
    """The segments a render of `storyboard` is joined from, in order.

    Cuts fall on the first frame at or after each of the storyboard's scene boundaries.
    A layer belongs to a segment when it is shown in at least one of its frames (the
    composer draws a layer only between its start and end), so leaving the others out of
    the key cannot change a pixel.
    """
    fmt = storyboard.format
    count = fmt.frame_count
    # A layer is drawn from the first frame at or after its start until the last frame
    # before its end: a cut at the first frame at or after a boundary separates scenes.
    cuts = sorted(
        {0, count}
        | {c for c in (math.ceil(t * fmt.fps - 1e-6) for t in storyboard.cuts) if 0 < c < count}
    )
    poster_index = min(round(storyboard.poster_s * fmt.fps), count - 1)
    base = storyboard.model_dump(mode="json", include={"template_version", "format", "encode"})
    segments = []
    for first, stop in itertools.pairwise(cuts):
        shown = [p for p in storyboard.layers if _shown_in(p.timing, first, stop, fmt.fps)]
        poster = first <= poster_index < stop
        key = _digest(
            {
                **base,
                "piece": "segment",
                "version": PIECE_VERSION,
                "recipe": RECIPE_VERSION,
                "first": first,
                "stop": stop,
                "poster": poster_index if poster else None,
                "layers": [
                    p.model_dump(mode="json", exclude={"path", "font_path", "personal"})
                    for p in shown
                ],
            }
        )
        personal = any(isinstance(p, TextPart) and p.personal for p in shown)
        segments.append(Segment(first=first, stop=stop, key=key, personal=personal, poster=poster))
    return segments


def gif_key(storyboard: Storyboard, segments: list[Segment]) -> str:
    """The key of the GIF preview: its settings and the segments its frames come from."""
    frames = gif_range(storyboard)
    return _digest(
        {
            "piece": "gif",
            "version": PIECE_VERSION,
            "recipe": RECIPE_VERSION,
            "gif": storyboard.gif.model_dump(mode="json"),
            "format": storyboard.format.model_dump(mode="json"),
            "frames": [frames.start, frames.stop, frames.step],
            "segments": [s.key for s in _overlapping(segments, frames)],
        }
    )


def audio_key(storyboard: Storyboard) -> str | None:
    """The key of the audio track fitted to the video (None: the video is silent)."""
    audio = storyboard.audio
    if audio is None:
        return None
    return _digest(
        {
            "piece": "audio",
            "version": PIECE_VERSION,
            "audio": audio.model_dump(mode="json", exclude={"path"}),
            "duration_s": storyboard.format.frame_count / storyboard.format.fps,
        }
    )


class SceneRenderer(LocalRenderer):
    """The local renderer, with each video joined from segments made once and shared.

    Same keys, same files, same manifest as `LocalRenderer` (a render made either way is
    reused by the other); the manifest also lists the pieces (`pieces`: key, kind, and
    whether it shows a name) so erasing a customer's video can erase their pieces too.
    `store` shares pieces between workers when renders are kept in a store elsewhere.
    """

    def __init__(self, *args: Any, store: RenderStore | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self._setup()

    def _setup(self) -> None:
        self._checked: dict[str, tuple[int, dict[str, Any]]] = {}
        # Striped locks, one stripe per piece key: render threads of this process that
        # need the same shared segment at once wait for it instead of encoding it twice.
        self._making = [threading.Lock() for _ in range(_STRIPES)]

    def __getstate__(self) -> dict[str, Any]:
        """What goes to another process (a Dask worker): settings and store, no locks."""
        state = self.__dict__.copy()
        del state["_checked"], state["_making"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def _render_into(self, storyboard: Storyboard, key: str, folder: Path, out_dir: Path) -> None:
        fmt = storyboard.format
        segments = plan(storyboard)
        stats: list[PieceStats] = []
        poster: Path | None = None
        for segment in segments:
            make = functools.partial(self._make_segment, storyboard, segment)
            where, meta = self._piece(segment.key, out_dir, "segment", make)
            stats.append(PieceStats(**meta["stats"]))
            if segment.poster:
                poster = where / POSTER_FILE
        gif = gif_key(storyboard, segments)
        gif_folder, _ = self._piece(
            gif, out_dir, "gif", lambda tmp: self._make_gif(storyboard, tmp)
        )
        gain = self.audio_gain(storyboard)
        track = audio_key(storyboard)
        audio = None
        if track is not None:
            audio_folder, _ = self._piece(
                track, out_dir, "audio", lambda tmp: self._make_audio(storyboard, gain, tmp)
            )
            audio = audio_folder / AUDIO_FILE
        assert poster is not None, "the poster frame is in no segment"
        self._join([render_dir(out_dir, s.key) / SEGMENT_FILE for s in segments], audio, folder)
        shutil.copyfile(poster, folder / POSTER_FILE)
        shutil.copyfile(gif_folder / GIF_FILE, folder / GIF_FILE)
        self.check_gif(storyboard, folder)  # a GIF over budget is made smaller (rare)
        pieces = [{"key": s.key, "kind": "segment", "personal": s.personal} for s in segments]
        pieces.append(
            {
                "key": gif,
                "kind": "gif",
                "personal": any(s.personal for s in _overlapping(segments, gif_range(storyboard))),
            }
        )
        if track is not None:
            pieces.append({"key": track, "kind": "audio", "personal": False})
        content = FrameStats.joined(fmt.fps, stats).result()
        write_manifest(folder, storyboard, key, gain, content, joined=True, pieces=pieces)

    # -- pieces -------------------------------------------------------------------------

    def _piece(
        self,
        key: str,
        out_dir: Path,
        kind: str,
        make: Callable[[Path], dict[str, Any]],
    ) -> tuple[Path, dict[str, Any]]:
        """The piece `key` in `out_dir`: found there, fetched from the store, or made by
        `make(folder)` (which writes its files and returns what the marker records)."""
        with self._making[int(key[:8], 16) % _STRIPES]:
            return self._find_or_make(key, out_dir, kind, make)

    def _find_or_make(
        self,
        key: str,
        out_dir: Path,
        kind: str,
        make: Callable[[Path], dict[str, Any]],
    ) -> tuple[Path, dict[str, Any]]:
        final = render_dir(out_dir, key)
        meta = self._read(final, key)
        fetched = False
        if meta is None and self.store is not None:
            fetched = self.store.fetch(key, final, PIECE_FILES)
            meta = self._read(final, key) if fetched else None
        if meta is not None:
            return final, meta
        tmp = final.parent / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale(final.parent)
            tmp.mkdir()
            data = make(tmp)
            files = {n: fingerprint(tmp / n) for n in PIECE_FILES[:-1] if (tmp / n).is_file()}
            meta = {"key": key, "kind": kind, **data, "files": files}
            (tmp / PIECE_MARKER).write_text(json.dumps(meta), encoding="utf-8")
            try:
                tmp.rename(final)
            except OSError:  # made by another worker meanwhile, or a broken folder
                if self._read(final, key) is None:
                    shutil.rmtree(final, ignore_errors=True)
                    tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        meta = self._read(final, key)
        if meta is None:
            raise RenderError(f"piece {key} vanished right after it was written")
        if self.store is not None:
            self.store.publish(key, final, replace=fetched, files=PIECE_FILES)
        return final, meta

    def _read(self, folder: Path, key: str) -> dict[str, Any] | None:
        """The marker of a complete piece in `folder` whose files are as recorded."""
        marker = folder / PIECE_MARKER
        try:
            stamp = marker.stat().st_mtime_ns
            known = self._checked.get(key)
            if known is not None and known[0] == stamp:
                return known[1]
            meta: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
            if meta.get("key") != key or any(
                fingerprint(folder / name) != value for name, value in meta["files"].items()
            ):
                return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self._checked[key] = (stamp, meta)
        if len(self._checked) > _CHECKED_MAX:  # bounded: memory stays flat on long runs
            self._checked.pop(next(iter(self._checked)))
        return meta

    def _make_segment(
        self, storyboard: Storyboard, segment: Segment, folder: Path
    ) -> dict[str, Any]:
        fmt = storyboard.format
        composer = _composer(storyboard, segment.first, segment.stop)
        stats = FrameStats(fmt.fps, freeze_threshold=0.0)  # exact frames
        with FrameEncoder(
            folder / SEGMENT_FILE,
            fmt.width,
            fmt.height,
            fmt.fps,
            storyboard.encode,
            ffmpeg=self.ffmpeg,
            threads=self.threads,
        ) as encoder:
            poster = pump(
                composer.frames(segment.first, segment.stop),
                encoder,
                stats,
                poster_index=composer.poster_index if segment.poster else None,
                first=segment.first,
            )
        if poster is not None:
            self.save_poster(poster, folder / POSTER_FILE)
        return {
            "first": segment.first,
            "stop": segment.stop,
            "personal": segment.personal,
            "stats": dataclasses.asdict(stats.piece()),
        }

    def _make_gif(self, storyboard: Storyboard, folder: Path) -> dict[str, Any]:
        fmt = storyboard.format
        wanted = gif_range(storyboard)
        composer = _composer(storyboard, wanted.start, wanted.stop)
        with GifEncoder(
            folder / GIF_FILE, fmt.width, fmt.height, fmt.fps / wanted.step,
            storyboard.gif.width, ffmpeg=self.ffmpeg,
        ) as gif:  # fmt: skip
            for index, frame in enumerate(composer.frames(wanted.start, wanted.stop), wanted.start):
                if index in wanted:
                    gif.write(frame)
        return {}

    def _make_audio(self, storyboard: Storyboard, gain: float, folder: Path) -> dict[str, Any]:
        audio = storyboard.audio
        assert audio is not None
        fmt = storyboard.format
        command = [
            self.ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error",
            "-i", str(audio.path), "-vn",
            *audio_args(audio, fmt.frame_count / fmt.fps, gain),
            "-f", "mp4", "-y", str(folder / AUDIO_FILE),
        ]  # fmt: skip
        _run(command, f"ffmpeg could not fit the audio bed {audio.path.name} to the video")
        return {}

    def _join(self, segments: list[Path], audio: Path | None, folder: Path) -> None:
        """Join the segment files (stream copy) and lay `audio` over them: `video.mp4`."""
        listing = folder / ".segments.txt"
        listing.write_text(
            "".join(f"file '{_concat_quote(path.resolve())}'\n" for path in segments),
            encoding="utf-8",
        )
        sound = ["-i", str(audio), "-map", "1:a:0"] if audio is not None else ["-an"]
        command = [
            self.ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error",
            "-f", "concat", "-safe", "0", "-i", str(listing),
            *sound, "-map", "0:v:0", "-c", "copy",
            "-movflags", "+faststart", "-f", "mp4", "-y", str(folder / VIDEO_FILE),
        ]  # fmt: skip
        try:
            _run(command, "ffmpeg could not join the video's segments")
        finally:
            with contextlib.suppress(OSError):
                listing.unlink()


def _composer(storyboard: Storyboard, first: int, stop: int) -> FrameComposer:
    """A composer of frames `first` … `stop` - 1 that prepares only the layers shown in
    them (texts fitted, images loaded): the others would draw nothing there."""
    fps = storyboard.format.fps
    shown = tuple(p for p in storyboard.layers if _shown_in(p.timing, first, stop, fps))
    return FrameComposer(storyboard.model_copy(update={"layers": shown}))


def _shown_in(timing: Timing, first: int, stop: int, fps: int) -> bool:
    """Whether a layer with `timing` is drawn in any of the frames `first` … `stop` - 1."""
    return any(timing.start <= i / fps < timing.end for i in range(first, stop))


def _overlapping(segments: list[Segment], frames: range) -> list[Segment]:
    return [s for s in segments if any(s.first <= i < s.stop for i in frames)]


def _digest(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _concat_quote(path: Path) -> str:
    """A path quoted for ffmpeg's concat list (single quotes; a quote as '\\'')."""
    return str(path).replace("'", "'\\''")


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, timeout=_JOIN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{what}: ffmpeg did not finish in {_JOIN_TIMEOUT_S} s") from None
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-1000:].strip()
        raise RenderError(f"{what}: {tail or f'exit status {result.returncode}'}")
