"""Per-message cost of a campaign's email work: compose + enqueue, then dispatch to the sink.

K customers (default 2000) get a realistic campaign email: three products, the bundled
templates, a subject A/B pair, signed links, and the preview GIF inline. Customers share
videos the way the load run does (one video per first product, `--videos` of them), so
many emails carry the same GIF file. Everything goes through the real code:

- **compose+enqueue**: `campaigns.emails.queue_emails` into a fresh outbox;
- **dispatch**: `delivery.dispatch.dispatch` from that outbox through the transport
  `runtime.transports.open_transport` picks with no email settings (reelcast's own SMTP
  sink on 127.0.0.1, Maildir), timed like `runtime.sending.send_due` does.

Baselines, measured in the same run on a second outbox and sink:

- **old** compose+enqueue: the per-message path as it was before the caching (commit
  ac5c5a4): Jinja render, css-inline of the rendered HTML, the image file read and
  base64-encoded, `EmailMessage` serialized by `Outbox.enqueue`;
- **old** dispatch: the same `dispatch`, but through a transport that only takes an
  `EmailMessage` (every stored message parsed, then serialized again for SMTP);
- **floor** dispatch: `smtplib` sending the stored bytes over one connection, no outbox.

    python bench/emails.py --json                # 2000 messages, 40 shared videos
    python bench/emails.py --messages 200        # a quick look

`--json` ends the output with one line: {"messages", "compose_ms", "compose_old_ms",
"compose_speedup", "dispatch_ms", "dispatch_old_ms", "dispatch_speedup",
"dispatch_floor_ms", "dispatch_ratio_to_floor", "message_bytes", "sink_count", ...}
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the import path, and this very file
# would hide the standard library's `email` package (and bench/recs.py the `recs` one).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import mailbox  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import smtplib  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from decimal import Decimal  # noqa: E402
from email.headerregistry import Address  # noqa: E402
from email.message import EmailMessage  # noqa: E402
from email.parser import BytesHeaderParser  # noqa: E402
from email.utils import format_datetime, make_msgid  # noqa: E402
from typing import Any  # noqa: E402

for _name in ("REELCAST_ESP_URL", "REELCAST_SMTP_HOST", "REELCAST_WORKSPACE"):
    os.environ.pop(_name, None)

from babel import Locale  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from campaigns.emails import Letterhead, queue_emails  # noqa: E402
from compliance.suppression import SuppressionList  # noqa: E402
from delivery import compose as compose_module  # noqa: E402
from delivery.compose import (  # noqa: E402
    HTML_TEMPLATE,
    PSEUDONYM_HEADER,
    TEXT_TEMPLATE,
    VARIANT_HEADER,
    ProductCard,
    choose_subject,
    format_price,
    variant_label,
)
from delivery.dispatch import dispatch  # noqa: E402
from delivery.links import Links, RecipientLinks, make_token  # noqa: E402
from delivery.outbox import Outbox  # noqa: E402
from delivery.policy import EMAIL_POLICY  # noqa: E402
from delivery.sink import MaildirSink  # noqa: E402
from retail.types import Customer, Product  # noqa: E402
from runtime.metrics import Metrics, TimedTransport  # noqa: E402
from runtime.settings import Settings  # noqa: E402
from runtime.transports import open_transport  # noqa: E402
from runtime.workspace import Workspace  # noqa: E402

CAMPAIGN = "bench-email"
SENDER = "Demo Shop <news@shop.example>"
POSTAL = "Demo Shop GmbH\nHauptstraße 1\n10115 Berlin, Germany"
SUBJECTS = ("Picked for you", "Your video is ready")
SECRET = b"bench-secret-that-is-long-enough-32b"
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES")
FIRST = ("Ann", "Bob", "Chloé", "Dmitri", "Eva", "Farah", "Günter", "Hana", "Ian", "Jo")
LAST = ("Lee", "Müller", "García", "Smith", "O'Brien", "Dubois", None)


@dataclass(frozen=True)
class _Pick:
    product_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Job:
    """What `queue_emails` reads of a `campaigns.plan.Job`."""

    customer: Customer
    pick: _Pick
    pseudonym: str
    variant: str


@dataclass(frozen=True)
class _Render:
    """What `queue_emails` reads of a `creative.render.Render`."""

    poster: Path
    gif: Path | None
    key: str


def make_gif(path: Path, seed: int, width: int = 240, height: int = 427, frames: int = 30) -> None:
    """An animated preview like the renderer's (240 px wide, 3 s at 10 fps): moving shapes
    on a gradient, so it compresses like video frames do rather than like a flat colour."""
    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    images = []
    for n in range(frames):
        frame = base.copy()
        draw = ImageDraw.Draw(frame)
        for _ in range(12):
            x, y = rng.randrange(width), rng.randrange(height)
            r = rng.randrange(8, 40)
            colour = (rng.randrange(256), rng.randrange(256), (n * 8) % 256)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        draw.text((10, height - 30), f"Picked for you {n}", fill=(255, 255, 255))
        images.append(frame.quantize(colors=128))
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def make_inputs(
    root: Path, messages: int, videos: int
) -> tuple[list[tuple[_Job, _Render]], dict[str, Product]]:
    rng = random.Random(7)
    products = {
        f"P{n:04d}": Product(
            id=f"P{n:04d}",
            title=f"Trail Runner {n} — Waterproof Edition",
            brand=rng.choice(("Acme", "Northwind", "Lumen & Co")),
            category="shoes",
            price=Decimal(rng.randrange(999, 25999)) / 100,
            currency=rng.choice(("EUR", "USD", "GBP")),
            image=f"images/{n}.jpg",
            url=f"https://shop.example/p/{n}?utm_source=email&ref=reel",
        )
        for n in range(videos * 3)
    }
    ids = sorted(products)
    renders = []
    for v in range(videos):
        folder = root / "renders" / f"r{v:03d}"
        folder.mkdir(parents=True)
        Image.new("RGB", (288, 512), (200, 40 + v, 40)).save(folder / "poster.jpg", "JPEG")
        make_gif(folder / "preview.gif", seed=v)
        renders.append(_Render(folder / "poster.jpg", folder / "preview.gif", f"r{v:03d}"))
    creatives = []
    for n in range(messages):
        v = rng.randrange(videos)
        customer = Customer(
            id=f"C{n:06d}",
            email=f"shopper{n}@mail.example",
            first_name=rng.choice(FIRST),
            last_name=rng.choice(LAST),
            locale=rng.choice(LOCALES),
        )
        pick = _Pick((ids[v * 3], *rng.sample(ids, 2)))
        pseudonym = f"{n * 2654435761 % 2**32:08x}{n:08x}"
        creatives.append((_Job(customer, pick, pseudonym, "headline-A"), renders[v]))
    return creatives, products


# -- the old path (commit ac5c5a4), kept as the baseline ---------------------------------


def old_compose(
    *,
    customer: Customer,
    products: Sequence[Product],
    poster: Path,
    gif: Path,
    video_url: str,
    links: RecipientLinks,
    templates_dir: Path,
    pseudonym: str,
) -> tuple[EmailMessage, str]:
    """`compose_campaign_email` as it was: render and inline every message from scratch."""
    env = compose_module._environment(templates_dir.resolve())
    image = gif if gif.stat().st_size <= compose_module.GIF_MAX_BYTES else poster
    index, subject = choose_subject(list(SUBJECTS), key=pseudonym, campaign_id=CAMPAIGN)
    image_cid = make_msgid(idstring="preview" if image == gif else "poster", domain="shop.example")
    cards = [
        ProductCard(
            title=p.title,
            brand=p.brand,
            price=format_price(p.price, p.currency, customer.locale),
            url=links.click(p.url),
        )
        for p in products
    ]
    context: dict[str, Any] = {
        "lang": Locale.parse(customer.locale).language,
        "subject": subject,
        "brand": "Demo Shop",
        "first_name": customer.first_name,
        "products": cards,
        "image_cid": image_cid[1:-1],
        "poster_cid": image_cid[1:-1],
        "landing_url": links.landing,
        "video_url": video_url,
        "unsubscribe_url": links.unsubscribe,
        "open_pixel_url": links.open_pixel,
        "ai_label": "AI-generated video",
        "postal_lines": [line.strip() for line in POSTAL.splitlines() if line.strip()],
    }
    html = compose_module._INLINER.inline(env.get_template(HTML_TEMPLATE).render(context))
    text = env.get_template(TEXT_TEMPLATE).render(context)
    msg = EmailMessage(policy=EMAIL_POLICY)
    msg["From"] = SENDER
    msg["To"] = Address(
        display_name=" ".join(n for n in (customer.first_name, customer.last_name) if n),
        addr_spec=str(customer.email),
    )
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="shop.example")
    msg["List-Unsubscribe"] = f"<{links.unsubscribe}>, <{links.unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Campaign-ID"] = CAMPAIGN
    msg[VARIANT_HEADER] = variant_label(index)
    msg[PSEUDONYM_HEADER] = pseudonym
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = list(msg.iter_parts())[1]
    maintype, _, subtype = ("image/gif" if image == gif else "image/jpeg").partition("/")
    html_part.add_related(
        image.read_bytes(),
        maintype=maintype,
        subtype=subtype,
        cid=image_cid,
        disposition="inline",
        filename=f"{'preview' if image == gif else 'poster'}{image.suffix.lower()}",
    )
    return msg, variant_label(index)


def old_queue(
    creatives: Sequence[tuple[_Job, _Render]],
    outbox: Outbox,
    products: dict[str, Product],
    letterhead: Letterhead,
    now: datetime,
) -> int:
    queued = 0
    for job, render in creatives:
        if outbox.get(CAMPAIGN, job.customer.id) is not None:
            continue
        token = make_token(letterhead.secret, CAMPAIGN, job.customer.id)
        assert render.gif is not None
        msg, variant = old_compose(
            customer=job.customer,
            products=[products[pid] for pid in job.pick.product_ids],
            poster=render.poster,
            gif=render.gif,
            video_url=f"{letterhead.links.base_url}/r/{render.key}/video.mp4",
            links=letterhead.links.for_token(token),
            templates_dir=letterhead.templates_dir,
            pseudonym=job.pseudonym,
        )
        # Outbox.enqueue as it was: the stdlib serializer, the whole message parsed for its
        # Message-ID, one transaction (one disk sync) per row.
        data = msg.as_bytes(policy=EMAIL_POLICY)
        BytesHeaderParser().parsebytes(data).get("Message-ID")
        queued += outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=job.customer.id,
            recipient=str(job.customer.email),
            message=data,
            due_at=now,
            variant=f"subject-{variant}",
        )
    return queued


class EmailOnly:
    """A transport that takes only an `EmailMessage`, as every transport did before: the
    dispatcher parses each stored message, and this serializes it again for SMTP."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def send(self, msg: EmailMessage, recipient: str) -> str:
        # SmtpTransport.send as it was: the stdlib serializer. (A checkout from before
        # send_bytes has no such method: there, its own send is the old path.)
        send_bytes = getattr(self._inner, "send_bytes", None)
        if send_bytes is None:
            return str(self._inner.send(msg, recipient))
        return str(send_bytes(msg.as_bytes(policy=EMAIL_POLICY), recipient))


