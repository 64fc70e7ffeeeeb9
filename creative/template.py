"""Video templates: a folder `templates/<name>/` holding `template.yaml`.

The YAML is parsed first and validated with pydantic; only afterwards are the text fields
rendered, one by one, with a sandboxed Jinja2 environment. Product data therefore only
ever enters as a template *variable*: a title containing `{{ }}`, `{% %}`, YAML or HTML is
shown literally and never evaluated. Geometry is relative (fractions of the canvas: x and
widths of its width, y and heights of its height, font sizes of its height), times are
seconds.

One template serves several aspect ratios (`aspects:` 9:16, 1:1, 16:9). The first aspect is
the reference the layers are written for; another aspect gives its own canvas and safe area,
optional named `regions` (a layer with `region: copy` is placed relative to that rectangle,
so a text column can sit below the image in 9:16 and beside it in 16:9), a `text_scale`,
and any layer may override fields per aspect with `at: {"16:9": {...}}`. `resolve` turns
all of that into plain absolute layers for one aspect, which is what the rest of the
package sees. Scenes group layers in time: a layer's times are relative to its scene,
and the scene's `transition` (fade or slide) animates all its layers as one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2 import Template as JinjaTemplate
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from creative.errors import TemplateError
from creative.textfit import line_metrics

TEMPLATE_FILE = "template.yaml"
FONTS_DIR = "fonts"

# What a text field may use. `first_name` exists only when personalization is allowed.
TEXT_VARIABLES = frozenset({"title", "brand", "category", "price", "store", "headline"})
PERSONAL_VARIABLES = frozenset({"first_name"})
# Known only when the storyboard is given the product's previous, higher price.
PRICE_DROP_VARIABLES = frozenset({"old_price", "saving"})
ASPECTS = ("9:16", "1:1", "16:9")

RGBA = tuple[int, int, int, int]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_LAYER_TYPES = frozenset({"rect", "gradient", "image", "logo", "text"})
_ID = r"^[a-z][a-z0-9_]{0,39}$"
Ease = Literal["linear", "in", "out", "in_out"]
_EPS = 1e-6

# Autoescape off: the output is pixels, not HTML, so markup must come out verbatim.
_JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Canvas(_Spec):
    """Frame size in pixels; H.264 with 4:2:0 chroma needs even sizes."""

    width: int = Field(default=720, ge=64, le=4096)
    height: int = Field(default=1280, ge=64, le=4096)

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"{value} must be even (H.264 4:2:0 needs even sizes)")
        return value


class Box(_Spec):
    """A rectangle in fractions of the canvas."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _on_canvas(self) -> Box:
        if self.x + self.w > 1 + _EPS or self.y + self.h > 1 + _EPS:
            raise ValueError("box leaves the canvas (x + w and y + h must be at most 1)")
        return self


class SafeArea(_Spec):
    """Margins (fractions of the canvas) that every text box must stay inside."""

    x: float = Field(default=0.05, ge=0, lt=0.5)
    y: float = Field(default=0.04, ge=0, lt=0.5)


class Region(Box):
    """A named rectangle of one aspect that layers can be placed in (`region: copy`)."""


class Aspect(_Spec):
    """One aspect-ratio variant: its canvas, safe area, regions and text scale."""

    canvas: Canvas
    safe_area: SafeArea = SafeArea()
    text_scale: float = Field(
        default=1.0, gt=0, le=4, description="font sizes × this (they are fractions of height)"
    )
    regions: dict[str, Region] = Field(default_factory=dict)


class Transition(_Spec):
    """How a scene comes in: a cut, a fade over what was there, or a slide covering it."""

    type: Literal["cut", "fade", "slide_left", "slide_up"] = "cut"
    duration: float = Field(default=0.5, ge=0, le=3)
    ease: Ease = "in_out"


class Scene(_Spec):
    """A stretch of the video; its layers' times are relative to its start."""

    id: str = Field(pattern=_ID)
    start: float = Field(ge=0)
    end: float = Field(gt=0, description="when the next scene has fully covered this one")
    transition: Transition = Transition()
    personal: bool = Field(
        default=False,
        description="may show the customer's first name: the scene is rendered per name, "
        "the others once per campaign (`template check` warns about a name elsewhere)",
    )


