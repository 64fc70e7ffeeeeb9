"""The preview gallery: a page of sample creatives for whoever approves a run.

A campaign writes its gallery as a document (`Gallery`, JSON: pseudonyms, product ids,
render keys, counts, subject lines; no names, addresses or emails) into the render store,
where every worker and the tracking app find it. The tracking app serves it as a page at a
signed, expiring link (`gallery_link`), its videos, posters and GIFs from its `/r/` route;
the same page is also written as a file beside the workspace, with links relative to it,
for whoever runs the campaign in a terminal.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from urllib.parse import quote

# A render's files, as the tracking app's /r/ route serves them (creative.render names them).
VIDEO_FILE, POSTER_FILE, GIF_FILE = "video.mp4", "poster.jpg", "preview.gif"

#: the gallery's route in the tracking app
ROUTE = "g"
#: how many creatives the gallery shows (the first customers': a sample, by pseudonym)
SAMPLE = 12

Href = Callable[[str, str], str]
"""(render key, file name) → the link the page uses for that file."""


@dataclass(frozen=True)
class GalleryItem:
    """One customer's creative, by pseudonymous id and render key."""

    pseudonym: str
    products: Sequence[str]
    key: str
    check: str
    gif: bool = True


@dataclass(frozen=True)
class Gallery:
    """What the page shows. Counts, pseudonyms, product ids and the campaign's own copy:
    safe to publish to the render store and to show behind a signed link."""

    campaign: str
    items: Sequence[GalleryItem]
    stages: Mapping[str, int]
    excluded: Mapping[str, int]
    subjects: Sequence[str] = ()
    asks_approval: bool = True
    template: str = ""
    notes: Sequence[str] = field(default_factory=tuple)

    def to_json(self) -> bytes:
        """The document as UTF-8 JSON."""
        return json.dumps(asdict(self)).encode()  # in order: stages read as they happen

    @classmethod
    def from_json(cls, raw: bytes) -> Gallery:
        """The document back from `to_json` (a ValueError or KeyError when it is not one)."""
        data = json.loads(raw)
        items = tuple(
            GalleryItem(
                str(i["pseudonym"]),
                tuple(map(str, i["products"])),
                str(i["key"]),
                str(i["check"]),
                bool(i.get("gif", True)),
            )
            for i in data["items"]
        )
        return cls(
            campaign=str(data["campaign"]),
            items=items,
            stages={str(k): int(v) for k, v in data["stages"].items()},
            excluded={str(k): int(v) for k, v in data["excluded"].items()},
            subjects=tuple(map(str, data.get("subjects", ()))),
            asks_approval=bool(data.get("asks_approval", True)),
            template=str(data.get("template", "")),
            notes=tuple(map(str, data.get("notes", ()))),
        )


def render_page(gallery: Gallery, href: Href) -> str:
    """The gallery as one HTML page (no scripts; every value escaped)."""

    def link(key: str, name: str) -> str:
        return html.escape(href(key, name))

    cards = []
    for item in gallery.items:
        preview = GIF_FILE if item.gif else POSTER_FILE
        cards.append(
            f"""<figure class="card">
  <video controls muted playsinline preload="metadata" poster="{link(item.key, POSTER_FILE)}"
   src="{link(item.key, VIDEO_FILE)}"></video>
  <figcaption><b>{html.escape(item.pseudonym)}</b><br>{html.escape(", ".join(item.products))}
  <br><span class="{"ok" if item.check == "ok" else "bad"}">{html.escape(item.check)}</span>
  <br><a href="{link(item.key, preview)}">the email's preview image</a></figcaption>
</figure>"""
        )

    def rows(values: Mapping[str, int]) -> str:
        return "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in values.items())

    excluded = rows(dict(sorted(gallery.excluded.items()))) or "<tr><td colspan=2>none</td></tr>"
    subjects = "".join(
        f"<tr><td>{chr(ord('A') + i)}</td><td>{html.escape(s)}</td></tr>"
        for i, s in enumerate(gallery.subjects)
    )
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in gallery.notes)
    ask = (
        "Approve or reject the run in the Prefect UI (Resume on the paused run), or in the "
        "terminal that started it."
        if gallery.asks_approval
        else "This run did not wait for approval (auto-approved, or a dry run)."
    )
    template = ""
    if gallery.template:
        template = f", template <code>{html.escape(gallery.template)}</code>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>reelcast — {html.escape(gallery.campaign)} — preview</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #f5f6f8; color: #111; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr));
         gap: 1rem; }}