# -- the runs ----------------------------------------------------------------------------


def timed_dispatch(ws: Workspace, *, email_only: bool) -> tuple[float, int]:
    """One dispatch pass of everything due, as `send_due` wires it; (seconds, sent)."""
    settings = Settings(workspace=ws.root)
    with (
        Metrics(ws.metrics_db) as metrics,
        Outbox(ws.state_db) as outbox,
        open_transport(settings, ws) as (transport, _via),
    ):
        chosen = EmailOnly(transport) if email_only else transport
        start = time.perf_counter()
        report = dispatch(
            outbox,
            TimedTransport(chosen, metrics),
            is_suppressed=SuppressionList(ws.state_db).__contains__,
        )
        seconds = time.perf_counter() - start
    return seconds, report.sent


def floor_dispatch(ws: Workspace, maildir: Path) -> tuple[float, int]:
    """smtplib sending the stored bytes over one connection: no outbox, no parsing (the
    clock runs only around each sendmail)."""
    seconds = 0.0
    db = sqlite3.connect(ws.state_db)
    ids = [n for (n,) in db.execute("SELECT id FROM outbox ORDER BY id")]
    with MaildirSink(maildir) as sink:
        smtp = smtplib.SMTP("127.0.0.1", sink.port)
        for n in ids:  # one body at a time in memory, read outside the clock
            recipient, data = db.execute(
                "SELECT recipient, message FROM outbox WHERE id = ?", (n,)
            ).fetchone()
            start = time.perf_counter()
            smtp.sendmail("news@shop.example", [recipient], data)
            seconds += time.perf_counter() - start
        smtp.quit()
    db.close()
    return seconds, len(ids)


