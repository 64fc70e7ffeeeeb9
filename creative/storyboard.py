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
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import jinja2
from babel.numbers import format_currency
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from creative.errors import CreativeError, TemplateError
from creative.template import (
    PERSONAL_VARIABLES,
    PRICE_DROP_VARIABLES,
    RGBA,
    TEMPLATE_FILE,
    Ease,
    GradientLayer,
    ImageLayer,
    LogoLayer,
    RectLayer,
    Template,
    TextLayer,
    render_text,
    text_variables,
)
from retail.image_check import image_problem
from retail.image_files import ImageFiles, ImageNotHere
from retail.types import Customer, Pick, Product

# Bump when the drawing code changes what the same storyboard looks like, so old renders
# are not reused for new pixels.
RECIPE_VERSION = 2

# ASCII whitespace only: the no-break spaces Babel puts in prices must survive.
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def ease(kind: str, x: float) -> float:
    """Easing curve `kind` at x in [0, 1] (cubic: gentle starts and stops)."""
    x = min(max(x, 0.0), 1.0)
    if kind == "in":
        return x * x * x
    if kind == "out":
        return 1 - (1 - x) ** 3
    if kind == "in_out":
        return 4 * x * x * x if x < 0.5 else 1 - (-2 * x + 2) ** 3 / 2
    return x


class Motion(_Value):
    """An entrance: a fade from 0, or a slide from (dx, dy) pixels away to the layer's place.

    A layer's own slide and its scene's transition are motions; they combine (opacities
    multiply, offsets add), so a scene moves as one while its layers keep their own moves.
    """

    kind: Literal["fade", "slide"]
    start: float
    duration: float
    dx: int = 0
    dy: int = 0
    ease: Ease = "out"

    def progress(self, t: float) -> float:
        """The eased progress 0 … 1 of the motion at `t`."""
        if self.duration <= 0:
            return 1.0 if t >= self.start else 0.0
        return ease(self.ease, (t - self.start) / self.duration)


class Timing(_Value):
    """When a layer is shown (seconds), how long it fades in and out, how it comes in."""

    start: float
    end: float
    fade_in: float = 0
    fade_out: float = 0
    motions: tuple[Motion, ...] = ()

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
        level = level * level * (3 - 2 * level)  # smoothstep: no visible start/stop jerk
        for motion in self.motions:
            if motion.kind == "fade":
                level *= motion.progress(t)
        return level

    def offset(self, t: float) -> tuple[int, int]:
        """How far (whole pixels) the layer is from its place at `t` because of slides."""
        dx = dy = 0.0
        for motion in self.motions:
            if motion.kind == "slide":
                remaining = 1.0 - motion.progress(t)
                dx += motion.dx * remaining
                dy += motion.dy * remaining
        return round(dx), round(dy)

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
    zoom_ease: Ease = "linear"
    focus: tuple[float, float] = (0.5, 0.5)
    radius: int = 0

    @property
    def moving(self) -> bool:
        """True if the image changes from frame to frame."""
        return self.zoom_start != self.zoom_end

    def zoom(self, t: float) -> float:
        """The zoom factor at `t` (eased, geometric: equal ratios look like equal speed)."""
        progress = ease(self.zoom_ease, self.timing.progress(t))
        ratio: float = (self.zoom_end / self.zoom_start) ** progress
        return self.zoom_start * ratio


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
    strike: RGBA | None = None
    personal: bool = Field(
        default=False,
        description="shows the customer's first name (scene reuse and erasure treat the "
        "pieces holding it as the customer's own); not part of the key",
    )


class AudioPart(_Value):
    """The audio bed: a file trimmed to the video, faded out, normalized to `loudness`."""

    path: Path
    sha256: str
    loudness: float
    fade_out: float


class GifSpec(_Value):
    """The stretch of the video that becomes the email GIF preview."""

    start: float = 0
    duration: float = 3
    fps: int = 10
    width: int = 240


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
    #: a keyframe at least this often: players seek to it, and QC decodes only keyframes
    #: of a local render to check the file holds the rendered frames (`creative.qc`)
    keyframe_s: float = Field(default=2.0, gt=0, le=10)


