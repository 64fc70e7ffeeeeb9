"""Link tokens: round-trip, opaque, unforgeable; the URLs built from them."""

from __future__ import annotations

import base64

import pytest
from delivery_support import SECRET

from delivery.errors import DeliveryError, InvalidToken
from delivery.links import Links, make_token, read_token


def test_token_round_trips_campaign_and_customer() -> None:
    token = make_token(SECRET, "spring-2026", "cust-00042")
    assert read_token(SECRET, token) == ("spring-2026", "cust-00042")


def test_token_round_trips_ids_with_any_characters() -> None:
    campaign, customer = "früh:jahr|2026", "ü/ß:42|x\x00y"
    assert read_token(SECRET, make_token(SECRET, campaign, customer)) == (campaign, customer)


def test_token_is_url_safe_and_deterministic() -> None:
    token = make_token(SECRET, "spring-2026", "cust-00042")
    assert token == make_token(SECRET, "spring-2026", "cust-00042")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_token_does_not_reveal_the_customer_id() -> None:
    token = make_token(SECRET, "spring-2026", "cust-00042")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert "cust-00042" not in token
    assert b"cust-00042" not in raw
    assert b"spring-2026" not in raw


def test_neighbouring_customers_get_unrelated_tokens() -> None:
    a = make_token(SECRET, "spring-2026", "cust-00042")
    b = make_token(SECRET, "spring-2026", "cust-00043")
    # No shared prefix beyond the version byte's first character: nothing to enumerate.
    common = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert common <= 2


def test_every_single_character_change_is_rejected() -> None:
    token = make_token(SECRET, "spring-2026", "cust-00042")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, char in enumerate(token):
        for other in (
            alphabet[(alphabet.index(char) + 1) % 64],
            alphabet[alphabet.index(char) ^ 1],
        ):
            tampered = token[:i] + other + token[i + 1 :]
            if tampered == token:
                continue
            with pytest.raises(InvalidToken):
                read_token(SECRET, tampered)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t[:10],
        lambda t: t + "A",
        lambda t: t + "==",
        lambda t: t.replace("-", "+").replace("_", "/") + "+",
        lambda t: "",
        lambda t: "x" * 5000,
        lambda t: "not a token!",
        lambda t: "ÄÖÜ",
    ],
)
def test_malformed_tokens_are_rejected(mangle) -> None:  # type: ignore[no-untyped-def]
    token = make_token(SECRET, "spring-2026", "cust-00042")
    with pytest.raises(InvalidToken):
        read_token(SECRET, mangle(token))


def test_token_from_another_secret_is_rejected() -> None:
    token = make_token(b"another-secret-also-32-bytes-long", "spring-2026", "cust-00042")
    with pytest.raises(InvalidToken):
        read_token(SECRET, token)


def test_short_secret_is_refused() -> None:
    with pytest.raises(DeliveryError, match="at least 16"):
        make_token(b"short", "c", "u")


def test_links_are_built_from_the_public_base_url() -> None:
    links = Links("https://t.shop.example/", unsubscribe_address="unsub@shop.example")
    recipient = links.for_token("TOKEN_-1")
    assert recipient.landing == "https://t.shop.example/v/TOKEN_-1"
    assert recipient.unsubscribe == "https://t.shop.example/u/TOKEN_-1"
    assert (
        recipient.unsubscribe_mailto == "mailto:unsub@shop.example?subject=unsubscribe%20TOKEN_-1"
    )


def test_links_default_to_the_local_tracking_app() -> None:
    links = Links(unsubscribe_address="unsub@shop.example")
    assert links.landing("t") == "http://127.0.0.1:8010/v/t"


@pytest.mark.parametrize("base", ["ftp://x", "shop.example", "https://x/?a=1", "https://x/#f"])
def test_links_refuse_unusable_base_urls(base: str) -> None:
    with pytest.raises(DeliveryError):
        Links(base, unsubscribe_address="unsub@shop.example")