class Slide(_Spec):
    """A layer sliding into place from one side as it appears."""

    side: Literal["left", "right", "top", "bottom"] = "bottom"
    distance: float = Field(
        default=0.05, gt=0, le=1.5, description="fraction of the canvas width or height"
    )
    duration: float = Field(default=0.5, gt=0, le=5)
    ease: Ease = "out"


class AudioBed(_Spec):
    """Background music, trimmed to the video, faded out and normalized to `loudness`."""

    file: str = Field(description="path relative to the assets folder")
    loudness: float = Field(default=-16, ge=-30, le=-9, description="integrated LUFS")
    fade_out: float = Field(default=1.0, ge=0, le=5)


class GifPreview(_Spec):
    """Which stretch of the video becomes the email GIF, and how big it is."""

    start: float = Field(default=0, ge=0)
    duration: float = Field(default=3, gt=0, le=6)
    fps: int = Field(default=10, ge=4, le=15)
    width: int = Field(default=240, ge=120, le=480)


class BrandKit(_Spec):
    """The retailer's look: store name, named colors, named fonts, optional logo.

    In template.yaml, `brand: {kit: brand/northwind.yaml}` loads a kit file shared by all
    templates (relative to the assets folder); fields given beside `kit` are added to it
    (colors and fonts merged, the template's winning).
    """

    kit: str | None = Field(default=None, description="the shared kit file it came from")
    name: str = Field(min_length=1, max_length=80)
    colors: dict[str, str] = Field(min_length=1)
    fonts: dict[str, str] = Field(default_factory=dict)
    logo: str | None = Field(default=None, description="path relative to the assets folder")


class Headline(_Spec):
    """One headline variant; `fallback` is shown when personalization is off."""

    text: str = Field(min_length=1, max_length=300)
    fallback: str | None = Field(default=None, min_length=1, max_length=300)


class _Layer(_Spec):
    id: str | None = Field(default=None, pattern=_ID)
    box: Box
    start: float = Field(default=0, ge=0)
    end: float | None = Field(
        default=None, gt=0, description="defaults to the scene's end, else duration_s"
    )
    fade_in: float = Field(default=0, ge=0)
    fade_out: float = Field(default=0, ge=0)
    slide: Slide | None = None
    scene: str | None = Field(default=None, pattern=_ID)
    region: str | None = Field(default=None, description="box is relative to this region")
    when: Literal["price_drop", "back_in_stock"] | None = Field(
        default=None, description="shown only in this variant of a price-drop template"
    )
    at: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-aspect overrides of this layer's fields"
    )


class RectLayer(_Layer):
    """A filled (optionally rounded) rectangle: panels, bars, full-screen cards."""

    type: Literal["rect"]
    color: str
    opacity: float = Field(default=1, ge=0, le=1)
    radius: float = Field(default=0, ge=0, le=0.5, description="fraction of canvas width")


class GradientLayer(_Layer):
    """A linear gradient between two colors (use #RRGGBBAA for a fade to transparent)."""

    type: Literal["gradient"]
    colors: tuple[str, str]
    direction: Literal["vertical", "horizontal"] = "vertical"


class Zoom(_Spec):
    """Ken Burns zoom factors at the start and the end of the layer's time."""

    start: float = Field(default=1.0, ge=1, le=2)
    end: float = Field(default=1.0, ge=1, le=2)
    ease: Ease = "linear"


class Focus(_Spec):
    """The point of the image (fractions) that the crop and the zoom keep in view."""

    x: float = Field(default=0.5, ge=0, le=1)
    y: float = Field(default=0.5, ge=0, le=1)


class ImageLayer(_Layer):
    """A product image of the Pick (0 = the first product), cropped to the box."""

    type: Literal["image"]
    product: int = Field(default=0, ge=0, le=9)
    fit: Literal["cover", "contain"] = "cover"
    zoom: Zoom = Zoom()
    focus: Focus = Focus()
    radius: float = Field(default=0, ge=0, le=0.5, description="fraction of canvas width")


class LogoLayer(_Layer):
    """The brand kit's logo, fitted inside the box; skipped when the kit has no logo."""

    type: Literal["logo"]


