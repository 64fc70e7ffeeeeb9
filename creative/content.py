"""What a video shows, frame by frame: black and frozen stretches, and each frame's mean luma.

The same statistics come from two places. The local renderer measures the frames it
hands to the encoder (`FrameStats.add_rgb`, a fraction of a millisecond a frame on the
writer thread) and keeps them in the render's manifest; QC then only spot-checks that the
file holds those frames. A file from anywhere else (a video vendor) is decoded in full
and measured from its luma plane (`FrameStats.add_luma`).

Per frame, a 1-in-16 point sample of the luma plane (limited range, BT.709) is enough:

- black: at least 98 % of the samples at most 5 % above video black (ffmpeg's
  blackdetect rule, pix_th=0.05);
- frozen: the sample does not move against the first frame of a candidate freeze. On the
  renderer's own frames that is exact: any change at all is movement (a slow Ken Burns
  changes the sample by 0.01–0.04 levels a frame). A decoded file carries encoder noise:
  x264 keeps refining a repeated picture, so its frames differ by up to about 0.035
  levels (-77 dB of full scale), and a freeze there is a mean difference of at most
  0.064 levels (-72 dB). Measured against the first frame of the candidate, a slow zoom
  passes that within a few frames (the hero's: runs of 2–5 frames, far below the 0.5 s
  a problem needs); an even slower zoom in a vendor's file could read as frozen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

SAMPLE = 4  # every 4th luma sample in each direction
_BLACK_RATIO = 0.98  # blackdetect's picture_black_ratio_th
_BLACK_PIX = 0.05  # blackdetect's pix_th, as a share of the luma range
DECODED_FREEZE = 10 ** (-72 / 20) * 255  # in 8-bit luma levels, for decoded files
# BT.709 luma weights scaled to limited range (16…235), as the encoder converts.
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32) * (219 / 255)

Span = tuple[float, float]


class ContentStats(BaseModel):
    """Black and frozen stretches (seconds) and the mean luma of every frame's sample."""

    model_config = ConfigDict(frozen=True)

    frames: int
    black: tuple[Span, ...]
    freezes: tuple[Span, ...]
    luma: tuple[float, ...]


@dataclass(frozen=True)
class PieceStats:
    """The per-frame statistics of a stretch of exact frames (one piece of a video cut at
    scene boundaries), with digests of its first and last frames' samples: enough to
    join pieces into the exact statistics of the whole (`FrameStats.joined`)."""

    luma: tuple[float, ...]
    black: tuple[bool, ...]
    moved: tuple[bool, ...]  # the first entry is against the piece before: see `joined`
    head: str
    tail: str


class FrameStats:
    """Accumulates ContentStats over frames given in order at `fps`."""

    def __init__(self, fps: float, freeze_threshold: float = DECODED_FREEZE) -> None:
        """`freeze_threshold`: the mean luma difference that still counts as the same
        picture (0 for exact frames, `DECODED_FREEZE` for decoded ones)."""
        self.fps = fps
        self.freeze_threshold = freeze_threshold
        self._times: list[float] = []
        self._black: list[bool] = []
        self._moved: list[bool] = []
        self._luma: list[float] = []
        self._reference: np.ndarray | None = None
        self._black_level = 16 + _BLACK_PIX * 219
        self._first: np.ndarray | None = None  # the first and the latest sample
        self._last: np.ndarray | None = None

    def add_rgb(self, frame: np.ndarray) -> None:
        """Add an H×W×3 uint8 RGB frame (as the encoder will see it)."""
        sample = frame[::SAMPLE, ::SAMPLE].astype(np.float32) @ _LUMA + 16
        self._add(np.rint(sample).astype(np.int16), len(self._times) / self.fps)

    def add_luma(self, plane: np.ndarray, time_s: float | None, full_range: bool) -> None:
        """Add a decoded frame's H×W uint8 luma plane shown at `time_s`."""
        if full_range:
            self._black_level = _BLACK_PIX * 255
        time_s = len(self._times) / self.fps if time_s is None else time_s
        self._add(plane[::SAMPLE, ::SAMPLE].astype(np.int16), time_s)

    def _add(self, sample: np.ndarray, time_s: float) -> None:
        self._times.append(time_s)
        self._luma.append(round(float(sample.mean()), 2))
        self._black.append(float(np.mean(sample <= self._black_level)) >= _BLACK_RATIO)
        reference = self._reference
        difference = np.inf if reference is None else float(np.abs(sample - reference).mean())
        moved = difference > self.freeze_threshold
        if moved:
            self._reference = sample
        self._moved.append(moved)
        if self._first is None:
            self._first = sample
        self._last = sample

    def piece(self) -> PieceStats:
        """The frames so far as one piece of a longer video (exact frames only)."""
        if self.freeze_threshold != 0 or self._first is None or self._last is None:
            raise ValueError("pieces are made of exact frames, at least one")
        return PieceStats(
            luma=tuple(self._luma),
            black=tuple(self._black),
            moved=tuple(self._moved),
            head=hashlib.sha256(self._first.tobytes()).hexdigest(),
            tail=hashlib.sha256(self._last.tobytes()).hexdigest(),
        )

    @classmethod
    def joined(cls, fps: float, pieces: Sequence[PieceStats]) -> FrameStats:
        """The statistics of the pieces' frames played one after the other: exactly what
        measuring the whole video's frames would give. With exact frames a frame "moved"
        when its sample differs from the frame before, so only a piece's first frame needs
        its neighbour: the piece before's last sample, compared by digest."""
        stats = cls(fps, freeze_threshold=0.0)
        previous: str | None = None
        for piece in pieces:
            stats._luma += piece.luma
            stats._black += piece.black
            stats._moved.append(previous is None or piece.head != previous)
            stats._moved += piece.moved[1:]
            previous = piece.tail
        stats._times = [i / fps for i in range(len(stats._luma))]
        return stats

    def result(self, end_s: float | None = None) -> ContentStats:
        """The statistics so far; a stretch still running ends at `end_s` (default: after
        the last frame)."""
        times = self._times
        end = end_s if end_s is not None else (times[-1] + 1 / self.fps if times else 0.0)

        def at(i: int) -> float:
            return times[i] if i < len(times) else end

        return ContentStats(
            frames=len(times),
            black=tuple((at(a), at(b)) for a, b in _runs(self._black)),
            # A frozen run starts at the frame it repeats: the one before its first repeat.
            freezes=tuple(
                (at(max(0, a - 1)), at(b)) for a, b in _runs([not m for m in self._moved])
            ),
            luma=tuple(self._luma),
        )


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(first, last + 1) indices of each run of True flags."""
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
