"""Checking a template before any render, and previewing it as a contact sheet.

`check_template` builds storyboards from sample data chosen to be the longest texts a shop
realistically sends (long titles and brands, big prices in wordy locales, long first names,
every headline, with and without personalization, price-drop and back-in-stock) and
reports, per aspect: text that would need an ellipsis (overflow), text whose contrast with
the pixels under it is below WCAG's 4.5:1, and held frames that QC would call frozen.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from creative.frames import FrameComposer
from creative.plates import draw_static
from creative.storyboard import Storyboard, TextPart, build_storyboard
from creative.template import Template
from creative.textfit import fit_text
from retail.images import draw_product
from retail.types import Customer, Pick, Product

MIN_CONTRAST = 4.5
MAX_STILL_S = 0.5  # QC's freeze limit: longer holds are allowed only at the very end

# The longest texts we expect from a real catalog (not the schema's limits: a 300-character
# title cannot fit any video and is cut with an ellipsis by design).
SAMPLE_PRODUCTS = (
    Product(
        id="sample-1", title="Heritage Trail Runner GTX waterproof leather hiking boots, wide fit",
        brand="Kestrel & Co Outdoor", category="Sneakers", price=Decimal("1249.99"),
        currency="EUR", image="sample-1.png", url="https://shop.example/p/1",
    ),
    Product(
        id="sample-2", title="Nordic Studio Wireless Noise-Cancelling Headphones",
        brand="Lumen Audio", category="Headphones", price=Decimal("329.00"), currency="EUR",
        image="sample-2.png", url="https://shop.example/p/2",
    ),
    Product(
        id="sample-3", title="Everyday Insulated Stainless Steel Bottle 750 ml",
        brand="Tidewater", category="Bottles", price=Decimal("34.95"), currency="EUR",
        image="sample-3.png", url="https://shop.example/p/3",
    ),
)  # fmt: skip
SAMPLE_PREVIOUS_PRICES = {"sample-1": Decimal("1699.00")}
SAMPLE_CUSTOMERS = (
    Customer(id="sample", email="s@example.com", first_name="Maximiliana", locale="de_DE"),
    Customer(id="sample", email="s@example.com", first_name="Christopher", locale="fr_FR"),
)
_COLORS = {"Sneakers": (226, 88, 64), "Headphones": (52, 60, 84), "Bottles": (40, 170, 200)}


@dataclass(frozen=True)
class Issue:
    """One problem `check_template` found: which aspect and layer, and what is wrong."""

    kind: Literal["overflow", "contrast", "still"]
    aspect: str
    layer: str
    message: str

    def __str__(self) -> str:
        return f"[{self.aspect}] {self.layer}: {self.kind}: {self.message}"


def sample_images(folder: Path) -> Path:
    """Write studio-style photos of the sample products into `folder`; returns it."""
    for product in SAMPLE_PRODUCTS:
        path = folder / product.image
        if path.exists():
            continue
        size = 900
        t = np.linspace(0.0, 1.0, size)[:, None, None]
        rows = (1 - t) * np.array([246, 243, 238]) + t * np.array([222, 216, 208])
        image = Image.fromarray(np.repeat(rows, size, axis=1).astype(np.uint8), "RGB")
        draw_product(image, product.category, _COLORS[product.category])
        image.save(path, compress_level=1)
    return folder


def sample_storyboards(template: Template, images_root: Path) -> Iterator[tuple[str, Storyboard]]:
    """(scenario name, storyboard) for every sample case of `template`'s aspect."""
    pick = Pick(
        customer_id="sample",
        product_ids=tuple(p.id for p in SAMPLE_PRODUCTS),
        scores=(1.0, 0.9, 0.8),
        reasons=("sample",) * 3,
        model_version="sample",
    )
    products = {p.id: p for p in SAMPLE_PRODUCTS}
    for customer in SAMPLE_CUSTOMERS:
        for variant in range(len(template.spec.headlines)):
            for personalize in (True, False):
                for previous in (SAMPLE_PREVIOUS_PRICES, None):
                    name = (
                        f"{customer.locale}, headline {variant}"
                        f"{', personalized' if personalize else ''}"
                        f"{', price drop' if previous else ''}"
                    )
                    yield (
                        name,
                        build_storyboard(
                            template,
                            pick,
                            products,
                            customer,
                            images_root=images_root,
                            personalize=personalize,
                            headline_variant=variant,
                            previous_prices=previous,
                        ),
                    )


@dataclass(frozen=True)
class ReuseCost:
    """What scene reuse (`creative.scenes`) renders per name in one aspect of a template."""

    aspect: str
    per_name_s: float  # seconds of video rendered for each first name
    duration_s: float
    warnings: tuple[str, ...]

    @property
    def share(self) -> float:
        """The part of each video that is rendered per name (0 … 1)."""
        return self.per_name_s / self.duration_s if self.duration_s else 0.0

    def __str__(self) -> str:
        return (
            f"[{self.aspect}] scene reuse: {self.per_name_s:.2f} s of {self.duration_s:g} s"
            f" ({self.share:.0%}) rendered for each first name, the rest once per product"
        )