class FontSize(_Spec):
    """Largest and smallest font size, in fractions of the canvas height."""

    max: float = Field(gt=0, le=0.3)
    min: float = Field(gt=0, le=0.3)

    @model_validator(mode="after")
    def _ordered(self) -> FontSize:
        if self.min > self.max:
            raise ValueError("min must not be larger than max")
        return self


class Pill(_Spec):
    """A rounded background hugging the text (price tags, buttons, labels)."""

    color: str
    pad_x: float = Field(default=0.03, ge=0, le=0.2, description="fraction of canvas width")
    pad_y: float = Field(default=0.012, ge=0, le=0.1, description="fraction of canvas height")
    roundness: float = Field(default=1, ge=0, le=1, description="1 = fully round ends")


class TextLayer(_Layer):
    """Text fitted into its box: the largest size that wraps into `max_lines`."""

    type: Literal["text"]
    role: Literal[
        "headline", "title", "price", "old_price", "brand", "store", "cta", "ai_label", "other"
    ] = "other"
    product: int = Field(default=0, ge=0, le=9, description="whose title, brand and price")
    text: str = Field(min_length=1, max_length=500)
    fallback: str | None = Field(default=None, min_length=1, max_length=500)
    font: str
    color: str
    size: FontSize
    max_lines: int = Field(default=2, ge=1, le=8)
    align: Literal["left", "center", "right"] = "left"
    valign: Literal["top", "middle", "bottom"] = "top"
    line_spacing: float = Field(default=1.15, ge=0.8, le=3)
    pill: Pill | None = None
    strike: str | None = Field(default=None, description="color of a line through the text")


Layer = Annotated[
    RectLayer | GradientLayer | ImageLayer | LogoLayer | TextLayer, Field(discriminator="type")
]


_LAYER: TypeAdapter[Layer] = TypeAdapter(Layer)


#: what counts as saying a video is AI-made ("AI-generated", "made with AI", "KI")
AI_CLAIM = re.compile(r"\b(AI|A\.I\.|KI)\b|artificial intelligence", re.IGNORECASE)


#: the label of a video a template made from the shop's own pictures and copy
PERSONALIZED_LABEL = "Personalized video"


def video_label(template: Template, ai_label: str) -> str:
    """What the email and landing page say under a video of `template`: `ai_label` when
    the template shows generated media, else that it is personalized (true of every
    template, and no more)."""
    return ai_label if template.spec.generated_media else PERSONALIZED_LABEL


class TemplateSpec(_Spec):
    """The schema of template.yaml (see `resolve` for what aspects, regions and scenes do)."""

    name: str
    description: str = ""
    generated_media: bool = Field(
        default=False,
        description="true when the template shows media a generative model made (AI "
        "product shots, a synthetic voice): then its label (the `ai_label` layer) must say "
        "so. A template drawing the shop's own pictures and copy must not claim AI.",
    )
    canvas: Canvas = Canvas()
    aspects: dict[str, Aspect] = Field(
        default_factory=dict, description="9:16, 1:1, 16:9; the first is the reference"
    )
    scenes: tuple[Scene, ...] = ()
    audio: AudioBed | None = None
    gif: GifPreview = GifPreview()
    max_file_mb: float = Field(default=4.0, gt=0, le=50, description="QC file size budget")
    duration_s: float = Field(default=8, ge=1, le=60)
    fps: int = Field(default=24, ge=1, le=60)
    poster_s: float | None = Field(default=None, ge=0, description="defaults to 40 % in")
    safe_area: SafeArea = SafeArea()
    brand: BrandKit
    headlines: tuple[Headline, ...] = Field(min_length=1, max_length=5)
    layers: tuple[Layer, ...] = Field(min_length=1, max_length=40)


