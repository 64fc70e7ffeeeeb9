"""compose_campaign_email: structure, content, headers, escaping, line lengths."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from decimal import Decimal
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from delivery_support import CAMPAIGN, SECRET, make_customer, make_product

from delivery.errors import DeliveryError
from delivery.links import make_token
from delivery.policy import message_from_bytes, message_to_bytes

Compose = Callable[..., EmailMessage]


def _reparsed(msg: EmailMessage) -> EmailMessage:
    """What a receiving mail client sees: the wire bytes parsed with the default policy."""
    parsed = email.message_from_bytes(message_to_bytes(msg), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_message_is_alternative_of_text_and_related_html_with_inline_poster(
    compose: Compose, poster: Path
) -> None:
    msg = _reparsed(compose())
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert image.get_content_type() == "image/jpeg"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == poster.read_bytes()
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()


def test_poster_links_to_the_landing_page(compose: Compose) -> None:
    _, html = _parts(_reparsed(compose()))
    token = make_token(SECRET, CAMPAIGN, "cust-00001")
    landing = f"https://shop.example/v/{token}"
    assert re.search(rf'<a href="{re.escape(landing)}"[^>]*>\s*<img [^>]*src="cid:', html)


def test_headers_carry_one_click_unsubscribe_and_identity(compose: Compose) -> None:
    msg = _reparsed(compose())
    token = make_token(SECRET, CAMPAIGN, "cust-00001")
    assert msg["List-Unsubscribe"] == (
        f"<https://shop.example/u/{token}>, "
        f"<mailto:unsubscribe@shop.example?subject=unsubscribe%20{token}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<[^<>@\s]+@shop\.example>", msg["Message-ID"])
    assert msg["Date"] == "Fri, 01 May 2026 10:00:00 +0000"
    assert msg["From"] == "Demo Shop <news@shop.example>"
    assert msg["To"].addresses[0].addr_spec == "shopper1@mail.example"
    assert msg["Subject"] == "Picked for you"
    assert msg["X-Campaign-ID"] == CAMPAIGN


def test_list_unsubscribe_survives_long_tokens_without_encoded_words(compose: Compose) -> None:
    customer = make_customer(id="c" * 128)
    wire = message_to_bytes(compose(customer))
    header = re.search(rb"List-Unsubscribe: (.*?)\r\n(?! )", wire, re.S)
    assert header is not None and b"=?" not in header.group(1)
    token = make_token(SECRET, CAMPAIGN, "c" * 128)
    assert f"https://shop.example/u/{token}" in _reparsed(compose(customer))["List-Unsubscribe"]


def test_greets_by_first_name_and_shows_products_with_local_prices(compose: Compose) -> None:
    msg = compose(make_customer(first_name="Jürgen", locale="de_DE"))
    text, html = _parts(_reparsed(msg))
    # The CSS inliner re-serializes the HTML and writes U+00A0 as &nbsp;.
    for body in (text, unescape(html)):
        assert "Hi Jürgen," in body
        assert "Trail Runner 1" in body and "Trail Runner 2" in body
        assert "1.234,50\xa0€" in body
        assert "19,99\xa0€" in body
    # Product links go through the tracking app's click redirect, carrying the shop URL.
    clicks = re.findall(r'href="(https://shop\.example/c/[^"]+)"', html)
    targets = {parse_qs(urlsplit(unescape(c)).query)["u"][0] for c in clicks}
    assert "https://shop.example/p/1?utm_source=email&ref=reel" in targets


def test_prices_follow_the_customers_locale(compose: Compose) -> None:
    products = [make_product(1, price=Decimal("1234.50"), currency="USD")]
    text, _ = _parts(compose(make_customer(locale="en_US"), products=products))
    assert "$1,234.50" in text
    text, _ = _parts(compose(make_customer(locale="fr_FR"), products=products))
    assert "1\u202f234,50\xa0$US" in text


def test_label_postal_address_and_unsubscribe_are_visible(compose: Compose) -> None:
    assert "Personalized video" in _parts(_reparsed(compose()))[0], "the default label"
    text, html = _parts(_reparsed(compose(label="Video made with AI")))
    token = make_token(SECRET, CAMPAIGN, "cust-00001")
    for body in (text, html):
        assert "Video made with AI" in body
        assert "Demo Shop GmbH" in body and "10115 Berlin, Germany" in body
        assert f"https://shop.example/u/{token}" in body
        assert "https://cdn.shop.example/v/abc123.mp4" in body
    assert re.search(r'<a [^>]*href="https://shop.example/u/[^"]+"[^>]*>Unsubscribe</a>', html)
    assert 'lang="en"' in html


def test_hostile_product_titles_show_literally(compose: Compose) -> None:
    products = [
        make_product(1, title='<script>alert("x")</script>'),
        make_product(2, title="{{ 7*7 }} {% if true %}yes{% endif %}"),
        make_product(3, title='"><img src=x onerror=alert(1)>', brand="<b>Brand</b>"),
    ]
    text, html = _parts(_reparsed(compose(products=products)))
    assert "<script>" not in html and "onerror=alert(1)>" not in html and "<b>Brand" not in html
    # Quotes in text need no escaping; the CSS inliner's serializer writes them bare.
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in html
    assert ">{{ 7*7 }} {% if true %}yes{% endif %}</a>" in html  # not rendered as "49 yes"
    assert '<script>alert("x")</script>' in text
    assert "{{ 7*7 }} {% if true %}yes{% endif %}" in text


def test_hostile_first_name_is_escaped(compose: Compose) -> None:
    _, html = _parts(compose(make_customer(first_name="<i>Eve</i>")))
    assert "Hi &lt;i&gt;Eve&lt;/i&gt;," in html


def test_long_lines_are_folded_for_smtp(compose: Compose) -> None:
    products = [make_product(1, title="Extraordinarily " * 18), make_product(2, title="x" * 300)]
    wire = message_to_bytes(compose(products=products, subject="A long subject line " * 8))
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    assert wire.isascii()
    text, html = _parts(_reparsed(compose(products=products)))
    assert "x" * 300 in text and "x" * 300 in html


def test_stored_bytes_parse_back_to_the_same_wire_form(compose: Compose) -> None:
    wire = message_to_bytes(compose())
    assert message_to_bytes(message_from_bytes(wire)) == wire


def test_subject_with_a_line_break_is_refused(compose: Compose) -> None:
    with pytest.raises(ValueError):
        compose(subject="Hello\r\nBcc: victim@example.com")


def test_missing_poster_is_an_error_naming_only_the_customer_id(
    compose: Compose, tmp_path: Path
) -> None:
    with pytest.raises(DeliveryError, match="cust-00001") as caught:
        compose(poster=tmp_path / "missing.jpg")
    assert "shopper1@mail.example" not in str(caught.value)


def test_an_email_needs_products(compose: Compose) -> None:
    with pytest.raises(DeliveryError):
        compose(products=[])


def test_missing_or_broken_template_names_the_file(compose: Compose, tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=r"campaign\.html\.j2"):
        compose(templates_dir=tmp_path)
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "campaign.html.j2").write_text("line one\n{{ nope(}}\n")
    with pytest.raises(DeliveryError, match=r"campaign\.html\.j2 line 2"):
        compose(templates_dir=tmp_path)


def test_a_customer_without_personalization_is_not_greeted_by_name(compose: Compose) -> None:
    named = _parts(_reparsed(compose(make_customer(first_name="Ann"))))
    assert all("Hi Ann," in part for part in named)
    plain, html = _parts(_reparsed(compose(make_customer(first_name="Ann", personalization=False))))
    assert "Hello," in plain and "Hello," in html
    assert "Ann" not in plain and "Ann" not in unescape(html)


def test_a_customer_without_a_first_name_gets_the_neutral_greeting(compose: Compose) -> None:
    # Shop exports often have no first name (guest checkouts): "Hello,", never "Hi ,".
    plain, html = _parts(_reparsed(compose(make_customer(first_name="", last_name="Lee"))))
    assert "Hello," in plain and "Hello," in html
    assert "Hi ," not in plain and "Hi ," not in unescape(html)
