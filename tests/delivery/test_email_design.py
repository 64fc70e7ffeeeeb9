"""Compose: inlined CSS, subject variants, the GIF preview, and the HTML preview file."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import (
    CAMPAIGN,
    POSTAL,
    SECRET,
    SENDER,
    TEMPLATES,
    make_customer,
    make_product,
)
from PIL import Image

from delivery.compose import (
    GIF_MAX_BYTES,
    assign_variant,
    choose_subject,
    compose_campaign_email,
    preview_email,
    variant_label,
)
from delivery.errors import DeliveryError
from delivery.links import Links, make_token

Compose = Callable[..., EmailMessage]


def _html(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return part.get_content()


@pytest.fixture
def gif(tmp_path: Path) -> Path:
    path = tmp_path / "preview.gif"
    frames = [Image.new("RGB", (72, 128), color) for color in ((0, 90, 200), (0, 160, 90))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200, loop=0)
    return path


def test_css_is_inlined_and_only_media_queries_stay_in_the_head(compose: Compose) -> None:
    html = _html(compose())
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert "@media" in style
    assert re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", style).strip() == ""
    # Class rules became style attributes, and the classes stay for the media queries.
    assert re.search(r'<td class="card"[^>]*style="[^"]*width: 50%', html)
    assert re.search(r'class="button-link"[^>]*style="[^"]*display: inline-block', html)
    assert "font-family: Arial" in html


def test_layout_is_tables_with_a_fluid_container(compose: Compose) -> None:
    html = _html(compose())
    assert 'role="presentation"' in html
    assert re.search(r'class="container"[^>]*style="[^"]*max-width: 600px', html)
    assert "<!--[if mso]>" in html  # fixed-width ghost table for Outlook on Windows
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_subject_variant_is_deterministic_per_pseudonym_and_recorded(compose: Compose) -> None:
    subjects = ["Picked for you", "Your week in video", "New for you"]
    seen = Counter()
    for n in range(60):
        pseudonym = f"cu_{n:016x}"
        first = compose(make_customer(n), subject=subjects, pseudonym=pseudonym)
        again = compose(make_customer(n), subject=subjects, pseudonym=pseudonym)
        assert first["Subject"] == again["Subject"]
        label = first["X-Reelcast-Variant"]
        assert first["Subject"] == subjects["ABC".index(label)]
        assert first["X-Reelcast-Pseudonym"] == pseudonym
        seen[label] += 1
    assert set(seen) == {"A", "B", "C"} and min(seen.values()) >= 10


def test_subject_variants_come_from_choose_subject(compose: Compose) -> None:
    index, subject = choose_subject(["one", "two"], key="cu_1", campaign_id=CAMPAIGN)
    msg = compose(subject=["one", "two"], pseudonym="cu_1")
    assert msg["Subject"] == subject and msg["X-Reelcast-Variant"] == variant_label(index)
    assert compose(subject="only one")["X-Reelcast-Variant"] == "A"


def test_variant_assignment_is_independent_per_experiment() -> None:
    keys = [f"cu_{n:04d}" for n in range(400)]
    a = [assign_variant(k, "spring/subject", 2) for k in keys]
    b = [assign_variant(k, "summer/subject", 2) for k in keys]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(keys)
    assert 0.4 < agree < 0.6
    assert variant_label(0) == "A" and variant_label(25) == "Z" and variant_label(26) == "27"
    with pytest.raises(DeliveryError):
        choose_subject([], key="k", campaign_id=CAMPAIGN)


def test_small_gif_is_preferred_over_the_poster(compose: Compose, gif: Path) -> None:
    msg = compose(gif=gif)
    images = [p for p in msg.walk() if p.get_content_maintype() == "image"]
    assert [p.get_content_type() for p in images] == ["image/gif"]
    assert images[0].get_content() == gif.read_bytes()
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in _html(msg)


def test_gif_over_the_limit_falls_back_to_the_poster(
    compose: Compose, gif: Path, poster: Path
) -> None:
    assert GIF_MAX_BYTES == 1_000_000
    msg = compose(gif=gif, max_gif_bytes=gif.stat().st_size - 1)
    [image] = [p for p in msg.walk() if p.get_content_maintype() == "image"]
    assert image.get_content_type() == "image/jpeg"
    assert image.get_content() == poster.read_bytes()


def test_compose_campaign_email_reports_its_choices(gif: Path, poster: Path, links: Links) -> None:
    composed = compose_campaign_email(
        customer=make_customer(),
        products=[make_product(1)],
        poster=poster,
        gif=gif,
        video_url="https://cdn.shop.example/v.mp4",
        links=links.for_token(make_token(SECRET, CAMPAIGN, "cust-00001")),
        sender=SENDER,
        postal_address=POSTAL,
        subject=["a", "b"],
        campaign_id=CAMPAIGN,
        templates_dir=TEMPLATES,
        pseudonym="cu_0123456789abcdef",
    )
    assert composed.image == gif
    assert composed.message["X-Reelcast-Variant"] == composed.variant
    assert composed.subject == ["a", "b"][composed.variant_index]


def test_preview_writes_html_with_images_beside_it_or_inlined(
    compose: Compose, tmp_path: Path, poster: Path
) -> None:
    msg = compose()
    out = preview_email(msg, tmp_path / "previews" / "email.html")
    html = out.read_text()
    assert "cid:" not in html and 'src="email-1.jpg"' in html
    assert (out.parent / "email-1.jpg").read_bytes() == poster.read_bytes()
    inlined = preview_email(msg, tmp_path / "inline.html", inline_images=True).read_text()
    assert 'src="data:image/jpeg;base64,' in inlined


def test_preview_of_a_message_without_html_is_a_clear_error(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg.set_content("plain only")
    with pytest.raises(DeliveryError, match="no HTML part"):
        preview_email(msg, tmp_path / "x.html")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A catalog folder with two product pictures of different shapes."""
    root = tmp_path / "catalog"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (800, 400), (200, 40, 40)).save(root / "images" / "1.jpg", "JPEG")
    Image.new("RGB", (300, 900), (40, 40, 200)).save(root / "images" / "2.jpg", "JPEG")
    return root