.card {{ background: #fff; margin: 0; padding: .5rem; border-radius: 8px;
         box-shadow: 0 1px 3px #0002; }}
.card video {{ width: 100%; aspect-ratio: 9 / 16; border-radius: 6px; background: #000; }}
figcaption {{ font-size: .85rem; line-height: 1.4; }}
.ok {{ color: #17803d; }} .bad {{ color: #b42318; }} .note {{ color: #444; }}
table {{ border-collapse: collapse; margin: 1rem 2rem 1rem 0; display: inline-table;
         vertical-align: top; }}
caption {{ text-align: left; font-weight: 600; }}
td {{ border-bottom: 1px solid #ddd; padding: .25rem 1rem .25rem 0; }}
</style></head><body>
<h1>Campaign <code>{html.escape(gallery.campaign)}</code>: preview before sending</h1>
<p>A sample of {len(gallery.items)} creatives, by pseudonymous customer id{template}. {ask}</p>
{notes}
<table><caption>Stages</caption>{rows(gallery.stages)}</table>
<table><caption>Excluded customers</caption>{excluded}</table>
<table><caption>Subject lines (A/B)</caption>{subjects or "<tr><td>none</td></tr>"}</table>
<div class="grid">
{"".join(cards)}
</div></body></html>
"""


def write_gallery(path: Path, gallery: Gallery, renders: Path) -> Path:
    """Write the page as a file whose links are relative to it (render files under
    `renders/<ab>/<key>/`), so the folder can be opened or copied as is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = Path(os.path.relpath(renders.resolve(), path.parent.resolve()))

    def href(key: str, name: str) -> str:
        return (base / key[:2] / key / name).as_posix()

    path.write_text(render_page(gallery, href), encoding="utf-8")
    return path


def served_href(key: str, name: str) -> str:
    """Links of the page the tracking app serves at `/g/<campaign>`: its `/r/` route,
    relative, so the app may sit under a path of the public base URL."""
    return f"../r/{quote(key)}/{quote(name)}"


class LinkCheck(Enum):
    """What a gallery link's signature and expiry say."""

    ok = "ok"
    expired = "expired"
    forged = "forged"


def _signing_key(secret: bytes) -> bytes:
    # A key of its own, derived from the workspace secret: never the secret itself, which
    # also makes pseudonyms.
    return hmac.new(secret, b"reelcast/gallery-link/v1", hashlib.sha256).digest()


def _signature(secret: bytes, campaign: str, expires: int) -> str:
    message = f"{campaign}\n{expires}".encode()
    return hmac.new(_signing_key(secret), message, hashlib.sha256).hexdigest()[:32]


def gallery_link(base_url: str, secret: bytes, campaign: str, expires_at: datetime) -> str:
    """The signed link to a campaign's gallery in the tracking app, good until
    `expires_at` (a timezone-aware time)."""
    expires = int(expires_at.timestamp())
    signature = _signature(secret, campaign, expires)
    return f"{base_url.rstrip('/')}/{ROUTE}/{quote(campaign)}?exp={expires}&sig={signature}"


def poster_url(base_url: str, key: str) -> str:
    """A render's poster in the tracking app (content-addressed: the key is the secret)."""
    return f"{base_url.rstrip('/')}/r/{quote(key)}/{POSTER_FILE}"


def check_link(secret: bytes, campaign: str, exp: str, sig: str, now: datetime) -> LinkCheck:
    """Whether `exp` and `sig` from a gallery link are ours for `campaign`, and in time."""
    if not exp.isdigit() or len(exp) > 12 or len(sig) != 32:
        return LinkCheck.forged
    if not hmac.compare_digest(_signature(secret, campaign, int(exp)), sig):
        return LinkCheck.forged
    if int(exp) < now.timestamp():
        return LinkCheck.expired
    return LinkCheck.ok


def approval_markdown(
    campaign: str, link: str, stages: Mapping[str, int], posters: Sequence[tuple[str, str]]
) -> str:
    """Markdown for the approval form and the preview artifact: the gallery link, a few
    posters inline (pseudonym, poster URL), and the stage counts."""
    lines = [
        f"## Approve campaign `{campaign}`?",
        "",
        f"**[Open the preview gallery]({link})**: posters, GIFs and playable videos of a "
        "sample, the subject lines and who is left out (the link expires).",
        "",
    ]
    if posters:
        lines += [" ".join(f"![{p}]({url})" for p, url in posters), ""]
    lines += ["| stage | count |", "|---|---|", *[f"| {k} | {v} |" for k, v in stages.items()]]
    return "\n".join(lines)
