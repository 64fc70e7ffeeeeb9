"""The tracking app's HTML: the video landing page and the unsubscribe pages.

Plain f-strings over `html.escape`d values: three tiny pages do not need a template
engine, and every value that reaches them is escaped here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

_STYLE = """
body{margin:0;background:#f4f4f5;font-family:Arial,Helvetica,sans-serif;color:#18181b}
main{max-width:560px;margin:0 auto;padding:24px 16px}
h1{font-size:22px;line-height:30px;margin:0 0 16px}
video{display:block;width:100%;max-width:360px;margin:0 auto;border-radius:8px;background:#000}
.label{text-align:center;font-size:12px;color:#71717a;margin:8px 0 20px}
ul{list-style:none;padding:0;margin:0}
li{background:#fff;border:1px solid #e4e4e7;border-radius:6px;margin:0 0 10px;padding:12px 16px}
li .brand{font-size:12px;color:#71717a;text-transform:uppercase}
li a{color:#18181b;font-size:16px}
footer{font-size:12px;line-height:18px;color:#71717a;margin-top:24px}
footer a{color:#52525b}
button{font-size:16px;padding:12px 28px;border:0;border-radius:6px;background:#18181b;color:#fff}
"""


@dataclass(frozen=True)
class LandingProduct:
    """A product shown on the landing page: where it links and what it is called."""

    product_id: str
    title: str
    brand: str
    url: str


@dataclass(frozen=True)
class Landing:
    """What one recipient's landing page shows: their video and their products."""

    render_key: str | None
    products: tuple[LandingProduct, ...] = field(default_factory=tuple)
    label: str | None = None
    """How the video was made, as the campaign's template says (None: the app's default,
    for campaigns audited before templates said)."""


def _page(title: str, body: str, brand: str, postal_address: str) -> str:
    postal = "<br>".join(escape(line.strip()) for line in postal_address.splitlines() if line)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}<footer>{escape(brand)}<br>{postal}</footer></main></body></html>\n"
    )


def landing_page(
    *,
    token: str,
    landing: Landing,
    brand: str,
    ai_label: str,
    postal_address: str,
) -> str:
    """The landing page: the video with its poster, the AI label, tracked product links."""
    t = quote(token, safe="")
    parts = [f"<h1>{escape(brand)}: picked for you</h1>"]
    if landing.render_key:
        k = quote(landing.render_key, safe="")
        parts.append(
            f'<video controls playsinline preload="metadata" poster="/r/{k}/poster.jpg">'
            f'<source src="/r/{k}/video.mp4" type="video/mp4">'
            "Your browser cannot play this video.</video>"
            f'<p class="label">{escape(landing.label or ai_label)}</p>'
        )
    if landing.products:
        items = "".join(
            f'<li><div class="brand">{escape(p.brand)}</div>'
            f'<a href="/c/{t}?u={quote(p.url, safe="")}" rel="noreferrer noopener">'
            f"{escape(p.title)}</a></li>"
            for p in landing.products
        )
        parts.append(f"<ul>{items}</ul>")
    parts.append(f'<p><a href="/u/{t}">Unsubscribe</a></p>')
    return _page(f"{brand}: your video", "".join(parts), brand, postal_address)


def unsubscribe_page(*, token: str, brand: str, postal_address: str, done: bool) -> str:
    """Ask before unsubscribing (link scanners follow GETs), or confirm that it is done.

    The form posts the RFC 8058 body, so the button and a mail client's one-click
    unsubscribe are the same request.
    """
    if done:
        body = (
            "<h1>You are unsubscribed</h1>"
            f"<p>You will get no more marketing emails from {escape(brand)}.</p>"
        )
    else:
        body = (
            f"<h1>Unsubscribe from {escape(brand)} emails?</h1>"
            f'<form method="post" action="/u/{quote(token, safe="")}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    return _page(f"{brand}: unsubscribe", body, brand, postal_address)


def expired_page(campaign: str) -> str:
    """A preview gallery link past its time: say how to get a new one."""
    body = (
        f"<h1>This preview link of campaign {escape(campaign)} has expired</h1>"
        "<p>Gallery links last as long as a run may wait for approval. For a new one, open "
        "the run in the Prefect UI, or run "
        f"<code>reelcast gallery link {escape(campaign)}</code>.</p>"
    )
    return _page(f"{campaign}: link expired", body, "reelcast", "")
