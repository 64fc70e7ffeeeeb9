"""Compose one customer's campaign email: HTML + plain text, the preview image inline, links.

Pure apart from reading the images and the templates: the same inputs give the same
message except for `Message-ID` and `Date`. The HTML template is written with a `<style>`
block; css-inline moves every plain rule into `style=""` attributes (what Gmail and
Outlook need) and keeps only the `@media` rules in the head.

`preview_email` turns a composed (or stored) message back into an HTML file a browser can
open, with the inline images as files beside it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

import css_inline
from babel import Locale
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from PIL import Image, ImageOps

from delivery.errors import DeliveryError
from delivery.links import RecipientLinks
from delivery.policy import EMAIL_POLICY, leaf_payload, message_from_bytes
from retail.types import Customer, Product

HTML_TEMPLATE = "email/campaign.html.j2"
TEXT_TEMPLATE = "email/campaign.txt.j2"

THUMBNAIL_PX = 240
"""Product thumbnails in the email: square, this many pixels, drawn at half that size (CSS
pixels) so they are sharp on retina screens."""

GIF_MAX_BYTES = 1_000_000
"""An animated preview larger than this is left out for the poster: big emails get clipped
(Gmail cuts at ~102 KB of HTML and many clients stall on multi-megabyte images)."""

VARIANT_HEADER = "X-Reelcast-Variant"
"""Which subject line variant this message carries ("A", "B", …): read by the report."""

PSEUDONYM_HEADER = "X-Reelcast-Pseudonym"
"""The recipient's pseudonymous id (keyed HMAC): lets provider events be matched without
any personal data."""

# Plain rules go inline; @media rules stay in <style> for clients that honour them.
# Never fetch remote stylesheets: composing must not touch the network.
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class ProductCard:
    """What the email shows of one product, already formatted for the reader's locale."""

    title: str
    brand: str
    price: str
    url: str
    image: str = ""
    """The thumbnail's `src`: `cid:…` for an inline one, the shop's URL for a hosted one,
    or empty (no picture)."""


@dataclass(frozen=True)
class ComposedEmail:
    """A composed message and the choices made for it (no personal data besides `message`)."""

    message: EmailMessage
    subject: str
    variant: str
    """Label of the subject line variant: "A" for the first of the campaign's subjects."""
    variant_index: int
    image: Path
    """The preview image the email shows: the GIF when it fits, else the poster."""


def variant_label(index: int) -> str:
    """ "A", "B", … "Z", then "27", "28", … for the variant at `index` (0-based)."""
    return chr(ord("A") + index) if 0 <= index < 26 else str(index + 1)