class Storyboard(_Value):
    """Everything that decides the pixels of one video, bottom layer first."""

    template: str
    template_version: str
    format: VideoFormat
    poster_s: float
    encode: Encode = Encode()
    layers: tuple[Part, ...]
    audio: AudioPart | None = None
    gif: GifSpec = GifSpec()
    max_file_mb: float = Field(default=4.0, description="QC budget; not part of the key")
    shows: tuple[str, ...] = Field(
        default=(),
        description="ids of the products the video's texts are about, the hero first (for "
        "the claims check: the prices on screen are theirs); not part of the key",
    )
    generated_media: bool = Field(
        default=False,
        description="the template shows media a generative model made, so the copy must "
        "carry an AI label (the claims check); not part of the key (the label's text is)",
    )
    cuts: tuple[float, ...] = Field(
        default=(),
        description="scene boundaries (s): where a render may be cut into pieces that are "
        "encoded on their own and joined (`creative.scenes`); not part of the key",
    )
    struck_prices: dict[str, Decimal] = Field(
        default_factory=dict,
        description='product id → the struck-through "was" price the video shows (the '
        "claims check holds it against the feed and the price history); not part of the "
        "key (the texts are)",
    )

    def texts(self) -> list[str]:
        """Every text the video shows, bottom layer first (for the PII and claims scan)."""
        return [part.text for part in self.layers if isinstance(part, TextPart)]

    def key(self) -> str:
        """sha256 of everything that affects the pixels; names the rendered files.

        File paths are left out (image contents count through their sha256, fonts through
        the template version), so the key is the same on every machine.
        """
        payload = self.model_dump(
            mode="json",
            exclude={
                "layers": {"__all__": {"path", "font_path", "personal"}},
                "audio": {"path"},
                "max_file_mb": True,
                "shows": True,
                "cuts": True,
                "generated_media": True,
                "struck_prices": True,
            },
        )
        payload["recipe"] = RECIPE_VERSION
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def still_spans(self, min_step_px: float = 0.1) -> list[tuple[float, float]]:
        """Stretches (start s, end s) over which the design shows no perceptible change.

        Computed from the layer timings, not from pixels, so QC can tell an intended still
        (an end card held for a second) from a frozen encode. A zoom moving the image's
        edge by less than `min_step_px` per frame counts as still: x264 turns such steps
        into repeated frames, and they look still too.
        """
        fps, count = self.format.fps, self.format.frame_count
        spans: list[tuple[float, float]] = []

        def state(t: float) -> tuple[tuple[int, tuple[int, int]], ...]:
            return tuple(
                (round(p.timing.opacity(t) * 255), p.timing.offset(t)) for p in self.layers
            )

        zooms = [
            (p, max(p.box.w, p.box.h) / 2)
            for p in self.layers
            if isinstance(p, ImagePart) and p.moving
        ]
        run_start = 0
        previous = state(0.0)
        for index in range(1, count + 1):
            changed = index == count
            if not changed:
                t0, t1 = (index - 1) / fps, index / fps
                current = state(t1)
                changed = current != previous
                previous = current
                for part, half in zooms:
                    if part.timing.opacity(t1) > 0:
                        step = abs(part.zoom(t1) / part.zoom(t0) - 1) * half
                        changed = changed or step >= min_step_px
            if changed:
                if index - run_start > 1:
                    spans.append((run_start / fps, index / fps))
                run_start = index
        return spans

    def with_encode(self, encode: Encode) -> Storyboard:
        """The same storyboard encoded differently (and so with a different key)."""
        return self if encode == self.encode else self.model_copy(update={"encode": encode})


