"""Text auto-fit: the largest size that fits, shrinking for long text, never overflowing."""

from __future__ import annotations

from pathlib import Path

import pytest

from creative import fit_text
from creative.plates import draw_static
from creative.storyboard import PillPart, PxBox, TextPart, Timing
from creative.textfit import load_font

FONT = Path(__file__).resolve().parents[2] / "assets" / "fonts" / "DejaVuSansCondensed-Bold.ttf"
BOX_W, BOX_H = 624, 120

TEXTS = [
    "Boots",
    "Trailblazer GTX waterproof hiking boots",
    "Trailblazer GTX waterproof hiking boots with extra grip, Vibram sole and a two-year "
    "warranty, in six colours and every size from 36 to 48",
    "Donaudampfschifffahrtsgesellschaftskapitänsmützenhalterungsschraube",
    "x" * 400,
    "A " * 200,
]


def _fit(text: str, max_lines: int = 2):
    return fit_text(text, FONT, BOX_W, BOX_H, max_lines=max_lines, max_size=51, min_size=32)


def test_short_title_gets_the_largest_size() -> None:
    assert _fit("Boots").size == 51


def test_long_title_shrinks_to_fit() -> None:
    short, long = _fit("Hiking boots"), _fit("Trailblazer GTX waterproof hiking boots")
    assert long.size < short.size
    assert len(long.lines) <= 2
    assert not long.truncated


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("max_lines", [1, 2, 3])
def test_fitted_text_never_overflows_its_box(text: str, max_lines: int) -> None:
    fitted = _fit(text, max_lines)
    font = load_font(FONT, fitted.size)
    assert 1 <= len(fitted.lines) <= max_lines
    assert fitted.height <= BOX_H
    assert all(font.getlength(line) <= BOX_W for line in fitted.lines)


def test_text_too_long_for_the_smallest_size_ends_with_an_ellipsis() -> None:
    fitted = _fit(TEXTS[2])
    assert fitted.truncated and fitted.size == 32
    assert fitted.lines[-1].endswith("…")


def test_price_is_never_split_at_its_no_break_space() -> None:
    fitted = fit_text("1.299,90\u00a0€", FONT, 150, 200, max_lines=3, max_size=60, min_size=10)
    assert fitted.lines == ("1.299,90\u00a0€",)


@pytest.mark.parametrize("text", TEXTS)
def test_drawn_text_and_pill_stay_inside_the_layer_box(text: str) -> None:
    box = PxBox(x=48, y=1000, w=BOX_W, h=BOX_H)
    part = TextPart(
        id="title",
        box=box,
        timing=Timing(start=0, end=8),
        role="title",
        text=text,
        font=FONT.name,
        font_path=FONT,
        color=(255, 255, 255, 255),
        size_max=51,
        size_min=32,
        max_lines=2,
        align="center",
        valign="bottom",
        line_spacing=1.1,
        pill=PillPart(color=(255, 181, 71, 255), pad_x=20, pad_y=12, roundness=1.0),
    )
    plate = draw_static(part, 720, 1280)
    assert plate is not None
    assert box.x <= plate.x and plate.x + plate.width <= box.x + box.w
    assert box.y <= plate.y and plate.y + plate.height <= box.y + box.h