#: Above this share of a video rendered per name, `scene_reuse_cost` says what it costs.
LONG_PERSONAL_SHARE = 0.3


def scene_reuse_cost(template: Template, aspect: str | None = None) -> ReuseCost:
    """How much of each video of `template` shows a first name (and so is rendered once
    per name rather than once per product), and where a name sits outside a scene
    declared `personal: true` or makes a long stretch personal."""
    from creative.scenes import plan

    variant = template.variant(aspect or template.aspects[0])
    with tempfile.TemporaryDirectory(prefix="reelcast-check-") as tmp:
        boards = [
            board
            for _, board in sample_storyboards(variant, sample_images(Path(tmp)))
            if any(isinstance(p, TextPart) and p.personal for p in board.layers)
        ]
    spec = variant.spec
    duration = spec.duration_s
    if not boards:
        return ReuseCost(variant.aspect, 0.0, duration, ())
    fps = spec.fps
    per_name = max(sum(s.frames for s in plan(b) if s.personal) for b in boards) / fps
    scenes = {scene.id: scene for scene in spec.scenes}
    warnings: list[str] = []
    named = {p.id for b in boards for p in b.layers if isinstance(p, TextPart) and p.personal}
    for index, layer in enumerate(spec.layers):
        layer_id = variant.layer_id(index)
        if layer_id not in named:
            continue
        scene = scenes.get(layer.scene) if layer.scene else None
        if scene is None:
            warnings.append(
                f"{layer_id}: shows first_name outside any scene: every stretch it is"
                " shown in is rendered per name"
            )
        elif not scene.personal:
            warnings.append(
                f"{layer_id}: shows first_name in scene {scene.id!r}, which is not marked"
                " personal (`personal: true`)"
            )
    if per_name / duration > LONG_PERSONAL_SHARE:
        warnings.append(
            f"{per_name:.2f} s of each {duration:g} s video shows a first name and is"
            f" rendered for every name ({per_name / duration:.0%} of the render time per"
            " customer); put the name in a short opening scene and keep it out of the"
            " headlines (as templates/greeting does) so the rest is rendered once per product"
        )
    return ReuseCost(variant.aspect, per_name, duration, tuple(warnings))


def check_template(template: Template, aspects: Sequence[str] | None = None) -> list[Issue]:
    """Everything that would look wrong in a render of `template`, found without one.

    Checks each of `aspects` (default: all the template has). Empty means fine.
    """
    issues: list[Issue] = []
    with tempfile.TemporaryDirectory(prefix="reelcast-check-") as tmp:
        images = sample_images(Path(tmp))
        for aspect in aspects or template.aspects:
            variant = template.variant(aspect)
            issues += _check_aspect(variant, images)
    return issues


def _check_aspect(template: Template, images: Path) -> list[Issue]:
    aspect = template.aspect
    overflow: dict[str, tuple[str, str]] = {}
    boards = list(sample_storyboards(template, images))
    for _, board in boards:
        for part in board.layers:
            if not isinstance(part, TextPart):
                continue
            pad_x = part.pill.pad_x if part.pill else 0
            pad_y = part.pill.pad_y if part.pill else 0
            fit = fit_text(
                part.text, part.font_path, part.box.w - 2 * pad_x, part.box.h - 2 * pad_y,
                max_lines=part.max_lines, max_size=part.size_max, min_size=part.size_min,
                line_spacing=part.line_spacing,
            )  # fmt: skip
            longest = overflow.get(part.id, ("", ""))[0]
            if fit.truncated and len(part.text) > len(longest):
                overflow[part.id] = (part.text, " / ".join(fit.lines))
    issues = [
        Issue(
            "overflow",
            aspect,
            layer,
            f"{text!r} does not fit its box in the allowed lines even at the minimum size;"
            f" shown as {shown!r}",
        )
        for layer, (text, shown) in overflow.items()
    ]
    # Contrast and stills do not depend on the text length: one board per variant
    # (price drop, back in stock) is enough.
    variants = 2 if any(layer.when for layer in template.spec.layers) else 1
    seen: set[str] = set()
    for _, board in boards[:variants]:
        for layer, ratio in _contrasts(board):
            if ratio < MIN_CONTRAST and layer not in seen:
                seen.add(layer)
                issues.append(
                    Issue(
                        "contrast",
                        aspect,
                        layer,
                        f"contrast {ratio:.2f}:1 with the background under it"
                        f" (WCAG asks for at least {MIN_CONTRAST}:1)",
                    )
                )
    board = boards[0][1]
    for start, end in board.still_spans():
        if end - start > MAX_STILL_S and end < board.format.duration_s - 1e-6:
            issues.append(
                Issue(
                    "still",
                    aspect,
                    "(video)",
                    f"nothing moves from {start:.2f} s to {end:.2f} s: QC would call it"
                    f" frozen (holds over {MAX_STILL_S} s are allowed only at the end)",
                )
            )
    return issues


