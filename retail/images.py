"""Pillow drawings of demo products, one simple studio-style motif per category."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

Colour = tuple[int, ...]


def _shade(c: Colour, k: float) -> Colour:
    return tuple(max(0, min(255, int(v * k))) for v in c)


def _sneaker(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.rounded_rectangle((0.18 * s, 0.5 * s, 0.84 * s, 0.72 * s), radius=0.08 * s, fill=c)
    d.pieslice((0.16 * s, 0.34 * s, 0.56 * s, 0.9 * s), 180, 270, fill=c)
    d.rectangle((0.36 * s, 0.34 * s, 0.5 * s, 0.55 * s), fill=c)
    d.rounded_rectangle((0.15 * s, 0.7 * s, 0.87 * s, 0.78 * s), radius=0.03 * s, fill="white")
    for i in range(4):
        x = 0.4 * s + i * 0.06 * s
        d.line((x, 0.42 * s, x + 0.04 * s, 0.52 * s), fill="white", width=max(2, s // 120))


def _coffee(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.rounded_rectangle((0.32 * s, 0.22 * s, 0.68 * s, 0.8 * s), radius=0.04 * s, fill=c)
    d.polygon(
        [(0.32 * s, 0.22 * s), (0.5 * s, 0.14 * s), (0.68 * s, 0.22 * s)], fill=_shade(c, 0.8)
    )
    d.rectangle((0.36 * s, 0.42 * s, 0.64 * s, 0.62 * s), fill=(245, 235, 220))
    d.ellipse((0.45 * s, 0.47 * s, 0.55 * s, 0.57 * s), fill=_shade(c, 0.6))


def _headphones(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.arc((0.24 * s, 0.18 * s, 0.76 * s, 0.7 * s), 180, 360, fill=c, width=int(0.05 * s))
    for x in (0.2, 0.66):
        d.rounded_rectangle(
            (x * s, 0.42 * s, (x + 0.14) * s, 0.68 * s), radius=0.05 * s, fill=_shade(c, 0.8)
        )


def _watch(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.rounded_rectangle(
        (0.42 * s, 0.1 * s, 0.58 * s, 0.9 * s), radius=0.03 * s, fill=_shade(c, 0.6)
    )
    d.ellipse((0.3 * s, 0.32 * s, 0.7 * s, 0.72 * s), fill=c)
    d.ellipse((0.34 * s, 0.36 * s, 0.66 * s, 0.68 * s), fill=(250, 250, 245))
    d.line((0.5 * s, 0.52 * s, 0.5 * s, 0.41 * s), fill="black", width=max(2, s // 90))
    d.line((0.5 * s, 0.52 * s, 0.59 * s, 0.55 * s), fill="black", width=max(2, s // 120))


def _backpack(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.arc((0.38 * s, 0.12 * s, 0.62 * s, 0.32 * s), 180, 360, fill=_shade(c, 0.7), width=s // 60)
    d.rounded_rectangle((0.28 * s, 0.22 * s, 0.72 * s, 0.82 * s), radius=0.1 * s, fill=c)
    d.rounded_rectangle(
        (0.34 * s, 0.52 * s, 0.66 * s, 0.76 * s), radius=0.05 * s, fill=_shade(c, 0.8)
    )


def _lamp(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.polygon(
        [(0.3 * s, 0.4 * s), (0.7 * s, 0.4 * s), (0.6 * s, 0.16 * s), (0.4 * s, 0.16 * s)], fill=c
    )
    d.rectangle((0.485 * s, 0.4 * s, 0.515 * s, 0.78 * s), fill=(60, 60, 60))
    d.ellipse((0.36 * s, 0.74 * s, 0.64 * s, 0.82 * s), fill=(60, 60, 60))


def _plant(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    for dx, dy in ((-0.12, -0.1), (0.12, -0.12), (0.0, -0.2), (-0.16, 0.04), (0.16, 0.02)):
        cx, cy = (0.5 + dx) * s, (0.42 + dy) * s
        d.ellipse((cx - 0.1 * s, cy - 0.06 * s, cx + 0.1 * s, cy + 0.06 * s), fill=c)
    d.polygon(
        [(0.34 * s, 0.55 * s), (0.66 * s, 0.55 * s), (0.61 * s, 0.82 * s), (0.39 * s, 0.82 * s)],
        fill=(190, 110, 70),
    )


def _tshirt(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    pts = [
        (0.36, 0.2),
        (0.44, 0.24),
        (0.56, 0.24),
        (0.64, 0.2),
        (0.84, 0.32),
        (0.76, 0.44),
        (0.68, 0.4),
        (0.68, 0.8),
        (0.32, 0.8),
        (0.32, 0.4),
        (0.24, 0.44),
        (0.16, 0.32),
    ]
    d.polygon([(x * s, y * s) for x, y in pts], fill=c)


def _sunglasses(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    for x in (0.2, 0.54):
        d.rounded_rectangle((x * s, 0.42 * s, (x + 0.26) * s, 0.6 * s), radius=0.07 * s, fill=c)
    d.line((0.46 * s, 0.46 * s, 0.54 * s, 0.46 * s), fill=c, width=s // 60)


def _bottle(d: ImageDraw.ImageDraw, s: int, c: Colour) -> None:
    d.rounded_rectangle((0.38 * s, 0.26 * s, 0.62 * s, 0.84 * s), radius=0.07 * s, fill=c)
    d.rectangle((0.44 * s, 0.14 * s, 0.56 * s, 0.26 * s), fill=_shade(c, 0.6))
    d.rectangle((0.38 * s, 0.5 * s, 0.62 * s, 0.6 * s), fill=(250, 250, 250))


MOTIFS: dict[str, Callable[[ImageDraw.ImageDraw, int, Colour], None]] = {
    "Sneakers": _sneaker,
    "Coffee": _coffee,
    "Headphones": _headphones,
    "Watches": _watch,
    "Backpacks": _backpack,
    "Lamps": _lamp,
    "Plants": _plant,
    "T-Shirts": _tshirt,
    "Sunglasses": _sunglasses,
    "Bottles": _bottle,
}


def draw_product(image: Image.Image, category: str, colour: Colour) -> None:
    """Draw the category's motif onto a square image, in place."""
    motif = MOTIFS.get(category, _backpack)
    motif(ImageDraw.Draw(image), image.width, colour)
