"""Frames of a storyboard: static layers drawn once, per frame only what changes.

Two buffers are kept. `static` holds every shown layer that does not move; it is redrawn
only inside the boxes of layers whose opacity changed (fades). `out` is the frame: a copy of
`static`, except inside the moving layers' box, which is recomposed from all shown layers
every frame. On an ordinary frame the work is one sub-pixel zoom and a few copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from creative.plates import Plate, ZoomedImage, blend, draw_static
from creative.storyboard import ImagePart, Storyboard, Timing

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


@dataclass(eq=False)
class _Layer:
    timing: Timing
    plate: Plate  # for a moving layer: its mask, with colors supplied per frame
    zoom: ZoomedImage | None
    opaque_full: bool

    @property
    def rect(self) -> Rect:
        p = self.plate
        return (p.x, p.y, p.x + p.width, p.y + p.height)


class FrameComposer:
    """Yields the frames of one storyboard as H×W×3 uint8 RGB arrays."""

    def __init__(self, storyboard: Storyboard) -> None:
        fmt = storyboard.format
        self.width, self.height, self.fps = fmt.width, fmt.height, fmt.fps
        self.frame_count = fmt.frame_count
        self.poster_index = min(round(storyboard.poster_s * fmt.fps), self.frame_count - 1)
        self._layers: list[_Layer] = []
        for part in storyboard.layers:
            if isinstance(part, ImagePart) and part.moving:
                zoom = ZoomedImage(part, self.width, self.height)
                self._layers.append(_Layer(part.timing, zoom.mask, zoom, False))
                continue
            plate = draw_static(part, self.width, self.height)
            if plate is not None:
                full = plate.covers(self.width, self.height)
                self._layers.append(_Layer(part.timing, plate, None, full))

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order. The same array is reused: consume it before the next."""
        full: Rect = (0, 0, self.width, self.height)
        static = np.zeros((self.height, self.width, 3), np.uint8)
        out = np.zeros_like(static)
        previous: dict[int, int] | None = None
        previous_moving: Rect | None = None
        for index in range(self.frame_count):
            t = index / self.fps
            shown = self._shown(t)
            levels = {id(layer): level for layer, level in shown if layer.zoom is None}
            if previous is None:
                dirty: Rect | None = full
            else:
                changed = [
                    layer.rect
                    for layer in self._layers
                    if levels.get(id(layer), 0) != previous.get(id(layer), 0)
                ]
                dirty = _union(changed)
            if dirty is not None:
                _compose(static, [(la, lv) for la, lv in shown if la.zoom is None], dirty, t)
                _copy(out, static, dirty)
            moving = _union([layer.rect for layer, _ in shown if layer.zoom is not None])
            if previous_moving is not None and previous_moving != moving:
                _copy(out, static, previous_moving)
            if moving is not None:
                _compose(out, shown, moving, t)
            previous, previous_moving = levels, moving
            yield out

    def _shown(self, t: float) -> list[tuple[_Layer, int]]:
        """Layers visible at `t` with opacity 1…255, from the topmost full opaque one up."""
        shown = []
        for layer in self._layers:
            level = round(layer.timing.opacity(t) * 255)
            if level <= 0:
                continue
            if layer.opaque_full and level == 255:
                shown.clear()  # everything below is hidden
            shown.append((layer, level))
        return shown


def _compose(dst: np.ndarray, shown: list[tuple[_Layer, int]], clip: Rect, t: float) -> None:
    """Redraw `clip` of `dst` from scratch with the given layers, bottom first."""
    dst[clip[1] : clip[3], clip[0] : clip[2]] = 0
    for layer, level in shown:
        rgb = None if layer.zoom is None else layer.zoom.frame(t)
        blend(dst, layer.plate, level, clip, rgb)


def _copy(dst: np.ndarray, src: np.ndarray, rect: Rect) -> None:
    x0, y0, x1, y1 = rect
    dst[y0:y1, x0:x1] = src[y0:y1, x0:x1]


def _union(rects: list[Rect]) -> Rect | None:
    if not rects:
        return None
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )
