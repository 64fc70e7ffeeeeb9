"""Fitting text into a box with Pillow: the largest size that wraps within the line limit.

Sizes are measured with the same FreeType layout that draws the text, so what fits here
fits on screen. When even the smallest size needs too many lines, the text is cut after the
last line that fits and ends with an ellipsis: text never leaves its box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

ELLIPSIS = "…"
_TRAILING = " ,;:-–—"  # punctuation that looks wrong right before an ellipsis

# Only ASCII whitespace separates words: Babel puts no-break spaces inside prices
# ("1.299,00 €") and those must never be split across lines.
_BREAKABLE = re.compile(r"[ \t\r\n\f\v]+")


@dataclass(frozen=True)
class FittedText:
    """Text laid out at one font size: lines top to bottom, pixel metrics of the block."""

    size: int
    lines: tuple[str, ...]
    line_height: int
    ascent: int
    descent: int
    width: float
    truncated: bool
    broken: bool = False  # a word had to be split between characters

    @property
    def height(self) -> int:
        """Height of the block from the first line's ascent to the last line's descent."""
        if not self.lines:
            return 0
        return self.ascent + self.descent + (len(self.lines) - 1) * self.line_height


@lru_cache(maxsize=256)
def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A FreeType font at a pixel size (cached: fitting tries many sizes)."""
    return ImageFont.truetype(str(path), size)


def line_metrics(path: Path, size: int) -> tuple[int, int]:
    """(ascent, descent) in pixels of `path` at `size`."""
    return load_font(path, size).getmetrics()


@lru_cache(maxsize=2048)
def fit_text(
    text: str,
    font_path: Path,
    width: float,
    height: float,
    *,
    max_lines: int,
    max_size: int,
    min_size: int,
    line_spacing: float = 1.15,
) -> FittedText:
    """Lay `text` out at the largest size in [min_size, max_size] that fits the box.

    Fits means: at most `max_lines` lines, each at most `width` wide, and the block at most
    `height` tall. If nothing fits, the text is set at `min_size` and cut with an ellipsis.
    Results are cached: campaigns fit the same brand, price and CTA texts over and over.
    """
    words = [w for w in _BREAKABLE.split(text.strip()) if w]
    # Breaking inside a word is a last resort: first look for a size that needs none.
    for break_words in (False, True):
        lo, hi = min_size, max(min_size, max_size)
        best: FittedText | None = None
        while lo <= hi:  # fitting is monotone in the size, so bisect
            mid = (lo + hi) // 2
            layout = _layout(words, font_path, mid, width, line_spacing)
            fits = len(layout.lines) <= max_lines and layout.height <= height
            if fits and layout.width <= width and (break_words or not layout.broken):
                best, lo = layout, mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return best
    return _truncated(words, font_path, min_size, width, height, max_lines, line_spacing)


def _layout(
    words: list[str], font_path: Path, size: int, width: float, line_spacing: float
) -> FittedText:
    font = load_font(font_path, size)
    lines, broken = _wrap(words, font, width)
    ascent, descent = font.getmetrics()
    return FittedText(
        size=size,
        lines=tuple(lines),
        line_height=max(1, round(size * line_spacing)),
        ascent=ascent,
        descent=descent,
        width=max((font.getlength(line) for line in lines), default=0.0),
        truncated=False,
        broken=broken,
    )


def _truncated(
    words: list[str],
    font_path: Path,
    size: int,
    width: float,
    height: float,
    max_lines: int,
    line_spacing: float,
) -> FittedText:
    layout = _layout(words, font_path, size, width, line_spacing)
    room = 1 + int((height - layout.ascent - layout.descent) // layout.line_height)
    keep = max(1, min(max_lines, room, len(layout.lines)))
    font = load_font(font_path, size)
    lines = list(layout.lines[:keep])
    lines[-1] = _ellipsize(lines[-1], font, width)
    return FittedText(
        size=size,
        lines=tuple(lines),
        line_height=layout.line_height,
        ascent=layout.ascent,
        descent=layout.descent,
        width=max(font.getlength(line) for line in lines),
        truncated=True,
        broken=layout.broken,
    )


def _wrap(words: list[str], font: ImageFont.FreeTypeFont, width: float) -> tuple[list[str], bool]:
    """Greedy wrapping; a word wider than the box is broken between characters."""
    lines: list[str] = []
    broken = False
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = _break_word(word, font, width)
        broken = broken or len(pieces) > 1
        lines.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        lines.append(current)
    return lines, broken


def _break_word(word: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    pieces: list[str] = []
    current = ""
    for char in word:
        if current and font.getlength(current + char) > width:
            pieces.append(current)
            current = char
        else:
            current += char
    pieces.append(current)
    return pieces


def _ellipsize(line: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """`line` cut so that it plus an ellipsis fits: after a whole word when that keeps most
    of the line, else between characters."""
    words = line.split(" ")
    while len(words) > 1:
        words.pop()
        text = " ".join(words).rstrip(_TRAILING)
        if font.getlength(text + ELLIPSIS) <= width:
            if font.getlength(text) >= 0.6 * width:
                return text + ELLIPSIS
            break
    text = line.rstrip(_TRAILING)
    while text and font.getlength(text + ELLIPSIS) > width:
        text = text[:-1].rstrip(_TRAILING)
    return text + ELLIPSIS