def _thumbs(html: str) -> list[dict[str, str]]:
    from html.parser import HTMLParser

    found: list[dict[str, str]] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = {k: v or "" for k, v in attrs}
            if tag == "img" and "thumb" in values.get("class", "").split():
                found.append(values)

    Images().feed(html)
    return found


def test_product_cards_show_retina_thumbnails_with_alt_text(
    compose: Compose, catalog: Path
) -> None:
    from io import BytesIO

    products = [make_product(1, title="Red <Runner>"), make_product(2), make_product(3)]
    products[2] = make_product(3, image="images/1.jpg")  # the same picture as product 1
    msg = compose(products=products, images_root=catalog)
    html = _html(msg)
    thumbs = _thumbs(html)
    assert [t["alt"] for t in thumbs] == ["Red <Runner>", "Trail Runner 2", "Trail Runner 3"]
    assert all(t["width"] == "120" and t["height"] == "120" for t in thumbs)
    parts = {
        p["Content-ID"].strip("<>"): p
        for p in msg.walk()
        if p.get_content_maintype() == "image" and p.get_filename().startswith("product-")
    }
    assert len(parts) == 2, "a picture shown twice is attached once"
    assert thumbs[0]["src"] == thumbs[2]["src"] != thumbs[1]["src"]
    for thumb in thumbs:
        part = parts[thumb["src"].removeprefix("cid:")]
        picture = Image.open(BytesIO(part.get_content()))
        assert picture.format == "JPEG" and picture.size == (240, 240), "2x for retina"
    # The whole picture, fitted: the red product fills the middle row, white above it.
    red = Image.open(BytesIO(parts[thumbs[0]["src"][4:]].get_content())).convert("RGB")
    assert red.getpixel((120, 120))[0] > 150 and min(red.getpixel((120, 5))) > 230


def test_with_images_blocked_a_card_still_reads(compose: Compose, catalog: Path) -> None:
    html = _html(compose(products=[make_product(1)], images_root=catalog))
    without_images = re.sub(r"<img [^>]*>", "", html)
    for text in ("Trail Runner 1", "Acme", "€1,234.50"):
        assert text in without_images


def test_a_hosted_picture_is_linked_not_attached(compose: Compose, catalog: Path) -> None:
    hosted = "https://cdn.shop.example/img/9.jpg?w=480"
    msg = compose(products=[make_product(9, image=hosted)], images_root=catalog)
    assert _thumbs(_html(msg))[0]["src"] == hosted
    assert not [p for p in msg.walk() if (p.get_filename() or "").startswith("product-")]


def test_a_missing_or_broken_picture_is_an_error_naming_it(compose: Compose, catalog: Path) -> None:
    with pytest.raises(DeliveryError, match=r"product sku-7: picture not found at .*7\.jpg"):
        compose(products=[make_product(7)], images_root=catalog)
    (catalog / "images" / "7.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DeliveryError, match=r"product picture .*7\.jpg cannot be read"):
        compose(products=[make_product(7)], images_root=catalog)


def test_without_a_catalog_folder_cards_have_no_picture(compose: Compose) -> None:
    assert _thumbs(_html(compose())) == []
