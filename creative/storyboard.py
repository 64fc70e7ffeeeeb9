"""The Storyboard: one video fully decided, before a single pixel is drawn.

`build_storyboard` is a pure decision over a template, a Pick, the catalog and a customer:
it resolves every text (price formatted for the customer's locale, headline variant,
personalization) and every image path into pixel geometry. The result holds only what is
shown, never the customer's email, last name or phone, and its `key()` addresses the
rendered file: two customers who would see the same pixels share one render.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import jinja2
from babel.numbers import format_currency
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from creative.errors import CreativeError, TemplateError
from creative.template import (
    RGBA,
    TEMPLATE_FILE,
    GradientLayer,
    ImageLayer,
    LogoLayer,
    RectLayer,
    Template,
    TextLayer,
    render_text,
)
from retail.types import Customer, Pick, Product

# Bump when the drawing code changes what the same storyboard looks like, so old renders
# are not reused for new pixels.
RECIPE_VERSION = 1

_REMOTE = re.compile(r"^https?://", re.IGNORECASE)
# ASCII whitespace only: the no-break spaces Babel puts in prices must survive.
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timing(_Value):
    """When a layer is shown (seconds) and how long it fades in and out."""

    start: float
    end: float
    fade_in: float = 0
    fade_out: float = 0

    def opacity(self, t: float) -> float:
        """How visible the layer is at time `t`: 0 hidden … 1 fully shown (eased fades)."""
        if t < self.start or t >= self.end:
            return 0.0
        level = 1.0
        if self.fade_in > 0:
            level = min(level, (t - self.start) / self.fade_in)
        if self.fade_out > 0:
            level = min(level, (self.end - t) / self.fade_out)
        level = min(max(level, 0.0), 1.0)
        return level * level * (3 - 2 * level)  # smoothstep: no visible start/stop jerk

    def progress(self, t: float) -> float:
        """0 at the layer's start … 1 at its end."""
        return min(max((t - self.start) / (self.end - self.start), 0.0), 1.0)


class PxBox(_Value):
    """A rectangle in whole pixels."""

    x: int
    y: int
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class _Part(_Value):
    id: str
    box: PxBox
    timing: Timing


class RectPart(_Part):
    """A filled, optionally rounded rectangle."""

    kind: Literal["rect"] = "rect"
    color: RGBA
    radius: int = 0


class GradientPart(_Part):
    """A two-color linear gradient."""

    kind: Literal["gradient"] = "gradient"
    colors: tuple[RGBA, RGBA]
    direction: Literal["vertical", "horizontal"]


class ImagePart(_Part):
    """An image file cropped (cover) or fitted (contain) to the box, optionally zooming."""

    kind: Literal["image"] = "image"
    path: Path
    sha256: str
    fit: Literal["cover", "contain"]
    zoom_start: float = 1.0
    zoom_end: float = 1.0
    focus: tuple[float, float] = (0.5, 0.5)
    radius: int = 0

    @property
    def moving(self) -> bool:
        """True if the image changes from frame to frame."""
        return self.zoom_start != self.zoom_end


class PillPart(_Value):
    """A rounded background behind a text, in pixels."""

    color: RGBA
    pad_x: int
    pad_y: int
    roundness: float


class TextPart(_Part):
    """A resolved text with everything needed to fit and draw it."""

    kind: Literal["text"] = "text"
    role: str
    text: str
    font: str = Field(description="font file name (its bytes are in the template version)")
    font_path: Path
    color: RGBA
    size_max: int
    size_min: int
    max_lines: int
    align: Literal["left", "center", "right"]
    valign: Literal["top", "middle", "bottom"]
    line_spacing: float
    pill: PillPart | None = None


Part = Annotated[RectPart | GradientPart | ImagePart | TextPart, Field(discriminator="kind")]


class VideoFormat(_Value):
    """Frame size, rate and length."""

    width: int
    height: int
    fps: int
    duration_s: float

    @property
    def frame_count(self) -> int:
        """Number of frames in the video."""
        return round(self.duration_s * self.fps)


