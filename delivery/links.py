"""Signed, opaque link tokens and the URLs built from them.

A token names one (campaign, customer) pair. It goes into landing and unsubscribe links
that anyone holding the email can see or forward, so it must not show the customer id,
must not be guessable from a neighbour's token, and must not be forgeable.

Construction (stdlib only, deterministic authenticated encryption in the SIV style):
    iv    = HMAC-SHA256(k_mac, version || payload)[:16]
    ct    = payload XOR HMAC-SHA256-CTR(k_enc, iv)
    token = base64url(version || iv || ct), without padding
The IV is the MAC, so the same pair always gets the same token (re-composing an email
yields identical links) while any changed bit fails verification. Keys are derived from
the one secret (HKDF), so the MAC key is never the encryption key and neither is the
secret itself, which other modules also use.

Rolling keys (`LinkKeys`): version 2 tokens carry the id of the key that made them
(version || id length || id || iv || ct, the id under the MAC too), so a new key can sign
new links while the links already sent keep working as long as their key stays in the
ring. Version 1 tokens (no id) are read with the ring's `legacy` key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from delivery.errors import DeliveryError, InvalidToken

_VERSION = 1
_VERSION_WITH_KEY_ID = 2
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_IV_BYTES = 16  # 128-bit tag: forging or enumerating tokens means guessing this
_MIN_SECRET_BYTES = 16
_MAX_TOKEN_CHARS = 1024  # refuse to decode anything absurd before doing any work


def _subkey(secret: bytes, label: bytes) -> bytes:
    # HKDF-SHA256 (salt = our label, info = purpose). The secret is the HMAC *message*
    # here, never the key of a customer-controlled message, so a customer id equal to a
    # label cannot make another module's HMAC(secret, id) reveal a link key.
    prk = hmac.new(b"reelcast/links/v1", secret, hashlib.sha256).digest()
    return hmac.new(prk, label + b"\x01", hashlib.sha256).digest()


def _keystream(key: bytes, iv: bytes, length: int) -> bytes:
    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(hmac.new(key, iv + counter.to_bytes(4, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
        raise DeliveryError(
            f"the link secret must be at least {_MIN_SECRET_BYTES} random bytes "
            "(generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )


@dataclass(frozen=True)
class LinkKeys:
    """The keys links are signed with, each under an id.

    `current` names the key that signs new links; every key in `keys` still reads the
    links it made, so retire a key only once its links may go dead. `legacy` reads links
    made before keys had ids (the workspace secret, for most installations). With no
    `keys` at all, new links are made with `legacy`, as before ids existed.
    """

    current: str | None = None
    keys: Mapping[str, bytes] = field(default_factory=dict)
    legacy: bytes | None = None

    def __post_init__(self) -> None:
        for key_id, secret in self.keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise DeliveryError(
                    f"link key id {key_id!r}: use 1 to 32 letters, digits, '.', '_' or '-'"
                )
            _check_secret(secret)
        if self.keys and self.current not in self.keys:
            raise DeliveryError(
                f"the current link key id {self.current!r} is not among the keys "
                f"({', '.join(sorted(self.keys))}): name one of them"
            )
        if not self.keys and self.legacy is None:
            raise DeliveryError("no link key: give keys or a legacy secret")


Secret = bytes | LinkKeys


def make_token(secret: Secret, campaign_id: str, customer_id: str) -> str:
    """Return a URL-safe token for (campaign_id, customer_id) that only `secret` can read.

    The token is deterministic for a given key and pair, reveals neither id, and any
    modification makes `read_token` reject it. With `LinkKeys` that name a current key,
    the token carries that key's id.
    """
    key_id, secret = _signing_key(secret)
    _check_secret(secret)
    campaign = campaign_id.encode("utf-8")
    customer = customer_id.encode("utf-8")
    if not campaign or not customer or len(campaign) > 0xFFFF:
        raise DeliveryError("campaign and customer ids must be non-empty (campaign < 64 KiB)")
    if key_id is None:
        header = bytes([_VERSION])
    else:
        kid = key_id.encode("ascii")
        header = bytes([_VERSION_WITH_KEY_ID, len(kid)]) + kid
    # Length-prefixing the campaign id keeps the split unambiguous whatever the ids contain.
    payload = struct.pack(">H", len(campaign)) + campaign + customer
    iv = hmac.new(_subkey(secret, b"mac"), header + payload, hashlib.sha256).digest()
    iv = iv[:_IV_BYTES]
    ciphertext = _xor(payload, _keystream(_subkey(secret, b"enc"), iv, len(payload)))
    return base64.urlsafe_b64encode(header + iv + ciphertext).rstrip(b"=").decode("ascii")


def _signing_key(secret: Secret) -> tuple[str | None, bytes]:
    if isinstance(secret, bytes):
        return None, secret
    if secret.keys:
        assert secret.current is not None  # checked when the ring was made
        return secret.current, secret.keys[secret.current]
    assert secret.legacy is not None
    return None, secret.legacy


def _reading_key(secret: Secret, key_id: str | None) -> bytes:
    if isinstance(secret, bytes):
        if key_id is not None:
            raise InvalidToken("token names a key id, but only one unnamed key is known")
        return secret
    if key_id is None:
        if secret.legacy is None:
            raise InvalidToken("token was made before link keys had ids; no legacy key")
        return secret.legacy
    found = secret.keys.get(key_id)
    if found is None:
        raise InvalidToken("token was made with a key that is not (or no longer) in the ring")
    return found


def read_token(secret: Secret, token: str) -> tuple[str, str]:
    """Return (campaign_id, customer_id) from a token made by `make_token` with `secret`
    (or, for `LinkKeys`, with any key of the ring or its legacy key).

    Raises `InvalidToken` for anything else: wrong or retired key, a changed character, a
    truncated or padded token, a non-canonical encoding.
    """
    if isinstance(secret, bytes):
        _check_secret(secret)
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        raise InvalidToken("token is empty or too long")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidToken("token is not url-safe base64") from None
    # Unused low bits of the last character would otherwise let two spellings decode alike.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken("token is not in canonical form")
    if raw[:1] == bytes([_VERSION_WITH_KEY_ID]) and len(raw) >= 2:
        size = raw[1]
        key_id_bytes = raw[2 : 2 + size]
        if len(key_id_bytes) != size or not _KEY_ID.fullmatch(key_id_bytes.decode("latin-1")):
            raise InvalidToken("token's key id is malformed")
        key_id: str | None = key_id_bytes.decode("ascii")
        head = 2 + size
    elif raw[:1] == bytes([_VERSION]):
        key_id, head = None, 1
    else:
        raise InvalidToken("token has an unknown version or is truncated")
    if len(raw) < head + _IV_BYTES + 3:
        raise InvalidToken("token has an unknown version or is truncated")
    key = _reading_key(secret, key_id)
    header, iv, ciphertext = raw[:head], raw[head : head + _IV_BYTES], raw[head + _IV_BYTES :]
    payload = _xor(ciphertext, _keystream(_subkey(key, b"enc"), iv, len(ciphertext)))
    expected = hmac.new(_subkey(key, b"mac"), header + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected[:_IV_BYTES], iv):
        raise InvalidToken("token signature does not match")
    (campaign_len,) = struct.unpack(">H", payload[:2])
    campaign, customer = payload[2 : 2 + campaign_len], payload[2 + campaign_len :]
    if len(campaign) != campaign_len or not customer:
        raise InvalidToken("token payload is malformed")
    return campaign.decode("utf-8"), customer.decode("utf-8")


@dataclass(frozen=True)
class RecipientLinks:
    """Every link one email carries for its recipient."""

    token: str
    landing: str
    unsubscribe: str
    unsubscribe_mailto: str
    open_pixel: str = ""
    # The tracking app's base URL; empty means "no click tracking" (`click` returns the
    # product URL unchanged), which keeps RecipientLinks built by hand working.
    base_url: str = ""

    def click(self, url: str) -> str:
        """The tracked link to `url` (a product page on the shop), or `url` itself when
        these links were built without a base URL."""
        if not self.base_url:
            return url
        return f"{self.base_url}/c/{quote(self.token, safe='')}?u={quote(url, safe='')}"


class Links:
    """Builds the public URLs of the tracking app from a token.

    `base_url` is where the tracking app is reachable from the recipient's mail client.
    RFC 8058 one-click unsubscribe (and Gmail/Yahoo bulk-sender rules) want https there;
    the plain-http loopback default is for the demo only.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8010",
        *,
        unsubscribe_address: str,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DeliveryError(f"links base URL must be http(s)://host[:port], got {base_url!r}")
        if parts.query or parts.fragment:
            raise DeliveryError(f"links base URL must not carry a query or fragment: {base_url!r}")
        if "@" not in unsubscribe_address or any(c in unsubscribe_address for c in "<>?\r\n "):
            raise DeliveryError(
                "unsubscribe address must be a bare address like unsub@shop.example"
            )
        self.base_url = base_url.rstrip("/")
        self.unsubscribe_address = unsubscribe_address

    def landing(self, token: str) -> str:
        """The video landing page for this token."""
        return f"{self.base_url}/v/{quote(token, safe='')}"

    def unsubscribe(self, token: str) -> str:
        """The unsubscribe page, which also takes the RFC 8058 one-click POST."""
        return f"{self.base_url}/u/{quote(token, safe='')}"

    def click(self, token: str, url: str) -> str:
        """A click link that records the click and redirects to `url`.

        The tracking app only redirects to hosts on its allowlist (the shop's own), so a
        changed `u` parameter cannot turn this into an open redirect.
        """
        return f"{self.base_url}/c/{quote(token, safe='')}?u={quote(url, safe='')}"

    def open_pixel(self, token: str) -> str:
        """The 1×1 image whose loading records an open."""
        return f"{self.base_url}/o/{quote(token, safe='')}.gif"

    def video(self, render_key: str) -> str:
        """The rendered video file. No token: the key is a sha256 nobody can guess, and a
        video may show the customer's first name, so it must stay unlisted, not public."""
        return f"{self.base_url}/r/{quote(render_key, safe='')}/video.mp4"

    def unsubscribe_mailto(self, token: str) -> str:
        """A mailto: link whose subject carries the token, so a reply can be matched."""
        return f"mailto:{self.unsubscribe_address}?subject={quote('unsubscribe ' + token)}"

    def for_token(self, token: str) -> RecipientLinks:
        """All links for one recipient's token."""
        return RecipientLinks(
            token=token,
            landing=self.landing(token),
            unsubscribe=self.unsubscribe(token),
            unsubscribe_mailto=self.unsubscribe_mailto(token),
            open_pixel=self.open_pixel(token),
            base_url=self.base_url,
        )
