"""The preview gallery: a document in the render store, served by the tracking app behind
a signed link that expires; the same page as a file with relative links."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from delivery_support import NOW, SECRET, serving
from starlette.applications import Starlette

from compliance.suppression import SuppressionList
from creative.render import MANIFEST_FILE
from creative.store import RenderStore
from delivery.events_store import TrackingEvents
from delivery.gallery import (
    Gallery,
    GalleryItem,
    LinkCheck,
    approval_markdown,
    check_link,
    gallery_link,
    poster_url,
    write_gallery,
)
from delivery.tracking import create_app

KEY = "cd" + "0123456789abcdef" * 3 + "0123456789abcd"
POSTER = b"\xff\xd8\xff\xe0 a poster"
GIF = b"GIF89a a preview"
VIDEO = b"\x00\x00\x00\x18ftypmp42 a video"


def _gallery(**overrides: object) -> Gallery:
    values: dict[str, object] = {
        "campaign": "spring",
        "items": [GalleryItem("cu_123", ("P1", "<P2>"), KEY, "ok")],
        "stages": {"selected": 1, "passed checks": 1},
        "excluded": {"suppressed": 2},
        "subjects": ["Picked for you", "Your <spring> picks"],
        "template": "greeting",
    }
    values.update(overrides)
    return Gallery(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> RenderStore:
    folder = tmp_path / "renders" / KEY[:2] / KEY
    folder.mkdir(parents=True)
    (folder / "poster.jpg").write_bytes(POSTER)
    (folder / "preview.gif").write_bytes(GIF)
    (folder / "video.mp4").write_bytes(VIDEO)
    (folder / MANIFEST_FILE).write_text("{}")  # a render is published with its manifest
    return RenderStore(tmp_path / "renders")


def test_the_page_file_links_relative_to_itself_and_escapes_everything(tmp_path: Path) -> None:
    waiting = write_gallery(tmp_path / "g" / "a.html", _gallery(), tmp_path / "renders")
    auto = write_gallery(
        tmp_path / "g" / "b.html", _gallery(asks_approval=False), tmp_path / "renders"
    )
    page = waiting.read_text()
    assert "Approve or reject the run" in page and "did not wait" not in page
    assert "did not wait for approval" in auto.read_text()
    assert "cu_123" in page and "&lt;P2&gt;" in page and "<P2>" not in page
    assert "Your &lt;spring&gt; picks" in page and "suppressed" in page
    assert f'src="../renders/cd/{KEY}/video.mp4"' in page  # the folder can be copied
    assert f'poster="../renders/cd/{KEY}/poster.jpg"' in page
    assert f'href="../renders/cd/{KEY}/preview.gif"' in page


def test_the_document_round_trips_and_holds_no_paths(tmp_path: Path) -> None:
    gallery = _gallery()
    raw = gallery.to_json()
    assert Gallery.from_json(raw) == Gallery.from_json(Gallery.from_json(raw).to_json())
    back = Gallery.from_json(raw)
    assert back.items[0] == GalleryItem("cu_123", ("P1", "<P2>"), KEY, "ok", True)
    assert back.subjects == ("Picked for you", "Your <spring> picks")
    assert str(tmp_path) not in raw.decode() and "/" not in raw.decode().replace("</", "")


def test_a_link_is_ours_for_one_campaign_and_until_it_expires() -> None:
    link = gallery_link("https://t.shop.example/", SECRET, "spring", NOW + timedelta(hours=2))
    parts = urlsplit(link)
    assert parts.netloc == "t.shop.example" and parts.path == "/g/spring"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    exp, sig = query["exp"], query["sig"]
    assert check_link(SECRET, "spring", exp, sig, NOW) is LinkCheck.ok
    assert check_link(SECRET, "spring", exp, sig, NOW + timedelta(hours=3)) is LinkCheck.expired
    assert check_link(SECRET, "summer", exp, sig, NOW) is LinkCheck.forged
    later = str(int(exp) + 3600)  # a longer life is a forgery, not a longer life
    assert check_link(SECRET, "spring", later, sig, NOW) is LinkCheck.forged
    other = b"another-secret-of-sufficient-size!"
    assert check_link(other, "spring", exp, sig, NOW) is LinkCheck.forged
    for bad_exp, bad_sig in (("", sig), ("12a", sig), (exp, ""), (exp, sig[:-1]), (exp, "0" * 32)):
        assert check_link(SECRET, "spring", bad_exp, bad_sig, NOW) is LinkCheck.forged


def test_the_approval_markdown_links_the_gallery_and_shows_posters_inline() -> None:
    text = approval_markdown(
        "spring",
        "https://t.example/g/spring?exp=1&sig=x",
        {"selected": 3},
        [("cu_1", poster_url("https://t.example", KEY))],
    )
    assert "[Open the preview gallery](https://t.example/g/spring?exp=1&sig=x)" in text
    assert f"![cu_1](https://t.example/r/{KEY}/poster.jpg)" in text
    assert "| selected | 3 |" in text


def _app(store: RenderStore, tmp_path: Path, **options: object) -> Starlette:
    """The tracking app over throw-away stores, serving renders from `store`."""
    return create_app(
        secret=SECRET,
        events=TrackingEvents(tmp_path / "state.sqlite"),
        suppression=SuppressionList(tmp_path / "state.sqlite"),
        locate_render=store.locate,
        allowed_redirect_hosts=[],
        **options,  # type: ignore[arg-type]
    )


def test_the_tracking_app_serves_the_gallery_behind_its_signed_link(
    store: RenderStore, tmp_path: Path
) -> None:
    store.put_gallery("spring", _gallery().to_json())
    clock = [NOW]
    app = _app(
        store, tmp_path, galleries=store.get_gallery, gallery_secret=SECRET, clock=lambda: clock[0]
    )
    with serving(app) as base, httpx.Client(follow_redirects=False) as http:
        link = gallery_link(base, SECRET, "spring", NOW + timedelta(hours=1))
        page = http.get(link)
        assert page.status_code == 200, page.text
        assert page.headers["cache-control"].startswith("no-store")
        assert "cu_123" in page.text and "&lt;P2&gt;" in page.text
        assert "Picked for you" in page.text
        # The page's own links, resolved against it, fetch the render's files.
        found = dict(
            re.findall(r'(src|poster)="([^"]+)"', page.text)
            + re.findall(r'(href)="([^"]+)"', page.text)
        )
        for attr, body in (("src", VIDEO), ("poster", POSTER), ("href", GIF)):
            got = http.get(str(httpx.URL(link).join(found[attr])))
            assert got.status_code == 200 and got.content == body, attr

        forged = link.replace("sig=", "sig=0")[: len(link)]
        assert http.get(forged).status_code == 404
        assert http.get(link.replace("/g/spring", "/g/summer")).status_code == 404
        other = gallery_link(base, SECRET, "autumn", NOW + timedelta(hours=1))
        assert http.get(other).status_code == 404, "signed, but no such gallery"
        clock[0] = NOW + timedelta(hours=2)
        expired = http.get(link)
        assert expired.status_code == 410
        assert "reelcast gallery link spring" in expired.text


def test_without_galleries_the_route_is_a_bare_404(store: RenderStore, tmp_path: Path) -> None:
    store.put_gallery("spring", _gallery().to_json())
    with serving(_app(store, tmp_path)) as base:
        link = gallery_link(base, SECRET, "spring", NOW + timedelta(days=3650))
        assert httpx.get(link).status_code == 404


def test_the_store_keeps_one_document_per_campaign_and_refuses_odd_ids(
    store: RenderStore,
) -> None:
    assert store.get_gallery("spring") is None
    store.put_gallery("spring", b"one")
    store.put_gallery("spring", b"two")
    assert store.get_gallery("spring") == b"two"
    for bad in ("", "../x", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="campaign id"):
            store.put_gallery(bad, b"x")