class Encode(_Value):
    """How the frames become a file; part of the key because it changes the pixels."""

    codec: Literal["h264"] = "h264"
    pix_fmt: Literal["yuv420p"] = "yuv420p"
    crf: int = Field(default=23, ge=0, le=51)
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
    ] = "veryfast"


class Storyboard(_Value):
    """Everything that decides the pixels of one video, bottom layer first."""

    template: str
    template_version: str
    format: VideoFormat
    poster_s: float
    encode: Encode = Encode()
    layers: tuple[Part, ...]

    def texts(self) -> list[str]:
        """Every text the video shows, bottom layer first (for the PII and claims scan)."""
        return [part.text for part in self.layers if isinstance(part, TextPart)]

    def key(self) -> str:
        """sha256 of everything that affects the pixels; names the rendered files.

        File paths are left out (image contents count through their sha256, fonts through
        the template version), so the key is the same on every machine.
        """
        payload = self.model_dump(
            mode="json", exclude={"layers": {"__all__": {"path", "font_path"}}}
        )
        payload["recipe"] = RECIPE_VERSION
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_encode(self, encode: Encode) -> Storyboard:
        """The same storyboard encoded differently (and so with a different key)."""
        return self if encode == self.encode else self.model_copy(update={"encode": encode})


def build_storyboard(
    template: Template,
    pick: Pick,
    products: Mapping[str, Product],
    customer: Customer,
    *,
    images_root: Path,
    personalize: bool = True,
    headline_variant: int = 0,
) -> Storyboard:
    """Resolve `template` for one customer's Pick into a Storyboard.

    The first product of the Pick is the hero. Prices are formatted with Babel in the
    customer's locale. `first_name` reaches the texts only if `personalize` is true;
    otherwise each text that uses it shows its fallback. Raises CreativeError for a Pick
    that names an unknown product, a missing/unreadable image or a remote image URL.
    """
    spec = template.spec
    if pick.customer_id != customer.id:
        raise CreativeError(f"pick is for customer {pick.customer_id!r}, not {customer.id!r}")
    if not 0 <= headline_variant < len(spec.headlines):
        raise CreativeError(
            f"headline_variant {headline_variant} is out of range: template {template.name!r}"
            f" has {len(spec.headlines)} headlines (0–{len(spec.headlines) - 1})"
        )
    chosen = [_product(pid, products, customer.id) for pid in pick.product_ids]
    hero = chosen[0]
    context = {
        "title": hero.title,
        "brand": hero.brand,
        "category": hero.category,
        "price": format_currency(hero.price, hero.currency, locale=customer.locale),
        "store": spec.brand.name,
    }
    if personalize:
        context["first_name"] = customer.first_name
    variant = spec.headlines[headline_variant]
    context["headline"] = _text(
        template,
        f"headlines[{headline_variant}]",
        variant.text,
        variant.fallback,
        context,
        personalize,
    )

    width, height = spec.canvas.width, spec.canvas.height
    parts: list[Part] = []
    for index, layer in enumerate(spec.layers):
        layer_id = template.layer_id(index)
        box = PxBox(
            x=round(layer.box.x * width),
            y=round(layer.box.y * height),
            w=max(1, round(layer.box.w * width)),
            h=max(1, round(layer.box.h * height)),
        )
        timing = Timing(
            start=layer.start,
            end=spec.duration_s if layer.end is None else layer.end,
            fade_in=layer.fade_in,
            fade_out=layer.fade_out,
        )
        common = {"id": layer_id, "box": box, "timing": timing}
        if isinstance(layer, RectLayer):
            r, g, b, a = template.color(layer.color)
            parts.append(
                RectPart(
                    **common,
                    color=(r, g, b, round(a * layer.opacity)),
                    radius=round(layer.radius * width),
                )
            )
        elif isinstance(layer, GradientLayer):
            parts.append(
                GradientPart(
                    **common,
                    colors=(template.color(layer.colors[0]), template.color(layer.colors[1])),
                    direction=layer.direction,
                )
            )
        elif isinstance(layer, ImageLayer):
            if layer.product >= len(chosen):
                raise CreativeError(
                    f"template {template.name!r} layer {layer_id!r} shows product"
                    f" {layer.product + 1} but the pick for customer {customer.id!r}"
                    f" has {len(chosen)}"
                )
            product = chosen[layer.product]
            path, digest = _product_image(product, images_root)
            parts.append(
                ImagePart(
                    **common,
                    path=path,
                    sha256=digest,
                    fit=layer.fit,
                    zoom_start=layer.zoom.start,
                    zoom_end=layer.zoom.end,
                    focus=(layer.focus.x, layer.focus.y),
                    radius=round(layer.radius * width),
                )
            )
        elif isinstance(layer, LogoLayer):
            logo = template.logo_path
            if logo is not None:  # the logo is optional in the brand kit
                path, digest = _image_file(logo, f"brand logo of template {template.name!r}")
                parts.append(ImagePart(**common, path=path, sha256=digest, fit="contain"))
        elif isinstance(layer, TextLayer):
            text = _text(
                template, f"layers[{index}]", layer.text, layer.fallback, context, personalize
            )
            font_path = template.font_path(layer.font)
            pill = None
            if layer.pill is not None:
                pill = PillPart(
                    color=template.color(layer.pill.color),
                    pad_x=round(layer.pill.pad_x * width),
                    pad_y=round(layer.pill.pad_y * height),
                    roundness=layer.pill.roundness,
                )
            parts.append(
                TextPart(
                    **common,
                    role=layer.role,
                    text=text,
                    font=font_path.name,
                    font_path=font_path,
                    color=template.color(layer.color),
                    size_max=max(1, round(layer.size.max * height)),
                    size_min=max(1, round(layer.size.min * height)),
                    max_lines=layer.max_lines,
                    align=layer.align,
                    valign=layer.valign,
                    line_spacing=layer.line_spacing,
                    pill=pill,
                )
            )
    poster_s = spec.poster_s if spec.poster_s is not None else 0.4 * spec.duration_s
    return Storyboard(
        template=template.name,
        template_version=template.version,
        format=VideoFormat(width=width, height=height, fps=spec.fps, duration_s=spec.duration_s),
        poster_s=poster_s,
        layers=tuple(parts),
    )