def maildir_count(path: Path) -> int:
    return len(mailbox.Maildir(path, create=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--videos", type=int, default=40, help="distinct GIFs shared")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="reelcast-email-bench-") as tmp:
        root = Path(tmp)
        creatives, products = make_inputs(root, args.messages, args.videos)
        new_ws, old_ws, floor_ws = (Workspace(root / n) for n in ("new", "old", "floor"))
        for ws in (new_ws, old_ws, floor_ws):
            ws.root.mkdir()
        letterhead = Letterhead(
            links=Links("https://shop.example", unsubscribe_address="unsubscribe@shop.example"),
            sender=SENDER,
            postal_address=POSTAL,
            templates_dir=REPO / "templates",
            secret=SECRET,
        )
        now = datetime.now(UTC)
        # Warm-up on throwaway outboxes: imports, template compilation, Babel's locale data.
        warm = creatives[:5]
        with Outbox(root / "warm-old.sqlite") as box:
            old_queue(warm, box, products, letterhead, now)
        with Outbox(root / "warm-new.sqlite") as box:
            queue_emails(
                warm, outbox=box, campaign=CAMPAIGN, subjects=SUBJECTS, products=products,
                letterhead=letterhead, due={}, now=now,
            )  # fmt: skip

        with Outbox(old_ws.state_db) as box:
            start = time.perf_counter()
            old_queued = old_queue(creatives, box, products, letterhead, now)
            compose_old = time.perf_counter() - start
        with Outbox(new_ws.state_db) as box:
            start = time.perf_counter()
            queued, _ = queue_emails(
                creatives, outbox=box, campaign=CAMPAIGN, subjects=SUBJECTS, products=products,
                letterhead=letterhead, due={}, now=now,
            )  # fmt: skip
            compose_new = time.perf_counter() - start
            sizes = [
                len(item.message)
                for job, _ in creatives[:50]
                if (item := box.get(CAMPAIGN, job.customer.id)) is not None
            ]
        # The floor sends the new outbox's bytes from a copy of it.
        with Outbox(floor_ws.state_db) as dst, Outbox(new_ws.state_db) as src:
            for job, _ in creatives:  # one body at a time in memory
                item = src.get(CAMPAIGN, job.customer.id)
                assert item is not None
                dst.enqueue(
                    campaign_id=CAMPAIGN, customer_id=item.customer_id,
                    recipient=item.recipient, message=item.message, due_at=now,
                )  # fmt: skip

        dispatch_old, old_sent = timed_dispatch(old_ws, email_only=True)
        dispatch_new, new_sent = timed_dispatch(new_ws, email_only=False)
        dispatch_floor, floor_sent = floor_dispatch(floor_ws, root / "floor-Maildir")
        sink_count = maildir_count(new_ws.maildir)

    k = args.messages
    result = {
        "messages": k,
        "videos": args.videos,
        "queued": queued,
        "old_queued": old_queued,
        "sent": new_sent,
        "old_sent": old_sent,
        "sink_count": sink_count,
        "message_bytes": round(sum(sizes) / len(sizes)),
        "compose_ms": round(compose_new / k * 1000, 3),
        "compose_old_ms": round(compose_old / k * 1000, 3),
        "compose_speedup": round(compose_old / compose_new, 2),
        "dispatch_ms": round(dispatch_new / k * 1000, 3),
        "dispatch_old_ms": round(dispatch_old / k * 1000, 3),
        "dispatch_speedup": round(dispatch_old / dispatch_new, 2),
        "dispatch_floor_ms": round(dispatch_floor / floor_sent * 1000, 3),
        "dispatch_ratio_to_floor": round(dispatch_new / dispatch_floor, 2),
        "total_ms": round((compose_new + dispatch_new) / k * 1000, 3),
        "total_old_ms": round((compose_old + dispatch_old) / k * 1000, 3),
        "total_speedup": round((compose_old + dispatch_old) / (compose_new + dispatch_new), 2),
    }
    print(f"{k} messages, {args.videos} shared GIFs, ~{result['message_bytes']} bytes each")
    print(f"sent {new_sent} (old path {old_sent}); the sink holds {sink_count}")
    print(f"{'ms per message':<22}{'now':>10}{'old path':>10}{'speedup':>10}")
    for label, key in (
        ("compose+enqueue", "compose"),
        ("dispatch", "dispatch"),
        ("total", "total"),
    ):
        now_ms, old_ms = result[f"{key}_ms"], result[f"{key}_old_ms"]
        print(f"{label:<22}{now_ms:>10.2f}{old_ms:>10.2f}{result[f'{key}_speedup']:>9.2f}×")
    print(
        f"dispatch floor (smtplib, stored bytes, one connection): "
        f"{result['dispatch_floor_ms']:.2f} ms; ratio to floor {result['dispatch_ratio_to_floor']}"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
