"""MoviePy as a second local engine: the same storyboard as a MoviePy 2 composition.

`--renderer moviepy` (REELCAST_RENDERER=moviepy) builds each video as an idiomatic
MoviePy composition: shapes, gradients and logos as ImageClips, texts as TextClips at the
size our text fitting chose, the Ken Burns zoom as `resized(lambda t: …)` inside a
box-sized CompositeVideoClip, fades as CrossFadeIn/CrossFadeOut, slides as positions that
are functions of t. It is for users who want MoviePy's effects, or to write scenes of
their own in it (subclass `MoviePyRenderer` and override `clips`).

MoviePy makes the frames; the rest is the local renderer's: the same x264 settings and
color conversion, the same audio bed (fitted, faded and normalized by ffmpeg), the poster,
the GIF preview, and frame statistics measured on the frames encoded, so a MoviePy render
passes the same QC as any other. It is about 5 times slower than our own compositor
(`bench/render.py`), and its pixels differ slightly (no rounded shapes, MoviePy's text
drawing), so its renders are filed under keys of their own.

MoviePy is the `moviepy` extra: pip install 'reelcast[moviepy]'.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from creative.errors import CreativeError
from creative.plates import draw_static
from creative.render import LocalRenderer
from creative.storyboard import (
    GradientPart,
    ImagePart,
    Part,
    RectPart,
    Storyboard,
    TextPart,
)
from creative.textfit import fit_text

MOVIEPY_EXTRA = "pip install 'reelcast[moviepy]'"
#: Bump when the composition changes what the same storyboard looks like.
MOVIEPY_RECIPE = 1


def moviepy_available() -> bool:
    """Whether MoviePy is installed."""
    return importlib.util.find_spec("moviepy") is not None


class MoviePyRenderer(LocalRenderer):
    """The local renderer with MoviePy composing the frames."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not moviepy_available():
            raise CreativeError(f"the moviepy renderer needs MoviePy: {MOVIEPY_EXTRA}")
        super().__init__(*args, **kwargs)

    def key(self, storyboard: Storyboard) -> str:
        """The storyboard's key with this engine's name in it: other pixels, other key."""
        inner = storyboard.with_encode(self.encode).key()
        return hashlib.sha256(f"moviepy:{MOVIEPY_RECIPE}:{inner}".encode()).hexdigest()

    def compose(self, storyboard: Storyboard) -> tuple[Iterator[np.ndarray], int]:
        """MoviePy's frames of the storyboard, and the index of the poster frame."""
        fmt = storyboard.format
        poster = min(round(storyboard.poster_s * fmt.fps), fmt.frame_count - 1)
        return self._frames(storyboard), poster

    def _frames(self, storyboard: Storyboard) -> Iterator[np.ndarray]:
        from moviepy import CompositeVideoClip

        fmt = storyboard.format
        clips = self.clips(storyboard)
        final = CompositeVideoClip(clips, size=(fmt.width, fmt.height), bg_color=(0, 0, 0))
        final = final.with_duration(fmt.duration_s)
        try:
            for index in range(fmt.frame_count):
                frame = final.get_frame(index / fmt.fps)
                yield np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        finally:
            final.close()
            for clip in clips:
                clip.close()

    def clips(self, storyboard: Storyboard) -> list[Any]:
        """The MoviePy clips of the storyboard's layers, bottom first, placed and timed."""
        clips = []
        for part in storyboard.layers:
            clip = self.clip(part, storyboard)
            if clip is not None:
                clips.append(_timed(clip, part))
        return clips

    def clip(self, part: Part, storyboard: Storyboard) -> Any:
        """One layer as a MoviePy clip at its box's size (None: it draws nothing)."""
        from moviepy import ColorClip, CompositeVideoClip, ImageClip, TextClip

        fmt = storyboard.format
        box = part.box
        if isinstance(part, RectPart) and not part.radius and part.color[3] == 255:
            return ColorClip((box.w, box.h), color=part.color[:3])
        if isinstance(part, RectPart | GradientPart):
            plate = draw_static(part, fmt.width, fmt.height)
            if plate is None:
                return None
            return ImageClip(np.dstack([plate.rgb, plate.alpha]))
        if isinstance(part, ImagePart) and part.moving:
            with Image.open(part.path) as opened:
                photo = ImageOps.fit(opened.convert("RGB"), (box.w, box.h), centering=part.focus)
            zoom = ImageClip(np.asarray(photo)).resized(
                lambda t, p=part: p.zoom(p.timing.start + t)
            )
            return CompositeVideoClip([zoom.with_position("center")], size=(box.w, box.h))
        if isinstance(part, ImagePart):
            with Image.open(part.path) as opened:
                image = opened.convert("RGBA")
                if part.fit == "cover":
                    image = ImageOps.fit(image, (box.w, box.h), centering=part.focus)
                else:
                    image.thumbnail((box.w, box.h))
            return ImageClip(np.asarray(image))
        if isinstance(part, TextPart):
            pad_x = part.pill.pad_x if part.pill else 0
            pad_y = part.pill.pad_y if part.pill else 0
            fit = fit_text(
                part.text, part.font_path, box.w - 2 * pad_x, box.h - 2 * pad_y,
                max_lines=part.max_lines, max_size=part.size_max, min_size=part.size_min,
                line_spacing=part.line_spacing,
            )  # fmt: skip
            return TextClip(
                font=str(part.font_path),
                text="\n".join(fit.lines),
                font_size=fit.size,
                color="#{:02x}{:02x}{:02x}".format(*part.color[:3]),
                bg_color=None if part.pill is None else part.pill.color[:3],
                margin=(pad_x, pad_y),
                text_align=part.align,
            )
        return None


def _timed(clip: Any, part: Part) -> Any:
    """`clip` shown over the part's time, with its fades and its slides as positions."""
    from moviepy import vfx

    timing = part.timing
    clip = clip.with_start(timing.start).with_duration(timing.end - timing.start)
    effects = []
    fade_in = timing.fade_in + sum(m.duration for m in timing.motions if m.kind == "fade")
    if fade_in:
        effects.append(vfx.CrossFadeIn(fade_in))
    if timing.fade_out:
        effects.append(vfx.CrossFadeOut(timing.fade_out))
    if effects:
        clip = clip.with_effects(effects)
    x, y = part.box.x, part.box.y
    if any(m.kind == "slide" for m in timing.motions):
        start = timing.start
        return clip.with_position(
            lambda t: (x + timing.offset(start + t)[0], y + timing.offset(start + t)[1])
        )
    return clip.with_position((x, y))