def _product(product_id: str, products: Mapping[str, Product], customer_id: str) -> Product:
    try:
        return products[product_id]
    except KeyError:
        raise CreativeError(
            f"the pick for customer {customer_id!r} names product {product_id!r},"
            " which is not in the catalog"
        ) from None


def _text(
    template: Template,
    field: str,
    source: str,
    fallback: str | None,
    context: Mapping[str, str],
    personalize: bool,
) -> str:
    """Render one text field; product data are variables, so they are never evaluated."""
    chosen = source if personalize or fallback is None else fallback
    try:
        return _SPACES.sub(" ", render_text(chosen, context)).strip()
    except jinja2.TemplateError as exc:
        shown = f"{template.folder.name}/{TEMPLATE_FILE}"
        raise TemplateError(f"{shown}: {field}: {exc}") from None


def _product_image(product: Product, images_root: Path) -> tuple[Path, str]:
    if _REMOTE.match(product.image):
        raise CreativeError(
            f"product {product.id!r}: remote images are not supported yet ({product.image});"
            " download the image and give its path relative to the images folder"
        )
    root = images_root.resolve()
    path = (root / product.image).resolve()
    if not path.is_relative_to(root):
        raise CreativeError(
            f"product {product.id!r}: image path {product.image!r} leaves the images folder"
        )
    return _image_file(path, f"product {product.id!r} image {product.image!r}")


def _image_file(path: Path, what: str) -> tuple[Path, str]:
    try:
        stat = path.stat()
    except OSError:
        raise CreativeError(f"{what}: file not found ({path})") from None
    return path, _checked_digest(path, stat.st_mtime_ns, stat.st_size, what)


@lru_cache(maxsize=4096)
def _checked_digest(path: Path, mtime_ns: int, size: int, what: str) -> str:
    """sha256 of an image file that Pillow can open (cached per file version)."""
    data = path.read_bytes()
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise CreativeError(f"{what}: not a readable image ({exc})") from None
    return hashlib.sha256(data).hexdigest()