def _contrasts(board: Storyboard) -> Iterator[tuple[str, float]]:
    """(layer id, contrast) for each text: its color against the pixels under its glyphs.

    The background is the frame without this layer and the layers above it, at the moment
    the text is most visible; a pill counts as background. The 10th percentile over the
    glyph pixels is reported, so a few pixels over a busy spot do not decide.
    """
    composer = FrameComposer(board)
    fmt = board.format
    times = [i / fmt.fps for i in range(fmt.frame_count)]
    for index, part in enumerate(board.layers):
        if not isinstance(part, TextPart):
            continue

        def visibility(t: float, p: TextPart = part) -> tuple[float, float]:
            return (p.timing.opacity(t), -abs(sum(p.timing.offset(t))))

        best = max(times, key=visibility)
        background = composer.frame_at(best, below=index).astype(np.float64)
        invisible = (*part.color[:3], 0)
        if part.pill is not None:
            pill_only = draw_static(
                part.model_copy(update={"color": invisible}), fmt.width, fmt.height
            )
            if pill_only is not None:
                _over(background, pill_only.x, pill_only.y, pill_only.rgb, pill_only.alpha)
        glyphs_only = part.model_copy(
            update={"color": (255, 255, 255, 255), "strike": None,
                    "pill": None if part.pill is None else part.pill.model_copy(
                        update={"color": (0, 0, 0, 0)})}
        )  # fmt: skip
        glyphs = draw_static(glyphs_only, fmt.width, fmt.height)
        if glyphs is None:
            continue
        region = background[glyphs.y : glyphs.y + glyphs.height, glyphs.x : glyphs.x + glyphs.width]
        under = region[glyphs.alpha[: region.shape[0], : region.shape[1]] > 160]
        if under.size == 0:
            continue
        text_alpha = part.color[3] / 255
        text = np.array(part.color[:3], np.float64) * text_alpha + under * (1 - text_alpha)
        ratio = _contrast(_luminance(text), _luminance(under))
        yield part.id, float(np.percentile(ratio, 10))


def _over(dst: np.ndarray, x: int, y: int, rgb: np.ndarray, alpha: np.ndarray) -> None:
    region = dst[y : y + rgb.shape[0], x : x + rgb.shape[1]]
    a = alpha[: region.shape[0], : region.shape[1], None] / 255
    region[...] = rgb[: region.shape[0], : region.shape[1]] * a + region * (1 - a)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colors (…, 3) in 0…255."""
    c = rgb / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    luminance: np.ndarray = linear @ np.array([0.2126, 0.7152, 0.0722])
    return luminance


def _contrast(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    ratio: np.ndarray = (hi + 0.05) / (lo + 0.05)
    return ratio


def contrast_ratio(color_a: tuple[int, ...], color_b: tuple[int, ...]) -> float:
    """WCAG contrast ratio of two sRGB colors (1 … 21)."""
    la = _luminance(np.array(color_a[:3], np.float64))
    lb = _luminance(np.array(color_b[:3], np.float64))
    return float(_contrast(la, lb))


def preview_template(
    template: Template, out_png: Path, *, frames: int = 8, columns: int = 4
) -> Path:
    """Render `frames` sample frames of `template` (its aspect) into one PNG contact sheet.

    The frames are spread over the video with the poster moment among them; each is
    labelled with its time. Uses the first sample scenario (price drop, personalized).
    """
    with tempfile.TemporaryDirectory(prefix="reelcast-preview-") as tmp:
        images = sample_images(Path(tmp))
        _, board = next(sample_storyboards(template, images))
        composer = FrameComposer(board)
        fmt = board.format
        last = fmt.duration_s - 1 / fmt.fps
        spread = np.linspace(0.4, last, frames - 1)
        times = sorted({round(float(t), 2) for t in spread} | {round(board.poster_s, 2)})
        thumbs = [Image.fromarray(composer.frame_at(t)) for t in times]
    thumb_w = 270 if fmt.width < fmt.height else 360
    thumb_h = round(fmt.height * thumb_w / fmt.width)
    label_h, gap = 26, 12
    rows = -(-len(thumbs) // columns)
    sheet = Image.new(
        "RGB",
        (gap + columns * (thumb_w + gap), gap + rows * (thumb_h + label_h + gap)),
        (236, 238, 242),
    )
    draw = ImageDraw.Draw(sheet)
    font_file = template.font_path(next(iter(template.spec.brand.fonts.values()), "DejaVuSans.ttf"))
    font = ImageFont.truetype(str(font_file), 15)
    for i, (t, thumb) in enumerate(zip(times, thumbs, strict=True)):
        x = gap + (i % columns) * (thumb_w + gap)
        y = gap + (i // columns) * (thumb_h + label_h + gap)
        sheet.paste(thumb.resize((thumb_w, thumb_h), Image.Resampling.LANCZOS), (x, y))
        poster = " · poster" if abs(t - board.poster_s) < 0.01 else ""
        draw.text((x, y + thumb_h + 5), f"{t:.2f} s{poster}", fill=(40, 44, 52), font=font)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, optimize=True)
    return out_png
