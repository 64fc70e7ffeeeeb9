"""A campaign on what a retailer already has: a Google Merchant Center XML feed whose
pictures are URLs on an image server (a real HTTP server on loopback)."""

from __future__ import annotations

import mailbox
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from retail.loaders import load_rows
from retail.types import Product
from tests.retail.image_server import ImageServer

pytestmark = pytest.mark.slow


def _merchant_feed(products: list[Product], server: ImageServer, path: Path) -> Path:
    """The demo catalog as an RSS 2.0 Merchant feed, each picture a URL on `server`."""
    items = []
    for i, p in enumerate(products):
        items.append(
            "<item>"
            f"<g:id>{escape(p.id)}</g:id><title>{escape(p.title)}</title>"
            f"<link>{escape(p.url)}</link>"
            f"<g:image_link>{server.base_url}/images/{i}.jpg?v=1</g:image_link>"
            f"<g:price>{p.price} {p.currency}</g:price>"
            f"<g:availability>{'in stock' if p.in_stock else 'out of stock'}</g:availability>"
            f"<g:brand>{escape(p.brand)}</g:brand>"
            f"<g:product_type>Shop &gt; {escape(p.category)}</g:product_type>"
            "</item>"
        )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>'
        "<title>Demo</title>" + "".join(items) + "</channel></rss>\n",
        encoding="utf-8",
    )
    return path


def test_a_campaign_runs_on_a_merchant_feed_with_picture_urls(
    prefect_api, campaign_params, small_retailer, tmp_path, monkeypatch
) -> None:
    from flows.campaign import campaign_flow

    products = load_rows(small_retailer.catalog, Product).items
    monkeypatch.setenv("REELCAST_IMAGE_FETCH_ALLOWED_NETWORKS", '["127.0.0.0/8"]')
    workspace = tmp_path / "ws"
    with ImageServer(n_images=len(products), image_size=360) as server:
        feed = _merchant_feed(products, server, tmp_path / "feed.xml")
        summary = campaign_flow(campaign_params(workspace, catalog=str(feed)))
        assert summary.sent == 4
        first_downloads = server.ok
        assert first_downloads == len(products)  # every picture, once
        # The pictures were drawn from the fetched copies: the cache holds them.
        assert len(list((workspace / "image-cache").rglob("*.jpg"))) == len(products)
        assert len(list(mailbox.Maildir(workspace / "mail", create=False))) == 4

        # A second campaign re-downloads nothing that did not change (ETag revalidation).
        again = campaign_flow(campaign_params(workspace, catalog=str(feed), campaign="summer"))
        assert again.sent == 4
        assert server.ok == first_downloads
        assert server.not_modified == len(products)
    # The URLs (with their query strings) are nowhere in the videos' audit or summary.
    assert "?v=1" not in repr(summary)
