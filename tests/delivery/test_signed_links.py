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


def test_rolling_link_keys_keeps_the_links_already_sent_working() -> None:
    from delivery.links import LinkKeys

    workspace_secret = b"w" * 32
    before = make_token(workspace_secret, "spring", "cust-1")  # sent before keys had ids
    ring_2026 = LinkKeys(current="2026", keys={"2026": b"a" * 32}, legacy=workspace_secret)
    sent_2026 = make_token(ring_2026, "summer", "cust-1")
    ring_2027 = LinkKeys(
        current="2027", keys={"2026": b"a" * 32, "2027": b"b" * 32}, legacy=workspace_secret
    )
    sent_2027 = make_token(ring_2027, "autumn", "cust-1")
    assert read_token(ring_2027, before) == ("spring", "cust-1")
    assert read_token(ring_2027, sent_2026) == ("summer", "cust-1")
    assert read_token(ring_2027, sent_2027) == ("autumn", "cust-1")
    assert sent_2027 != make_token(ring_2026, "autumn", "cust-1")  # the new key signs
    retired = LinkKeys(current="2027", keys={"2027": b"b" * 32}, legacy=workspace_secret)
    with pytest.raises(InvalidToken, match="not \\(or no longer\\) in the ring"):
        read_token(retired, sent_2026)
    with pytest.raises(InvalidToken):
        read_token(workspace_secret, sent_2027)  # a bare secret knows no key ids


def test_a_key_id_cannot_be_swapped_to_another_key() -> None:
    import base64

    from delivery.links import LinkKeys

    ring = LinkKeys(current="k1", keys={"k1": b"a" * 32, "k2": b"b" * 32})
    token = make_token(ring, "spring", "cust-1")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert raw[:4] == b"\x02\x02k1"
    raw[3] = ord("2")  # claim the other key
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        read_token(ring, forged)


def test_a_ring_without_its_current_key_is_a_clear_error() -> None:
    from delivery.errors import DeliveryError
    from delivery.links import LinkKeys

    with pytest.raises(DeliveryError, match="current link key id '2028' is not among the keys"):
        LinkKeys(current="2028", keys={"2027": b"b" * 32})
    with pytest.raises(DeliveryError, match="link key id 'a b'"):
        LinkKeys(current="a b", keys={"a b": b"b" * 32})