class Template(BaseModel):
    """A validated template, resolved for one aspect, with its content version.

    `spec` is the resolved spec of `aspect` (absolute boxes and times, no per-aspect
    overrides); `source` is the file as written, from which `variant` resolves the others.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    folder: Path
    assets_dir: Path
    version: str = Field(description="sha256 of the template folder and the assets it uses")
    spec: TemplateSpec
    aspect: str = "9:16"
    source: TemplateSpec | None = None

    @property
    def aspects(self) -> tuple[str, ...]:
        """The aspect ratios this template offers, the reference first."""
        return aspect_names(self.source or self.spec)

    def variant(self, aspect: str) -> Template:
        """The same template resolved for another aspect ratio (raises TemplateError)."""
        if aspect == self.aspect:
            return self
        source = self.source or self.spec
        if aspect not in aspect_names(source):
            raise TemplateError(
                f"template {self.name!r} has no {aspect} variant"
                f" (it has: {', '.join(aspect_names(source))})"
            )
        spec, problems = resolve(source, aspect)
        if problems:  # pragma: no cover - load_template checked every aspect
            raise TemplateError("; ".join(f"{f}: {m}" for f, m in problems))
        return self.model_copy(update={"spec": spec, "aspect": aspect})

    def layer_id(self, index: int) -> str:
        """The id of layer `index`: its own, or `layer<index>`."""
        return self.spec.layers[index].id or f"layer{index}"

    def font_path(self, ref: str) -> Path:
        """The font file for a brand font role (`heading`) or a file name in assets/fonts."""
        return self.assets_dir / FONTS_DIR / self.spec.brand.fonts.get(ref, ref)

    def color(self, ref: str) -> RGBA:
        """A brand color name or `#RRGGBB[AA]` as an RGBA tuple."""
        return parse_color(self.spec.brand.colors.get(ref, ref))

    @property
    def logo_path(self) -> Path | None:
        """The brand kit's logo file, if it has one."""
        logo = self.spec.brand.logo
        return None if logo is None else self.assets_dir / logo

    @property
    def audio_path(self) -> Path | None:
        """The audio bed file, if the template has one."""
        audio = self.spec.audio
        return None if audio is None else self.assets_dir / audio.file


def aspect_names(spec: TemplateSpec) -> tuple[str, ...]:
    """The aspects of a template: its `aspects` keys, or the one its canvas has."""
    if spec.aspects:
        return tuple(spec.aspects)
    return (_ratio_name(spec.canvas.width, spec.canvas.height),)


def _ratio_name(width: int, height: int) -> str:
    for name in ASPECTS:
        w, h = (int(v) for v in name.split(":"))
        if abs(width * h - height * w) <= max(width, height) * 0.01:
            return name
    return f"{width}x{height}"


def resolve(spec: TemplateSpec, aspect: str) -> tuple[TemplateSpec, list[tuple[str, str]]]:
    """`spec` for one aspect: overrides applied, regions and scenes made absolute.

    Font sizes scale by the aspect's `text_scale`; pill paddings and corner radii scale so
    that their size in pixels keeps its proportion to the text and the shorter side. The
    result's layers have absolute boxes and times (`end` always set). Problems with the
    overrides come back as (field, message) pairs.
    """
    names = aspect_names(spec)
    if spec.aspects:
        this, ref = spec.aspects[aspect], spec.aspects[names[0]]
    else:
        this = ref = Aspect(canvas=spec.canvas, safe_area=spec.safe_area)
    w, h = this.canvas.width, this.canvas.height
    w0, h0 = ref.canvas.width, ref.canvas.height
    text = this.text_scale
    pad_x_scale = text * (h / w) / (h0 / w0)
    radius_scale = (w0 / w) * (min(w, h) / min(w0, h0))
    scenes = {scene.id: scene for scene in spec.scenes}
    problems: list[tuple[str, str]] = []
    layers = []
    for i, layer in enumerate(spec.layers):
        where = f"layers[{i}]"
        for key in layer.at:
            if key not in names:
                problems.append(
                    (f"{where}.at", f"unknown aspect {key!r} (known: {', '.join(names)})")
                )
        override = layer.at.get(aspect)
        if override:
            if not isinstance(override, dict) or {"type", "at"} & set(override):
                problems.append((f"{where}.at.{aspect}", "may not change type or at"))
                continue
            try:
                layer = _LAYER.validate_python(layer.model_dump(exclude={"at"}) | override)
            except ValidationError as exc:
                for e in exc.errors():
                    problems.append((f"{where}.at.{aspect}.{_loc(e['loc'][1:])}", _msg(e["msg"])))
                continue
        box = layer.box
        if layer.region is not None:
            region = this.regions.get(layer.region)
            if region is None:
                known = ", ".join(this.regions) or "none"
                problems.append(
                    (
                        f"{where}.region",
                        f"no region {layer.region!r} in {aspect} (regions: {known})",
                    )
                )
                continue
            box = Box.model_construct(
                x=region.x + box.x * region.w,
                y=region.y + box.y * region.h,
                w=box.w * region.w,
                h=box.h * region.h,
            )
        start, end = layer.start, layer.end
        if layer.scene is not None:
            scene = scenes.get(layer.scene)
            if scene is None:
                known = ", ".join(scenes) or "none"
                problems.append(
                    (f"{where}.scene", f"unknown scene {layer.scene!r} (scenes: {known})")
                )
                continue
            start, end = scene.start + start, scene.end if end is None else scene.start + end
            if layer.end is not None and end > spec.duration_s + _EPS:
                problems.append(
                    (
                        f"{where}.end",
                        f"{layer.end:g} s into scene {scene.id!r} is {end:g} s,"
                        f" past the template's duration_s {spec.duration_s:g}",
                    )
                )
                continue
        update: dict[str, Any] = {
            "box": box,
            "start": start,
            "end": spec.duration_s if end is None else end,
            "region": None,
            "at": {},
        }
        if isinstance(layer, TextLayer):
            update["size"] = FontSize.model_construct(
                max=layer.size.max * text, min=layer.size.min * text
            )
            if layer.pill is not None:
                update["pill"] = layer.pill.model_copy(
                    update={
                        "pad_x": layer.pill.pad_x * pad_x_scale,
                        "pad_y": layer.pill.pad_y * text,
                    }
                )
        if isinstance(layer, RectLayer | ImageLayer):
            update["radius"] = layer.radius * radius_scale
        layers.append(layer.model_copy(update=update))
    resolved = spec.model_copy(
        update={"canvas": this.canvas, "safe_area": this.safe_area, "layers": tuple(layers)}
    )
    return resolved, problems