def assign_variant(key: str, experiment: str, count: int) -> int:
    """Deterministic variant index in [0, count) for `key` (a customer id) in `experiment`.

    The same key always gets the same variant within an experiment, and assignments in
    different experiments are independent (the experiment name is part of the hash).
    """
    if count < 1:
        raise ValueError("an experiment needs at least one variant")
    digest = hashlib.sha256(f"{experiment}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def choose_subject(subjects: str | Sequence[str], *, key: str, campaign_id: str) -> tuple[int, str]:
    """The subject line variant for the recipient identified by `key`: (index, subject)."""
    variants = [subjects] if isinstance(subjects, str) else list(subjects)
    if not variants or any(not isinstance(v, str) or not v.strip() for v in variants):
        raise DeliveryError(f"campaign {campaign_id}: subject variants must be non-empty text")
    index = assign_variant(key, f"{campaign_id}/subject", len(variants))
    return index, variants[index]


def format_price(amount: Decimal, currency: str, locale: str) -> str:
    """Format a price the way the customer's locale writes it (`€1.234,50` / `$1,234.50`)."""
    return format_currency(amount, currency, locale=locale)


@lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> Environment:
    # Escaping is on for everything but the plain-text part: a product title such as
    # "<script>" must reach an HTML reader as text, and nobody can forget to turn it on.
    return Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=lambda name: name is None or not name.endswith(".txt.j2"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _render(templates_dir: Path, name: str, context: Mapping[str, object]) -> str:
    try:
        return _environment(templates_dir.resolve()).get_template(name).render(context)
    except TemplateError as exc:
        where = f"{templates_dir / name}" + (
            f" line {exc.lineno}" if hasattr(exc, "lineno") else ""
        )
        raise DeliveryError(f"email template {where}: {exc.message or type(exc).__name__}") from exc


def _sender_parts(sender: str) -> tuple[str, str]:
    display, address = parseaddr(sender)
    if "@" not in address:
        raise DeliveryError(
            f"sender must be an address like 'Shop <news@shop.example>': {sender!r}"
        )
    return display or address, address.rpartition("@")[2]


def _image(path: Path, what: str, customer_id: str) -> tuple[str, str]:
    if not path.is_file():
        raise DeliveryError(f"customer {customer_id}: {what} not found at {path}")
    maintype, _, subtype = (mimetypes.guess_type(path.name)[0] or "image/jpeg").partition("/")
    if maintype != "image":
        raise DeliveryError(f"{what} {path} is not an image")
    return maintype, subtype


class _ImageParts:
    """Inline image parts by file, without their Content-ID, each encoded once.

    Keyed by the file's path and its stat (inode, size, modification time), so a file
    rewritten in place is read again. Bounded by the bytes of base64 it holds, least
    recently used first out; thread-safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._parts: OrderedDict[tuple[object, ...], EmailMessage] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        path: Path,
        maintype: str,
        subtype: str,
        filename: str,
        load: Callable[[Path], bytes] = Path.read_bytes,
    ) -> EmailMessage:
        """The part for the bytes `load` makes of `path` (the file itself by default)."""
        stat = path.stat()
        key = (
            str(path),
            stat.st_ino,
            stat.st_size,
            stat.st_mtime_ns,
            maintype,
            subtype,
            filename,
            getattr(load, "__qualname__", repr(load)),
        )
        with self._lock:
            part = self._parts.get(key)
            if part is not None:
                self._parts.move_to_end(key)
                return part
        # As MIMEPart.add_related builds its part: set_content with the disposition given.
        part = EmailMessage(policy=EMAIL_POLICY)
        part.set_content(
            load(path),
            maintype=maintype,
            subtype=subtype,
            disposition="inline",
            filename=filename,
            cid=_CID_PLACEHOLDER,
        )
        size = len(str(part.get_payload()))
        with self._lock:
            if key not in self._parts and size <= self._max_bytes:
                self._parts[key] = part
                self._bytes += size
                while self._bytes > self._max_bytes:
                    _, dropped = self._parts.popitem(last=False)
                    self._bytes -= len(str(dropped.get_payload()))
        return part


_CID_PLACEHOLDER = "<image@reelcast.invalid>"
_IMAGE_PARTS = _ImageParts(max_bytes=64 * 1024 * 1024)


def _image_part(
    path: Path,
    maintype: str,
    subtype: str,
    filename: str,
    *,
    cid: str,
    load: Callable[[Path], bytes] = Path.read_bytes,
) -> EmailMessage:
    """The inline part for image `path` with Content-ID `cid`: the headers and body
    `add_related(load(path), …, cid=cid, disposition="inline")` would give it."""
    cached = _IMAGE_PARTS.get(path, maintype, subtype, filename, load)
    part = EmailMessage(policy=EMAIL_POLICY)
    for name, value in cached.items():  # header objects: stored again without re-parsing
        part[name] = cid if name.lower() == "content-id" else value
    part.set_payload(cached.get_payload())  # the base64 text, shared (str is immutable)
    return part


def thumbnail(path: Path) -> bytes:
    """A product picture as the email's square JPEG thumbnail (`THUMBNAIL_PX`), the whole
    picture fitted on white, turned as its EXIF says."""
    with Image.open(path) as opened:
        picture = ImageOps.exif_transpose(opened).convert("RGB")
    picture.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    square = Image.new("RGB", (THUMBNAIL_PX, THUMBNAIL_PX), "white")
    square.paste(
        picture, ((THUMBNAIL_PX - picture.width) // 2, (THUMBNAIL_PX - picture.height) // 2)
    )
    out = io.BytesIO()
    square.save(out, "JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


def _product_images(
    products: Sequence[Product], images_root: Path | None, domain: str
) -> tuple[list[str], list[tuple[Path, str]]]:
    """Each product's thumbnail `src` (a hosted picture's URL as is; a picture in the
    catalog folder inline, under a Content-ID) and the inline ones to attach."""
    sources: list[str] = []
    inline: dict[Path, str] = {}
    for product in products:
        if product.image.startswith(("https://", "http://")):
            sources.append(product.image)
            continue
        if images_root is None:
            sources.append("")
            continue
        path = (images_root / product.image).resolve()
        if path not in inline:
            if not path.is_file():
                raise DeliveryError(f"product {product.id}: picture not found at {path}")
            inline[path] = make_msgid(idstring="product", domain=domain)
        sources.append(f"cid:{inline[path][1:-1]}")
    return sources, [(path, cid) for path, cid in inline.items()]


def _inline_css(html: str, templates_dir: Path) -> str:
    try:
        return _INLINER.inline(html)
    except (css_inline.InlineError, ValueError) as exc:
        raise DeliveryError(f"email template {templates_dir / HTML_TEMPLATE}: CSS: {exc}") from None


def compose_campaign_email(
    *,
    customer: Customer,
    products: Sequence[Product],
    poster: Path,
    video_url: str,
    links: RecipientLinks,
    sender: str,
    postal_address: str,
    subject: str | Sequence[str],
    campaign_id: str,
    templates_dir: Path,
    label: str = "Personalized video",
    now: datetime | None = None,
    gif: Path | None = None,
    max_gif_bytes: int = GIF_MAX_BYTES,
    pseudonym: str | None = None,
    images_root: Path | None = None,
) -> ComposedEmail:
    """Build the campaign email for one customer and say which choices it made.

    Structure: multipart/alternative of text/plain and multipart/related (text/html with
    CSS inlined, plus the preview image as an inline CID image that links to the landing
    page). The preview image is `gif` when given and at most `max_gif_bytes`, else the
    poster. `subject` is one subject line or the campaign's variants; the variant is
    chosen by hashing the customer id with the campaign id and recorded
    in the `X-Reelcast-Variant` header. Carries From, To, Subject, Date, Message-ID, the
    RFC 8058 List-Unsubscribe pair, `X-Campaign-ID` and, given one, `X-Reelcast-Pseudonym`.
    Prices are formatted with Babel for `customer.locale`. `video_url` is offered as a
    direct link to the file for readers whose client hides the image. `label` says how
    the video was made, under its picture (`creative.template.video_label`).

    Each product card shows the product's picture: a hosted one (an http(s) URL in the
    catalog) by its URL, one in the catalog folder `images_root` as an inline thumbnail
    (`THUMBNAIL_PX`, made once per file); without `images_root`, cards have no picture.
    """
    if not products:
        raise DeliveryError(f"customer {customer.id}: an email needs at least one product")
    _image(poster, "poster", customer.id)
    if not video_url.startswith(("https://", "http://")):
        raise DeliveryError(f"customer {customer.id}: video_url must be an http(s) URL")
    brand, domain = _sender_parts(sender)
    image = poster
    if gif is not None:
        _image(gif, "GIF preview", customer.id)
        if gif.stat().st_size <= max_gif_bytes:
            image = gif
    maintype, subtype = _image(image, "preview image", customer.id)
    # Keyed by the customer id and the campaign, not the pseudonym: the same campaign
    # splits its customers the same way in every workspace, whatever its secret.
    index, chosen_subject = choose_subject(subject, key=customer.id, campaign_id=campaign_id)
    if pseudonym is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", pseudonym):
        raise DeliveryError(f"customer {customer.id}: pseudonym has unexpected characters")

    image_cid = make_msgid(idstring="preview" if image == gif else "poster", domain=domain)
    sources, thumbnails = _product_images(products, images_root, domain)
    cards = [
        ProductCard(
            title=p.title,
            brand=p.brand,
            # What the customer pays now (the sale price when there is one), as the video.
            price=format_price(p.price_now, p.currency, customer.locale),
            url=links.click(p.url),
            image=src,
        )
        for p, src in zip(products, sources, strict=True)
    ]
    context = {
        "lang": Locale.parse(customer.locale).language,
        "subject": chosen_subject,
        "brand": brand,
        # A customer who opted out of personalization is not greeted by name (the video
        # leaves the name out for them too: campaigns.plan).
        "first_name": customer.first_name if customer.personalization else None,
        "products": cards,
        "image_cid": image_cid[1:-1],
        "poster_cid": image_cid[1:-1],  # the name templates written before GIFs use
        "landing_url": links.landing,
        "video_url": video_url,
        "unsubscribe_url": links.unsubscribe,
        "open_pixel_url": links.open_pixel,
        "label": label,
        "postal_lines": [line.strip() for line in postal_address.splitlines() if line.strip()],
    }
    html = _inline_css(_render(templates_dir, HTML_TEMPLATE, context), templates_dir)
    text = _render(templates_dir, TEXT_TEMPLATE, context)

    msg = EmailMessage(policy=EMAIL_POLICY)
    msg["From"] = sender
    msg["To"] = Address(
        display_name=" ".join(n for n in (customer.first_name, customer.last_name) if n),
        addr_spec=str(customer.email),
    )
    msg["Subject"] = chosen_subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["List-Unsubscribe"] = f"<{links.unsubscribe}>, <{links.unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Not personal, and lets bounces and provider logs be matched to a campaign.
    msg["X-Campaign-ID"] = campaign_id
    msg[VARIANT_HEADER] = variant_label(index)
    if pseudonym is not None:
        msg[PSEUDONYM_HEADER] = pseudonym

    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = list(msg.iter_parts())[1]
    # What html_part.add_related(image bytes, …, cid=image_cid) does, with the image read
    # and base64-encoded once per file rather than once per email: customers who share a
    # video share its GIF, and the encoding was a tenth of composing and queueing one.
    filename = f"{'preview' if image == gif else 'poster'}{image.suffix.lower()}"
    if html_part.get_content_type() != "multipart/related":
        html_part.make_related()
    html_part.attach(_image_part(image, maintype, subtype, filename, cid=image_cid))
    for n, (path, cid) in enumerate(thumbnails, start=1):
        try:
            part = _image_part(path, "image", "jpeg", f"product-{n}.jpg", cid=cid, load=thumbnail)
        except (OSError, ValueError) as exc:  # Pillow: not an image, or a broken one
            raise DeliveryError(f"product picture {path} cannot be read: {exc}") from None
        html_part.attach(part)
    return ComposedEmail(
        message=msg,
        subject=chosen_subject,
        variant=variant_label(index),
        variant_index=index,
        image=image,
    )


def preview_email(message: EmailMessage | bytes, out: Path, *, inline_images: bool = False) -> Path:
    """Write the HTML part of `message` to `out` so a browser shows it as a mail client would.

    Inline `cid:` images become files beside `out` (`<stem>-1.jpg`, …), or `data:` URIs
    with `inline_images`. Returns `out`. Raises `DeliveryError` for a message without HTML.
    """
    msg = message_from_bytes(message) if isinstance(message, bytes) else message
    body = msg.get_body(("html",))
    if body is None:
        raise DeliveryError("the message has no HTML part to preview")
    html = body.get_content()
    out.parent.mkdir(parents=True, exist_ok=True)
    images = [
        part
        for part in msg.walk()
        if part.get("Content-ID") and part.get_content_maintype() == "image"
    ]
    for n, part in enumerate(images, start=1):
        cid = str(part["Content-ID"]).strip().strip("<>")
        data = leaf_payload(part)
        if inline_images:
            encoded = base64.b64encode(data).decode("ascii")
            target = f"data:{part.get_content_type()};base64,{encoded}"
        else:
            suffix = mimetypes.guess_extension(part.get_content_type()) or ".bin"
            file = out.with_name(f"{out.stem}-{n}{suffix}")
            file.write_bytes(data)
            target = file.name
        html = html.replace(f"cid:{cid}", target)
    out.write_text(html, encoding="utf-8")
    return out
