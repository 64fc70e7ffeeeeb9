"""Compose one customer's campaign email: HTML + plain text, the poster inline, the links.

Pure apart from reading the poster and the templates: the same inputs give the same
message except for `Message-ID` and `Date`.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from delivery.errors import DeliveryError
from delivery.links import RecipientLinks
from delivery.policy import EMAIL_POLICY
from retail.types import Customer, Product

HTML_TEMPLATE = "email/campaign.html.j2"
TEXT_TEMPLATE = "email/campaign.txt.j2"


@dataclass(frozen=True)
class ProductCard:
    """What the email shows of one product, already formatted for the reader's locale."""

    title: str
    brand: str
    price: str
    url: str


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


def _render(templates_dir: Path, name: str, context: dict[str, object]) -> str:
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


def compose_email(
    *,
    customer: Customer,
    products: Sequence[Product],
    poster: Path,
    video_url: str,
    links: RecipientLinks,
    sender: str,
    postal_address: str,
    subject: str,
    campaign_id: str,
    templates_dir: Path,
    ai_label: str = "AI-generated video",
    now: datetime | None = None,
) -> EmailMessage:
    """Build the campaign email for one customer, ready for the outbox.

    Structure: multipart/alternative of text/plain and multipart/related (text/html plus
    the poster as an inline CID image that links to the landing page). Carries From, To,
    Subject, Date, Message-ID, the RFC 8058 List-Unsubscribe pair and `X-Campaign-ID`.
    Prices are formatted with Babel for `customer.locale`. `video_url` is offered as a
    direct link to the file for readers whose client hides the poster.
    """
    if not products:
        raise DeliveryError(f"customer {customer.id}: an email needs at least one product")
    if not poster.is_file():
        raise DeliveryError(f"customer {customer.id}: poster not found at {poster}")
    if not video_url.startswith(("https://", "http://")):
        raise DeliveryError(f"customer {customer.id}: video_url must be an http(s) URL")
    brand, domain = _sender_parts(sender)
    maintype, _, subtype = (mimetypes.guess_type(poster.name)[0] or "image/jpeg").partition("/")
    if maintype != "image":
        raise DeliveryError(f"poster {poster} is not an image")

    poster_cid = make_msgid(idstring="poster", domain=domain)
    cards = [
        ProductCard(
            title=p.title,
            brand=p.brand,
            price=format_price(p.price, p.currency, customer.locale),
            url=p.url,
        )
        for p in products
    ]
    context = {
        "lang": Locale.parse(customer.locale).language,
        "subject": subject,
        "brand": brand,
        "first_name": customer.first_name,
        "products": cards,
        "poster_cid": poster_cid[1:-1],
        "landing_url": links.landing,
        "video_url": video_url,
        "unsubscribe_url": links.unsubscribe,
        "ai_label": ai_label,
        "postal_lines": [line.strip() for line in postal_address.splitlines() if line.strip()],
    }
    html = _render(templates_dir, HTML_TEMPLATE, context)
    text = _render(templates_dir, TEXT_TEMPLATE, context)

    msg = EmailMessage(policy=EMAIL_POLICY)
    msg["From"] = sender
    msg["To"] = Address(
        display_name=" ".join(n for n in (customer.first_name, customer.last_name) if n),
        addr_spec=str(customer.email),
    )
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["List-Unsubscribe"] = f"<{links.unsubscribe}>, <{links.unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Not personal, and lets bounces and provider logs be matched to a campaign.
    msg["X-Campaign-ID"] = campaign_id

    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(
        poster.read_bytes(),
        maintype=maintype,
        subtype=subtype,
        cid=poster_cid,
        disposition="inline",
        filename=f"poster{poster.suffix.lower()}",
    )
    return msg
