"""The campaign report as a PNG: bars with 95 % interval whiskers, drawn with Pillow.

Two panels: CTR per variant, and conversion of treated versus holdout with the lift in
the title. Pillow is already a dependency; matplotlib would be 40 MB for two bar charts.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from delivery.report import CampaignReport, Rate

_W, _H = 960, 460
_BAR_COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"]
_HOLDOUT_COLOUR = "#71717a"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "Arial.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    bars: list[tuple[str, Rate, str]],
) -> None:
    left, top, right, bottom = box
    title_font, label_font = _font(16), _font(12)
    draw.text((left, top), title, fill="#18181b", font=title_font)
    plot_top, plot_bottom = top + 40, bottom - 40
    axis_left = left + 48
    draw.line((axis_left, plot_top, axis_left, plot_bottom), fill="#a1a1aa")
    draw.line((axis_left, plot_bottom, right, plot_bottom), fill="#a1a1aa")
    if not bars:
        draw.text((axis_left + 10, plot_top + 10), "no data", fill="#71717a", font=label_font)
        return
    # Scale to the highest upper bound so every whisker fits, with a little headroom.
    top_value = max(max(rate.high for _, rate, _ in bars), 1e-6) * 1.1
    for step in range(5):
        value = top_value * step / 4
        y = plot_bottom - (plot_bottom - plot_top) * step / 4
        draw.line((axis_left - 4, y, axis_left, y), fill="#a1a1aa")
        draw.text((left, y - 7), f"{100 * value:.1f}%", fill="#52525b", font=label_font)
    slot = (right - axis_left) / len(bars)
    width = min(70.0, slot * 0.5)

    def y_of(value: float) -> float:
        return plot_bottom - (plot_bottom - plot_top) * value / top_value

    for i, (label, rate, colour) in enumerate(bars):
        centre = axis_left + slot * (i + 0.5)
        draw.rectangle(
            (centre - width / 2, y_of(rate.rate), centre + width / 2, plot_bottom), fill=colour
        )
        low, high = y_of(rate.low), y_of(rate.high)
        draw.line((centre, low, centre, high), fill="#18181b", width=2)
        for y in (low, high):
            draw.line((centre - 8, y, centre + 8, y), fill="#18181b", width=2)
        draw.text(
            (centre, plot_bottom + 6), label[:18], fill="#18181b", font=label_font, anchor="ma"
        )
        draw.text(
            (centre, plot_bottom + 22),
            f"{100 * rate.rate:.2f}% (n={rate.trials})",
            fill="#52525b",
            font=label_font,
            anchor="ma",
        )


def draw_chart(report: CampaignReport, path: Path) -> Path:
    """Write the report's chart as a PNG at `path` and return the path."""
    image = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 12), f"Campaign {report.campaign}", fill="#18181b", font=_font(20))
    ctr_bars = [
        (v.variant, v.clicks, _BAR_COLOURS[i % len(_BAR_COLOURS)])
        for i, v in enumerate(report.variants)
    ]
    _panel(draw, (20, 50, _W // 2 - 20, _H - 10), "CTR per variant (95% Wilson)", ctr_bars)
    comparison = report.holdout
    if comparison is not None:
        lift = comparison.lift
        title = (
            f"Conversion in {report.attribution_days:g} d: lift {100 * lift.estimate:+.2f} pp "
            f"[{100 * lift.low:+.2f}, {100 * lift.high:+.2f}]"
        )
        bars = [
            ("treated", comparison.treated, _BAR_COLOURS[0]),
            ("holdout", comparison.holdout, _HOLDOUT_COLOUR),
        ]
    else:
        title, bars = "Conversion: no holdout comparison", []
    _panel(draw, (_W // 2 + 10, 50, _W - 20, _H - 10), title, bars)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG")
    return path