def parse_color(value: str) -> RGBA:
    """`#RRGGBB` or `#RRGGBBAA` as an RGBA tuple."""
    if not _HEX.fullmatch(value):
        raise ValueError(f"{value!r} is not a color (use #RRGGBB or #RRGGBBAA)")
    digits = value[1:] + ("" if len(value) == 9 else "ff")
    r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def render_text(source: str, context: Mapping[str, str]) -> str:
    """Render one text field in the sandbox; values in `context` are inserted verbatim."""
    return _compile(source).render(**context)


@lru_cache(maxsize=512)
def text_variables(source: str) -> frozenset[str]:
    """The variables a text field uses (raises jinja2.TemplateSyntaxError if malformed)."""
    return frozenset(meta.find_undeclared_variables(_JINJA.parse(source)))


@lru_cache(maxsize=512)
def _compile(source: str) -> JinjaTemplate:
    return _JINJA.from_string(source)


def load_template(
    templates_dir: Path, name: str, assets_dir: Path, aspect: str | None = None
) -> Template:
    """Load and validate `templates_dir/name/template.yaml`, resolved for `aspect`.

    `aspect` is one of the template's aspects (9:16, 1:1, 16:9); None means its first.
    Every aspect is validated, so a template that loads renders in all of them. Raises
    TemplateError naming the file and every bad field, e.g.
    `templates/hero/template.yaml: layers[2].font: font file 'x.ttf' not found in assets/fonts`
    (a problem of one aspect only is tagged: `[16:9] layers[4].box: ...`).
    """
    folder = templates_dir / name
    file = folder / TEMPLATE_FILE
    shown = _shown(file)
    if not _NAME.fullmatch(name):
        raise TemplateError(f"template name {name!r} must be lowercase letters, digits, - or _")
    if not file.is_file():
        available = sorted(p.parent.name for p in templates_dir.glob(f"*/{TEMPLATE_FILE}"))
        raise TemplateError(
            f"{shown}: no such file (templates in {_shown(templates_dir)}: "
            f"{', '.join(available) or 'none'})"
        )
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(f"{shown}{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{shown}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{shown}: expected a mapping of fields at the top level")
    # `x-…` keys hold YAML anchors for reuse (as in docker-compose files); not fields.
    raw = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    brand = raw.get("brand")
    if isinstance(brand, dict) and isinstance(brand.get("kit"), str):
        raw["brand"] = _with_kit(brand, assets_dir, shown)
    try:
        spec = TemplateSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{shown}: {_loc(e['loc'])}: {_msg(e['msg'])}" for e in exc.errors()]
        raise TemplateError("\n".join(lines)) from None
    names = aspect_names(spec)
    if aspect is not None and aspect not in names:
        raise TemplateError(f"{shown}: no {aspect} variant (aspects: {', '.join(names)})")
    per_aspect: dict[str, list[tuple[str, str]]] = {}
    resolved: dict[str, TemplateSpec] = {}
    for each in names:
        resolved[each], found = resolve(spec, each)
        if not found:
            found = list(_problems(resolved[each], name, assets_dir))
        per_aspect[each] = found
    problems = _source_problems(spec, assets_dir)
    for each, found in per_aspect.items():
        for field, msg in found:
            everywhere = all((field, msg) in other for other in per_aspect.values())
            tag = "" if everywhere or len(names) == 1 else f"[{each}] "
            if (f"{tag}{field}", msg) not in problems:
                problems.append((f"{tag}{field}", msg))
    if problems:
        raise TemplateError("\n".join(f"{shown}: {field}: {msg}" for field, msg in problems))
    chosen = aspect or names[0]
    return Template(
        name=name,
        folder=folder,
        assets_dir=assets_dir,
        version=_version(folder, _used_assets(spec, assets_dir)),
        spec=resolved[chosen],
        aspect=chosen,
        source=spec,
    )


