"""The preview gallery: a static HTML page of sample creatives for whoever approves a run."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GalleryItem:
    """One customer's creative, by pseudonymous id."""

    pseudonym: str
    products: Sequence[str]
    video: Path
    poster: Path
    gif: Path | None
    check: str


def write_gallery(
    path: Path,
    *,
    campaign: str,
    items: Sequence[GalleryItem],
    stages: Mapping[str, int],
    excluded: Mapping[str, int],
    asks_approval: bool = True,
    href: Callable[[Path], str] | None = None,
) -> Path:
    """Write the gallery page (links relative to it, so the folder can be copied).

    `asks_approval`: the run waits for a person (else it was auto-approved or is a dry run,
    and the page says so instead of asking). `href` turns a render file into the link the
    page uses instead (e.g. a URL in a shared render store).
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def rel(target: Path) -> str:
        if href is not None:
            return html.escape(href(target))
        return html.escape(os.path.relpath(target, path.parent))

    cards = []
    for item in items:
        preview = item.gif if item.gif is not None and item.gif.exists() else item.poster
        cards.append(
            f"""<figure class="card">
  <video controls preload="none" poster="{rel(item.poster)}" src="{rel(item.video)}"></video>
  <figcaption><b>{html.escape(item.pseudonym)}</b><br>{html.escape(", ".join(item.products))}
  <br><span class="{"ok" if item.check == "ok" else "bad"}">{html.escape(item.check)}</span>
  <br><a href="{rel(preview)}">email preview image</a></figcaption>
</figure>"""
        )
    stage_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in stages.items()
    )
    excluded_rows = (
        "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in sorted(excluded.items())
        )
        or "<tr><td colspan=2>none</td></tr>"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>reelcast — {html.escape(campaign)} — preview</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #f5f6f8; color: #111; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr));
         gap: 1rem; }}
.card {{ background: #fff; margin: 0; padding: .5rem; border-radius: 8px;
         box-shadow: 0 1px 3px #0002; }}
.card video {{ width: 100%; border-radius: 6px; background: #000; }}
figcaption {{ font-size: .85rem; line-height: 1.4; }}
.ok {{ color: #17803d; }} .bad {{ color: #b42318; }}
table {{ border-collapse: collapse; margin: 1rem 2rem 1rem 0; display: inline-table; }}
td {{ border-bottom: 1px solid #ddd; padding: .25rem 1rem .25rem 0; }}
</style></head><body>
<h1>Campaign <code>{html.escape(campaign)}</code>: preview before sending</h1>
<p>A sample of {len(items)} creatives, by pseudonymous customer id. {
        "Approve or reject the run in the Prefect UI (or in the terminal that started it)."
        if asks_approval
        else "This run did not wait for approval (auto-approved, or a dry run)."
    }</p>
<table><caption>Stages</caption>{stage_rows}</table>
<table><caption>Excluded customers</caption>{excluded_rows}</table>
<div class="grid">
{"".join(cards)}
</div></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
