"""Frames of a storyboard: static layers drawn once, per frame only what changes.

Two buffers are kept. `static` holds every shown layer that does not move by itself; it
is redrawn only inside the rectangles of layers whose state (opacity, slide offset)
changed since the last frame. `out` is the frame: a copy of `static`, except inside the
zooming layers' box, which is recomposed from all shown layers every frame. On an ordinary
frame the work is one sub-pixel zoom and a few copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from creative.plates import Plate, ZoomedImage, blend, draw_static
from creative.storyboard import ImagePart, Storyboard, Timing

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1
State = tuple[int, int, int]  # opacity level 0…255, dx, dy


@dataclass(eq=False)
class _Layer:
    index: int  # position in storyboard.layers
    timing: Timing
    plate: Plate  # for a zooming layer: its mask, with colors supplied per frame
    zoom: ZoomedImage | None
    opaque_full: bool

    def rect(self, dx: int, dy: int) -> Rect:
        p = self.plate
        return (p.x + dx, p.y + dy, p.x + dx + p.width, p.y + dy + p.height)

    def state(self, t: float) -> State:
        level = round(self.timing.opacity(t) * 255)
        if level <= 0:
            return (0, 0, 0)
        dx, dy = self.timing.offset(t)
        return (level, dx, dy)


Shown = list[tuple[_Layer, State]]


class FrameComposer:
    """Yields the frames of one storyboard as H×W×3 uint8 RGB arrays."""

    def __init__(self, storyboard: Storyboard) -> None:
        fmt = storyboard.format
        self.width, self.height, self.fps = fmt.width, fmt.height, fmt.fps
        self.frame_count = fmt.frame_count
        self.poster_index = min(round(storyboard.poster_s * fmt.fps), self.frame_count - 1)
        self._canvas: Rect = (0, 0, self.width, self.height)
        self._layers: list[_Layer] = []
        for index, part in enumerate(storyboard.layers):
            if isinstance(part, ImagePart) and part.moving:
                zoom = ZoomedImage(part, self.width, self.height)
                self._layers.append(_Layer(index, part.timing, zoom.mask, zoom, False))
                continue
            plate = draw_static(part, self.width, self.height)
            if plate is not None:
                full = plate.covers(self.width, self.height)
                self._layers.append(_Layer(index, part.timing, plate, None, full))

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Frames `start` … `stop` - 1 (default: every frame) in order, each exactly as in
        the whole video. The same array is reused: consume it before the next."""
        static = np.zeros((self.height, self.width, 3), np.uint8)
        out = np.zeros_like(static)
        previous: dict[int, State] | None = None
        previous_moving: Rect | None = None
        stop = self.frame_count if stop is None else min(stop, self.frame_count)
        for index in range(start, stop):
            t = index / self.fps
            shown = self._shown(t)
            states = {id(layer): state for layer, state in shown if layer.zoom is None}
            still = [(la, st) for la, st in shown if la.zoom is None]
            if previous is None:
                dirty = [self._canvas]
            else:
                dirty = []
                for layer in self._layers:
                    now = states.get(id(layer), (0, 0, 0))
                    before = previous.get(id(layer), (0, 0, 0))
                    if now != before:
                        dirty += [layer.rect(*s[1:]) for s in (now, before) if s[0]]
                dirty = _merge(dirty, self._canvas)
            for rect in dirty:
                _compose(static, still, rect, {})
                _copy(out, static, rect)
            moving = _clip(
                _union([la.rect(*st[1:]) for la, st in shown if la.zoom is not None]),
                self._canvas,
            )
            if previous_moving is not None and previous_moving != moving:
                _copy(out, static, previous_moving)
            if moving is not None:
                _compose(out, shown, moving, self._zoom_frames(shown, t))
            previous, previous_moving = states, moving
            yield out

    def frame_at(self, t: float, below: int | None = None) -> np.ndarray:
        """A new frame at time `t` composed from scratch (for previews and checks).

        With `below`, only storyboard layers with an index below it are drawn: the
        background that the layer `below` is drawn on.
        """
        shown = [(la, st) for la, st in self._shown(t) if below is None or la.index < below]
        frame = np.zeros((self.height, self.width, 3), np.uint8)
        _compose(frame, shown, self._canvas, self._zoom_frames(shown, t))
        return frame

    def _zoom_frames(self, shown: Shown, t: float) -> dict[int, np.ndarray]:
        return {id(la): la.zoom.frame(t) for la, _ in shown if la.zoom is not None}

    def _shown(self, t: float) -> Shown:
        """Layers visible at `t` with their state, from the topmost full opaque one up."""
        shown: Shown = []
        for layer in self._layers:
            state = layer.state(t)
            if state[0] <= 0:
                continue
            if layer.opaque_full and state == (255, 0, 0):
                shown.clear()  # everything below is hidden
            shown.append((layer, state))
        return shown


def _compose(dst: np.ndarray, shown: Shown, clip: Rect, zoomed: dict[int, np.ndarray]) -> None:
    """Redraw `clip` of `dst` from scratch with the given layers, bottom first."""
    dst[clip[1] : clip[3], clip[0] : clip[2]] = 0
    for layer, (level, dx, dy) in shown:
        blend(dst, layer.plate, level, clip, zoomed.get(id(layer)), dx, dy)


def _copy(dst: np.ndarray, src: np.ndarray, rect: Rect) -> None:
    x0, y0, x1, y1 = rect
    dst[y0:y1, x0:x1] = src[y0:y1, x0:x1]


def _clip(rect: Rect | None, canvas: Rect) -> Rect | None:
    if rect is None:
        return None
    x0, y0 = max(rect[0], canvas[0]), max(rect[1], canvas[1])
    x1, y1 = min(rect[2], canvas[2]), min(rect[3], canvas[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _union(rects: list[Rect]) -> Rect | None:
    if not rects:
        return None
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _cover(a: Rect, b: Rect) -> Rect:
    """The smallest rectangle holding both (`_union` of two)."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _merge(rects: list[Rect], canvas: Rect) -> list[Rect]:
    """Clip to the canvas and merge overlapping rectangles (so no pixel is drawn twice)."""
    pending = [r for r in (_clip(r, canvas) for r in rects) if r is not None]
    merged: list[Rect] = []
    while pending:
        current = pending.pop()
        grown = True
        while grown:
            grown = False
            for other in list(pending):
                if (
                    current[0] < other[2]
                    and other[0] < current[2]
                    and current[1] < other[3]
                    and other[1] < current[3]
                ):
                    current = _cover(current, other)
                    pending.remove(other)
                    grown = True
        merged.append(current)
    return merged