def _with_kit(brand: dict[str, Any], assets_dir: Path, shown: str) -> dict[str, Any]:
    """The template's `brand` merged over the shared kit file it names."""
    kit_file = brand["kit"]
    if not _is_file_in(assets_dir, kit_file):
        raise TemplateError(f"{shown}: brand.kit: kit file {kit_file!r} not found in assets")
    try:
        kit = yaml.safe_load((assets_dir / kit_file).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{shown}: brand.kit: {kit_file} is not valid YAML: {exc}") from None
    if not isinstance(kit, dict):
        raise TemplateError(f"{shown}: brand.kit: {kit_file} must be a mapping of fields")
    merged = kit | {k: v for k, v in brand.items() if k not in ("colors", "fonts")}
    for key in ("colors", "fonts"):
        merged[key] = (kit.get(key) or {}) | (brand.get(key) or {})
    return merged


def _source_problems(spec: TemplateSpec, assets_dir: Path) -> list[tuple[str, str]]:
    """Problems of the file as written that do not depend on the aspect."""
    problems = []
    for key in spec.aspects:
        if key not in ASPECTS:
            problems.append((f"aspects.{key}", f"unknown aspect (use {', '.join(ASPECTS)})"))
    seen: set[str] = set()
    for i, scene in enumerate(spec.scenes):
        if scene.id in seen:
            problems.append((f"scenes[{i}].id", f"duplicate scene id {scene.id!r}"))
        seen.add(scene.id)
        if scene.start >= scene.end:
            problems.append((f"scenes[{i}].start", f"{scene.start} is not before its end"))
        if scene.end > spec.duration_s + _EPS:
            problems.append((f"scenes[{i}].end", f"{scene.end} is past duration_s"))
        if scene.transition.duration > scene.end - scene.start + _EPS:
            problems.append((f"scenes[{i}].transition", "longer than the scene"))
    if spec.audio is not None and not _is_file_in(assets_dir, spec.audio.file):
        problems.append(("audio.file", f"audio file {spec.audio.file!r} not found in assets"))
    if spec.gif.start + spec.gif.duration > spec.duration_s + _EPS:
        problems.append(("gif", "start + duration is past the end of the video"))
    return problems


def _problems(spec: TemplateSpec, name: str, assets_dir: Path) -> Iterator[tuple[str, str]]:
    """Everything pydantic cannot see: references between fields and files on disk."""
    if spec.name != name:
        yield "name", f"is {spec.name!r} but the folder is {name!r}"
    colors = spec.brand.colors
    for key, value in colors.items():
        if not _HEX.fullmatch(value):
            yield f"brand.colors.{key}", f"{value!r} is not a color (use #RRGGBB or #RRGGBBAA)"
    for key, file in spec.brand.fonts.items():
        if not _is_file_in(assets_dir / FONTS_DIR, file):
            yield f"brand.fonts.{key}", f"font file {file!r} not found in assets/{FONTS_DIR}"
    if spec.brand.logo is not None and not _is_file_in(assets_dir, spec.brand.logo):
        yield "brand.logo", f"logo file {spec.brand.logo!r} not found in assets"
    if spec.poster_s is not None and spec.poster_s >= spec.duration_s:
        yield "poster_s", f"{spec.poster_s} is not before the end ({spec.duration_s} s)"

    def color_problem(value: str) -> str | None:
        if value in colors or _HEX.fullmatch(value):
            return None
        return f"unknown color {value!r} (brand colors: {', '.join(colors)}; or #RRGGBB[AA])"

    for i, head in enumerate(spec.headlines):
        yield from _text_problems(
            f"headlines[{i}]", head.text, head.fallback, headline=False, price_drop=False
        )

    seen_ids: set[str] = set()
    ai_label_at_end = False
    sa = spec.safe_area
    for i, layer in enumerate(spec.layers):
        where = f"layers[{i}]"
        layer_id = layer.id or f"layer{i}"
        if layer_id in seen_ids:
            yield f"{where}.id", f"duplicate layer id {layer_id!r}"
        seen_ids.add(layer_id)
        end = spec.duration_s if layer.end is None else layer.end
        if end > spec.duration_s + _EPS:
            yield f"{where}.end", f"{end:g} is past the template's duration_s {spec.duration_s:g}"
        if layer.start >= end:
            yield f"{where}.start", f"{layer.start} is not before the layer's end {end}"
        elif layer.fade_in + layer.fade_out > end - layer.start + _EPS:
            yield f"{where}.fade_in", "fade_in + fade_out is longer than the layer is shown"
        if isinstance(layer, RectLayer | TextLayer) and (p := color_problem(layer.color)):
            yield f"{where}.color", p
        if isinstance(layer, GradientLayer):
            for j, c in enumerate(layer.colors):
                if p := color_problem(c):
                    yield f"{where}.colors[{j}]", p
        if not isinstance(layer, TextLayer):
            continue
        if layer.pill is not None and (p := color_problem(layer.pill.color)):
            yield f"{where}.pill.color", p
        if layer.strike is not None and (p := color_problem(layer.strike)):
            yield f"{where}.strike", p
        yield from _text_problems(
            where, layer.text, layer.fallback, headline=True, price_drop=layer.when == "price_drop"
        )
        b = layer.box
        if (
            b.x < sa.x - _EPS
            or b.y < sa.y - _EPS
            or b.x + b.w > 1 - sa.x + _EPS
            or b.y + b.h > 1 - sa.y + _EPS
        ):
            yield (
                f"{where}.box",
                f"text box leaves the safe area (x {sa.x:g}–{1 - sa.x:g}, y {sa.y:g}–{1 - sa.y:g})",
            )
        font_file = spec.brand.fonts.get(layer.font, layer.font)
        if layer.font not in spec.brand.fonts and not font_file.lower().endswith((".ttf", ".otf")):
            roles = ", ".join(spec.brand.fonts) or "none"
            yield (
                f"{where}.font",
                f"unknown font {layer.font!r} (brand fonts: {roles};"
                f" or a .ttf/.otf file in assets/{FONTS_DIR})",
            )
        elif not _is_file_in(assets_dir / FONTS_DIR, font_file):
            if layer.font not in spec.brand.fonts:  # a bad brand font is reported once, above
                yield f"{where}.font", f"font file {font_file!r} not found in assets/{FONTS_DIR}"
        else:
            yield from _size_problems(where, layer, spec, assets_dir / FONTS_DIR / font_file)
        if layer.role == "ai_label" and end >= spec.duration_s - _EPS:
            ai_label_at_end = True
    if not ai_label_at_end:
        yield (
            "layers",
            "no text layer with role 'ai_label' is shown until the end"
            " (every video carries a visible label saying how it was made)",
        )
    labels = [layer.text for layer in spec.layers if isinstance(layer, TextLayer)]
    claims_ai = [text for text in labels if AI_CLAIM.search(text)]
    if spec.generated_media and not claims_ai:
        yield (
            "layers",
            "generated_media is true but no label says so: the 'ai_label' layer must say "
            "the video is AI-generated",
        )
    elif claims_ai and not spec.generated_media:
        yield (
            "generated_media",
            f"the copy says {claims_ai[0]!r} but the template uses no generated media: label "
            "what is true (e.g. 'Personalized for you'), or set generated_media: true when a "
            "generative model made its pictures or voice",
        )


def _text_problems(
    where: str, text: str, fallback: str | None, *, headline: bool, price_drop: bool
) -> Iterator[tuple[str, str]]:
    known = TEXT_VARIABLES | PERSONAL_VARIABLES | PRICE_DROP_VARIABLES
    if not headline:
        known = known - {"headline"}
    for field, source in ((f"{where}.text", text), (f"{where}.fallback", fallback)):
        if source is None:
            continue
        try:
            used = text_variables(source)
        except TemplateSyntaxError as exc:
            yield field, f"template syntax error: {exc.message} (line {exc.lineno})"
            continue
        if unknown := sorted(used - known):
            yield field, f"unknown variable {unknown[0]!r} (known: {', '.join(sorted(known))})"
        if used & PRICE_DROP_VARIABLES and not price_drop:
            yield field, "old_price and saving exist only in layers with `when: price_drop`"
        if source is fallback and used & PERSONAL_VARIABLES:
            yield field, "a fallback is for unpersonalized videos and must not use first_name"
        if source is text and used & PERSONAL_VARIABLES and fallback is None:
            yield field, "uses first_name but has no fallback for unpersonalized videos"


def _size_problems(
    where: str, layer: TextLayer, spec: TemplateSpec, font: Path
) -> Iterator[tuple[str, str]]:
    """The box must hold one line at the minimum size, or fitting could overflow it."""
    width = layer.box.w * spec.canvas.width
    height = layer.box.h * spec.canvas.height
    if layer.pill is not None:
        width -= 2 * layer.pill.pad_x * spec.canvas.width
        height -= 2 * layer.pill.pad_y * spec.canvas.height
    min_px = max(1, round(layer.size.min * spec.canvas.height))
    ascent, descent = line_metrics(font, min_px)
    if ascent + descent > height or width < 2 * min_px:
        yield f"{where}.size.min", "the box cannot hold one line of text at the minimum size"


def _used_assets(spec: TemplateSpec, assets_dir: Path) -> list[Path]:
    files = {assets_dir / FONTS_DIR / f for f in spec.brand.fonts.values()}
    for layer in spec.layers:
        if isinstance(layer, TextLayer):
            files.add(assets_dir / FONTS_DIR / spec.brand.fonts.get(layer.font, layer.font))
    if spec.brand.logo is not None:
        files.add(assets_dir / spec.brand.logo)
    if spec.audio is not None:
        files.add(assets_dir / spec.audio.file)
    if spec.brand.kit is not None:
        files.add(assets_dir / spec.brand.kit)
    return sorted(files)


def _version(folder: Path, assets: list[Path]) -> str:
    """Hash of every file of the template folder plus the fonts and logo it uses."""
    digest = hashlib.sha256()
    files = [
        (p.relative_to(folder).as_posix(), p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts
        )
    ]
    files += [(f"assets/{p.name}", p) for p in assets if p.is_file()]
    for label, path in files:
        data = path.read_bytes()
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _is_file_in(folder: Path, relative: str) -> bool:
    """True if `relative` names a file inside `folder` (no escaping with ../)."""
    path = (folder / relative).resolve()
    return path.is_file() and path.is_relative_to(folder.resolve())


def _loc(loc: tuple[int | str, ...]) -> str:
    """('layers', 2, 'text', 'font') -> 'layers[2].font' (drops the union's tag)."""
    out = ""
    after_index = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            after_index = True
            continue
        if after_index and part in _LAYER_TYPES and out.startswith("layers["):
            after_index = False
            continue
        out += f".{part}" if out else str(part)
        after_index = False
    return out or "(top level)"


def _msg(message: str) -> str:
    return message.removeprefix("Value error, ")


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()
