"""Layers drawn once with Pillow, kept as pixel plates that numpy composites per frame.

A Plate is a layer cropped to where it has ink, with its alpha split into row bands that
are transparent (skipped), opaque (copied) or mixed (blended). Only mixed rows cost
arithmetic, which keeps per-frame compositing far below the cost of encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from creative.errors import RenderError
from creative.storyboard import GradientPart, ImagePart, Part, RectPart, TextPart
from creative.textfit import fit_text, load_font

TRANSPARENT, MIXED, OPAQUE = 0, 1, 2

# Supersampling factor for rounded shapes: Pillow does not antialias their outlines.
_SUPERSAMPLE = 4


@dataclass(eq=False)
class Plate:
    """Straight-alpha RGBA pixels at (x, y) on the canvas, with precomputed row bands."""

    x: int
    y: int
    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) uint8
    bands: list[tuple[int, int, int]] = field(default_factory=list)  # (row0, row1, kind)
    inv: np.ndarray = field(init=False)  # (h, w, 1) uint16: 255 - alpha
    alpha16: np.ndarray = field(init=False)  # (h, w, 1) uint16
    pre: np.ndarray | None = field(init=False, default=None)  # rgb * alpha, uint16

    def __post_init__(self) -> None:
        self.alpha16 = self.alpha[:, :, None].astype(np.uint16)
        self.inv = 255 - self.alpha16
        if not self.bands:
            self.bands = _bands(self.alpha)

    @property
    def width(self) -> int:
        """Width in pixels."""
        width: int = self.alpha.shape[1]
        return width

    @property
    def height(self) -> int:
        """Height in pixels."""
        height: int = self.alpha.shape[0]
        return height

    def premultiply(self) -> Plate:
        """Cache rgb × alpha for a plate whose colors never change."""
        self.pre = self.rgb.astype(np.uint16) * self.alpha16
        return self

    def covers(self, width: int, height: int) -> bool:
        """True if the plate is opaque over a whole canvas of this size."""
        return (
            self.x == 0
            and self.y == 0
            and self.width == width
            and self.height == height
            and self.bands == [(0, height, OPAQUE)]
        )

    @classmethod
    def from_image(cls, image: Image.Image, x: int, y: int) -> Plate | None:
        """A plate from an RGBA image placed at (x, y), cropped to its ink; None if empty."""
        bbox = image.getchannel("A").getbbox()
        if bbox is None:
            return None
        cropped = np.asarray(image.crop(bbox))
        return cls(
            x=x + bbox[0],
            y=y + bbox[1],
            rgb=np.ascontiguousarray(cropped[:, :, :3]),
            alpha=np.ascontiguousarray(cropped[:, :, 3]),
        ).premultiply()


def blend(
    dst: np.ndarray,
    plate: Plate,
    level: int,
    clip: tuple[int, int, int, int],
    rgb: np.ndarray | None = None,
    dx: int = 0,
    dy: int = 0,
) -> None:
    """Composite `plate` over `dst` (H×W×3 uint8) in place, at opacity level/255.

    Only pixels inside `clip` (x0, y0, x1, y1) are touched. `rgb` replaces the plate's
    colors (a moving image reuses its static mask with new pixels every frame); (dx, dy)
    shifts the plate from its place (slides).
    """
    colors = plate.rgb if rgb is None else rgb
    px, py = plate.x + dx, plate.y + dy
    x0, y0 = max(px, clip[0], 0), max(py, clip[1], 0)
    x1 = min(px + plate.width, clip[2], dst.shape[1])
    y1 = min(py + plate.height, clip[3], dst.shape[0])
    if x0 >= x1 or y0 >= y1 or level <= 0:
        return
    cols = slice(x0 - px, x1 - px)
    for r0, r1, kind in plate.bands:
        a0, a1 = max(r0 + py, y0), min(r1 + py, y1)
        if a0 >= a1:
            continue
        rows = slice(a0 - py, a1 - py)
        out = dst[a0:a1, x0:x1]
        if kind == OPAQUE and level == 255:
            out[...] = colors[rows, cols]
            continue
        acc = out.astype(np.uint16)
        if kind == OPAQUE:  # a uniform fade: scalar weights, no per-pixel alpha
            acc *= 255 - level
            acc += colors[rows, cols].astype(np.uint16) * np.uint16(level)
        elif level == 255:
            acc *= plate.inv[rows, cols]
            if rgb is None and plate.pre is not None:
                acc += plate.pre[rows, cols]
            else:
                acc += colors[rows, cols] * plate.alpha16[rows, cols]
        else:
            alpha = _div255(plate.alpha16[rows, cols] * np.uint16(level))
            acc *= 255 - alpha
            acc += colors[rows, cols] * alpha
        out[...] = _div255(acc)


def _div255(acc: np.ndarray) -> np.ndarray:
    """round(acc / 255) for uint16 acc ≤ 255², in place: (x + 128 + ((x + 128) >> 8)) >> 8."""
    acc += 128
    acc += acc >> 8
    acc >>= 8
    return acc


def draw_static(part: Part, width: int, height: int) -> Plate | None:
    """Draw a layer that does not move; None if it shows nothing."""
    if isinstance(part, RectPart):
        image = _rect(part)
    elif isinstance(part, GradientPart):
        image = _gradient(part)
    elif isinstance(part, TextPart):
        image = _text(part)
    elif isinstance(part, ImagePart):
        image = _image(part, 1.0)
    else:  # pragma: no cover - the Part union is closed
        raise TypeError(f"unknown layer {part!r}")
    # A box may poke past the canvas by a rounding pixel: crop what cannot be seen.
    box = part.box
    visible = image.crop((0, 0, min(box.w, width - box.x), min(box.h, height - box.y)))
    return Plate.from_image(visible, box.x, box.y)


class ZoomedImage:
    """A Ken Burns image: a sub-pixel zoom toward the focus point, smooth frame to frame.

    The source is prepared once at the box size times the largest zoom, so the image is
    never upscaled; each frame resamples a float window of it (area-averaged).
    """

    def __init__(self, part: ImagePart, width: int, height: int) -> None:
        self.part = part
        self.scale = max(part.zoom_start, part.zoom_end)
        self.source = _image(part, self.scale).convert("RGB")
        w, h = min(part.box.w, width - part.box.x), min(part.box.h, height - part.box.y)
        self.size = (w, h)
        mask = Image.new("L", (w, h), 255)
        if part.radius:
            mask = _rounded_mask((part.box.w, part.box.h), part.radius).crop((0, 0, w, h))
        self.mask = Plate(
            x=part.box.x,
            y=part.box.y,
            rgb=np.zeros((h, w, 3), np.uint8),
            alpha=np.asarray(mask).copy(),
        )

    def frame(self, t: float) -> np.ndarray:
        """The image at time `t` as an (h, w, 3) uint8 array."""
        part = self.part
        zoom = part.zoom(t)
        # The source is the box at the largest zoom, so at `zoom` a 1/zoom window shows.
        src_w, src_h = self.source.size
        win_w, win_h = src_w / zoom, src_h / zoom
        cx = min(max(part.focus[0] * src_w, win_w / 2), src_w - win_w / 2)
        cy = min(max(part.focus[1] * src_h, win_h / 2), src_h - win_h / 2)
        window = (cx - win_w / 2, cy - win_h / 2, cx + win_w / 2, cy + win_h / 2)
        # Always a reduction (by 1…scale) over a float window. BILINEAR, not BOX: Pillow's
        # box weights are 0 or 1 per source pixel, so a slow zoom steps by whole source
        # pixels; the antialiased triangle filter's weights move continuously.
        frame = self.source.resize(self.size, Image.Resampling.BILINEAR, box=window)
        return np.asarray(frame)


def _bands(alpha: np.ndarray) -> list[tuple[int, int, int]]:
    lo, hi = alpha.min(axis=1), alpha.max(axis=1)
    kinds = np.where(hi == 0, TRANSPARENT, np.where(lo == 255, OPAQUE, MIXED))
    bands: list[tuple[int, int, int]] = []
    start = 0
    for row in range(1, len(kinds) + 1):
        if row == len(kinds) or kinds[row] != kinds[start]:
            if kinds[start] != TRANSPARENT:
                bands.append((start, row, int(kinds[start])))
            start = row
    return bands


def _rounded_mask(size: tuple[int, int], radius: float) -> Image.Image:
    """An antialiased rounded-rectangle mask (drawn large, then reduced)."""
    w, h = size
    radius = min(radius, w / 2, h / 2)
    if radius <= 0:
        return Image.new("L", size, 255)
    big = Image.new("L", (w * _SUPERSAMPLE, h * _SUPERSAMPLE), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, w * _SUPERSAMPLE - 1, h * _SUPERSAMPLE - 1),
        radius=round(radius * _SUPERSAMPLE),
        fill=255,
    )
    return big.reduce(_SUPERSAMPLE)


def _colored(
    size: tuple[int, int], color: tuple[int, int, int, int], mask: Image.Image
) -> Image.Image:
    """A solid color with alpha = mask × the color's own alpha."""
    image = Image.new("RGBA", size, (*color[:3], 0))
    if color[3] != 255:
        mask = mask.point(lambda v: v * color[3] // 255)
    image.putalpha(mask)
    return image


def _rect(part: RectPart) -> Image.Image:
    size = (part.box.w, part.box.h)
    return _colored(size, part.color, _rounded_mask(size, part.radius))


def _gradient(part: GradientPart) -> Image.Image:
    """Interpolated in premultiplied color, so fading to transparent does not go gray."""
    w, h = part.box.w, part.box.h
    steps = h if part.direction == "vertical" else w
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    c0, c1 = (np.array(c, dtype=np.float64) for c in part.colors)
    p0, p1 = c0[:3] * c0[3] / 255, c1[:3] * c1[3] / 255
    alpha = c0[3] + (c1[3] - c0[3]) * t
    premul = p0 + (p1 - p0) * t
    rgb = np.where(alpha > 0, premul * 255 / np.maximum(alpha, 1e-9), 0)
    line = np.concatenate([rgb, alpha], axis=1).round().clip(0, 255).astype(np.uint8)
    if part.direction == "vertical":
        pixels = np.broadcast_to(line[:, None, :], (h, w, 4))
    else:
        pixels = np.broadcast_to(line[None, :, :], (h, w, 4))
    return Image.fromarray(np.ascontiguousarray(pixels), "RGBA")


def _text(part: TextPart) -> Image.Image:
    """Fit, then draw: a pill hugging the text if asked, lines aligned within the box."""
    box = part.box
    pad_x = part.pill.pad_x if part.pill else 0
    pad_y = part.pill.pad_y if part.pill else 0
    fit = fit_text(
        part.text,
        part.font_path,
        box.w - 2 * pad_x,
        box.h - 2 * pad_y,
        max_lines=part.max_lines,
        max_size=part.size_max,
        min_size=part.size_min,
        line_spacing=part.line_spacing,
    )
    layer = Image.new("RGBA", (box.w, box.h), (0, 0, 0, 0))
    if not fit.lines:
        return layer
    font = load_font(part.font_path, fit.size)
    lines_h = (len(fit.lines) - 1) * fit.line_height
    if part.pill:
        # Center the cap height in the pill: that is what looks centered on a button.
        cap = -font.getbbox("H", anchor="ls")[1]
        block_top, block_h = cap, cap + lines_h
    else:
        block_top, block_h = fit.ascent, fit.height
    block_w = fit.width + 2 * pad_x
    outer_h = block_h + 2 * pad_y
    left = {"left": 0, "center": (box.w - block_w) / 2, "right": box.w - block_w}[part.align]
    top = {"top": 0, "middle": (box.h - outer_h) / 2, "bottom": box.h - outer_h}[part.valign]
    baseline = top + pad_y + block_top
    # Keep every glyph inside the box (ascent above the first, descent below the last line).
    baseline = min(max(baseline, fit.ascent), box.h - fit.descent - lines_h)
    if part.pill:
        pill_top = baseline - block_top - pad_y
        pill = (round(left), round(pill_top), round(left + block_w), round(pill_top + outer_h))
        pw, ph = pill[2] - pill[0], pill[3] - pill[1]
        mask = Image.new("L", (box.w, box.h), 0)
        mask.paste(_rounded_mask((pw, ph), part.pill.roundness * ph / 2), pill[:2])
        layer = Image.alpha_composite(layer, _colored(layer.size, part.pill.color, mask))
    mask = Image.new("L", (box.w, box.h), 0)
    draw = ImageDraw.Draw(mask)
    strike = Image.new("L", (box.w, box.h), 0) if part.strike else None
    for i, line in enumerate(fit.lines):
        slack = fit.width - font.getlength(line)
        x = left + pad_x + {"left": 0, "center": slack / 2, "right": slack}[part.align]
        y = baseline + i * fit.line_height
        draw.text((x, y), line, font=font, fill=255, anchor="ls")
        if strike is not None:
            # Through the middle of the lowercase letters, a little past both ends.
            mid = y + font.getbbox("x", anchor="ls")[1] / 2
            thick = max(2.0, fit.size * 0.08)
            over = fit.size * 0.08
            ImageDraw.Draw(strike).rectangle(
                (x - over, mid - thick / 2, x + font.getlength(line) + over, mid + thick / 2),
                fill=255,
            )
    layer = Image.alpha_composite(layer, _colored(layer.size, part.color, mask))
    if strike is not None and part.strike is not None:
        layer = Image.alpha_composite(layer, _colored(layer.size, part.strike, strike))
    return layer


def _image(part: ImagePart, scale: float) -> Image.Image:
    """The image file cropped to the box (cover) or fitted inside it (contain), as RGBA."""
    target = (max(1, round(part.box.w * scale)), max(1, round(part.box.h * scale)))
    try:
        with Image.open(part.path) as opened:
            opened.draft("RGB", target)  # JPEG: decode at a reduced size when it is large
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, Image.DecompressionBombError) as exc:  # the bomb is no OSError
        raise RenderError(f"cannot read image {part.path.name}: {exc}") from None
    image = image.convert("RGBA")
    if part.fit == "cover":
        flat = Image.new("RGBA", image.size, (255, 255, 255, 255))  # cutouts sit on white
        flat.alpha_composite(image)
        out = ImageOps.fit(flat, target, Image.Resampling.LANCZOS, centering=part.focus)
        if part.radius and scale == 1.0:
            out.putalpha(_rounded_mask(target, part.radius))
        return out
    fitted = ImageOps.contain(image, target, Image.Resampling.LANCZOS)
    out = Image.new("RGBA", target, (0, 0, 0, 0))
    out.alpha_composite(fitted, ((target[0] - fitted.width) // 2, (target[1] - fitted.height) // 2))
    return out