def build_storyboard(
    template: Template,
    pick: Pick,
    products: Mapping[str, Product],
    customer: Customer,
    *,
    images_root: Path | ImageFiles,
    personalize: bool = True,
    headline_variant: int = 0,
    previous_prices: Mapping[str, Decimal] | None = None,
) -> Storyboard:
    """Resolve `template` for one customer's Pick into a Storyboard.

    The first product of the Pick is the hero; a text or image layer with `product: n`
    shows the n-th. Prices are formatted with Babel in the customer's locale; `price` is
    what the customer pays now (`Product.price_now`: the feed's `sale_price` when it has one).
    `first_name` reaches the texts only if `personalize` is true; otherwise each text that
    uses it shows its fallback.

    The hero's "was/now" (the layers marked `when: price_drop`, variables `old_price` and
    `saving`) comes first from the feed: a hero with a `sale_price` shows its regular
    `price` struck through. Only a hero without one falls back to `previous_prices`
    (product id → an observed earlier price), used when it is above the current price.
    The feed wins because it is what the claims check can hold the "was" to (and, where a
    price history is known, the Omnibus lowest-prior-price rule too); an observed price is
    ignored for a product on sale. Without a "was" the `when: back_in_stock` layers show
    instead. The struck price is kept in `Storyboard.struck_prices` for the claims check.
    Raises CreativeError for a Pick that names an unknown product, a missing/unreadable
    image or a remote image URL.
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

    def product_context(product: Product) -> dict[str, str]:
        return {
            "title": product.title,
            "brand": product.brand,
            "category": product.category,
            "price": format_currency(product.price_now, product.currency, locale=customer.locale),
            "store": spec.brand.name,
        }

    context = product_context(hero)
    now = hero.price_now
    old = hero.price if hero.sale_price is not None else (previous_prices or {}).get(hero.id)
    price_drop = old is not None and old > now
    if price_drop:
        assert old is not None
        context["old_price"] = format_currency(old, hero.currency, locale=customer.locale)
        context["saving"] = f"−{int((1 - now / old) * 100)} %"
    if personalize:
        context["first_name"] = customer.first_name
    variant = spec.headlines[headline_variant]
    headline_personal = bool(text_variables(variant.text) & PERSONAL_VARIABLES)
    context["headline"] = _text(
        template,
        f"headlines[{headline_variant}]",
        variant.text,
        variant.fallback,
        context,
        personalize,
    )

    width, height = spec.canvas.width, spec.canvas.height
    scenes = {scene.id: scene for scene in spec.scenes}
    parts: list[Part] = []
    shown: set[int] = set()  # the products the texts are about (0, the hero, by default)
    claims_was = False  # a text shows the "was" price or the saving computed from it
    for index, layer in enumerate(spec.layers):
        if layer.when is not None and (layer.when == "price_drop") != price_drop:
            continue
        if isinstance(layer, TextLayer):
            shown.add(layer.product)
            used = text_variables(layer.text) | text_variables(layer.fallback or "")
            claims_was = claims_was or bool(used & PRICE_DROP_VARIABLES)
        layer_id = template.layer_id(index)
        box = PxBox(
            x=round(layer.box.x * width),
            y=round(layer.box.y * height),
            w=max(1, round(layer.box.w * width)),
            h=max(1, round(layer.box.h * height)),
        )
        motions = []
        if layer.slide is not None:
            side, distance = layer.slide.side, layer.slide.distance
            dx = {"left": -1, "right": 1}.get(side, 0) * round(distance * width)
            dy = {"top": -1, "bottom": 1}.get(side, 0) * round(distance * height)
            motions.append(
                Motion(
                    kind="slide",
                    start=layer.start,
                    duration=layer.slide.duration,
                    dx=dx,
                    dy=dy,
                    ease=layer.slide.ease,
                )
            )
        scene = scenes.get(layer.scene) if layer.scene else None
        if scene is not None and scene.transition.type != "cut" and scene.transition.duration > 0:
            move = scene.transition
            motions.append(
                Motion(
                    kind="fade" if move.type == "fade" else "slide",
                    start=scene.start,
                    duration=move.duration,
                    dx=width if move.type == "slide_left" else 0,
                    dy=height if move.type == "slide_up" else 0,
                    ease=move.ease,
                )
            )
        timing = Timing(
            start=layer.start,
            end=spec.duration_s if layer.end is None else layer.end,
            fade_in=layer.fade_in,
            fade_out=layer.fade_out,
            motions=tuple(motions),
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
                    zoom_ease=layer.zoom.ease,
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
            if layer.product >= len(chosen):
                raise CreativeError(
                    f"template {template.name!r} layer {layer_id!r} names product"
                    f" {layer.product + 1} but the pick for customer {customer.id!r}"
                    f" has {len(chosen)}"
                )
            layer_context = context
            if layer.product:
                layer_context = context | product_context(chosen[layer.product])
            text = _text(
                template, f"layers[{index}]", layer.text, layer.fallback, layer_context, personalize
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
                    strike=None if layer.strike is None else template.color(layer.strike),
                    personal=personalize and _personal(layer.text, headline_personal),
                )
            )
    poster_s = spec.poster_s if spec.poster_s is not None else 0.4 * spec.duration_s
    audio = None
    if spec.audio is not None and template.audio_path is not None:
        path, digest = _file_digest(template.audio_path, f"audio bed of {template.name!r}")
        audio = AudioPart(
            path=path, sha256=digest, loudness=spec.audio.loudness, fade_out=spec.audio.fade_out
        )
    bounds = {t for scene in spec.scenes for t in (scene.start, scene.end)}
    cuts = sorted(t for t in bounds if 0 < t < spec.duration_s)
    return Storyboard(
        template=template.name,
        template_version=template.version,
        format=VideoFormat(width=width, height=height, fps=spec.fps, duration_s=spec.duration_s),
        poster_s=poster_s,
        layers=tuple(parts),
        audio=audio,
        # Portrait GIFs at 240 px wide, square and landscape ones at 320: email column widths.
        gif=GifSpec(
            **spec.gif.model_dump(exclude={"width"}),
            width=spec.gif.width if height > width else max(spec.gif.width, 320),
        ),
        max_file_mb=spec.max_file_mb,
        shows=tuple(chosen[i].id for i in sorted(shown) if i < len(chosen)),
        cuts=tuple(cuts),
        generated_media=spec.generated_media,
        struck_prices={hero.id: old} if claims_was and old is not None else {},
    )


def _personal(source: str, headline_personal: bool) -> bool:
    """Whether a text field shows the first name (itself, or through a personal headline)."""
    used = text_variables(source)
    return bool(used & PERSONAL_VARIABLES) or ("headline" in used and headline_personal)


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
    """Render one text field; product data are variables, so they are never evaluated.

    `field` is the text's place in the template (`layers[3]`, `headlines[0]`). Anything the
    text's expression does wrong at render time (unsafe attribute access the sandbox
    refuses, `1/0`, a filter applied to the wrong type…) is a TemplateError naming the
    template file and the field (`….text` or `….fallback`), never a crash.
    """
    chosen, part = (source, "text") if personalize or fallback is None else (fallback, "fallback")
    try:
        return _SPACES.sub(" ", render_text(chosen, context)).strip()
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        # The expression is the template author's. Python's own messages often quote the
        # value ("could not convert string to float: 'Anna'"): only the error's name is
        # shown for those, so no customer's data reaches a log or the flow's state.
        shown = f"{template.folder.name}/{TEMPLATE_FILE}"
        where = f"{field}.{part}"
        if isinstance(exc, jinja2.TemplateError):
            detail = str(exc) if exc.message else type(exc).__name__
        else:
            detail = f"cannot render the text ({type(exc).__name__})"
        raise TemplateError(f"{shown}: {where}: {detail}") from None


def _product_image(product: Product, images: Path | ImageFiles) -> tuple[Path, str]:
    try:
        path = ImageFiles.of(images).path(product.image)
    except ImageNotHere as exc:
        raise CreativeError(f"product {product.id!r}: image: {exc}") from None
    return _image_file(path, f"product {product.id!r} image")


def _image_file(path: Path, what: str) -> tuple[Path, str]:
    try:
        stat = path.stat()
    except OSError:
        raise CreativeError(f"{what}: file not found ({path})") from None
    return path, _checked_digest(path, stat.st_mtime_ns, stat.st_size, what)


@lru_cache(maxsize=4096)
def _checked_digest(path: Path, mtime_ns: int, size: int, what: str) -> str:
    """sha256 of an image file that Pillow can open (cached per file version)."""
    problem = image_problem(path)  # from the header: a bomb is never decoded
    if problem is not None:
        raise CreativeError(f"{what}: {problem}")
    data = path.read_bytes()
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise CreativeError(f"{what}: not a readable image ({exc})") from None
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path, what: str) -> tuple[Path, str]:
    try:
        stat = path.stat()
    except OSError:
        raise CreativeError(f"{what}: file not found ({path})") from None
    return path, _plain_digest(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _plain_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
