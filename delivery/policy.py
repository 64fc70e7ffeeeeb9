"""The one email policy every part of delivery writes and reads messages with.

It is `email.policy.SMTP` (CRLF line ends, lines folded at 78, so servers never refuse
long lines) with one fix: Python folds a header holding a word longer than a line (a URL
with a token) into RFC 2047 encoded-words, and a `List-Unsubscribe` written as
`=?utf-8?q?=3Chttps=3A//...` is unreadable to mailbox providers. Those headers are folded
only between their `<...>` items instead, which RFC 5322 allows up to 998 characters a line.
"""

from __future__ import annotations

import email
import random
import re
import sys
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import EmailPolicy
from io import BytesIO

# Headers whose values are lists of <URI>s that must reach the reader byte for byte.
_URI_LIST_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-help"})
_HARD_LINE_LIMIT = 998


class _SmtpPolicy(EmailPolicy):
    def _fold_uri_list(self, name: str, value: str) -> str | None:
        text = "".join(str(value).splitlines())  # unfold source headers read from bytes
        if not text.isascii():
            return None
        # Split only between items: a comma inside <...> belongs to its URI.
        items = [item.strip() for item in re.split(r",\s*(?=<)", text)]
        lines = [f"{name}: {items[0]}"]
        # None (or 0) would mean "no limit" to `email`; the hard limit holds all the same.
        limit = self.max_line_length or _HARD_LINE_LIMIT
        for item in items[1:]:
            if len(lines[-1]) + 2 + len(item) <= limit:
                lines[-1] += f", {item}"
            else:
                lines[-1] += ","
                lines.append(f" {item}")
        if any(len(line) > _HARD_LINE_LIMIT for line in lines):
            return None
        return self.linesep.join(lines) + self.linesep

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _URI_LIST_HEADERS:
            folded = self._fold_uri_list(name, value)
            if folded is not None:
                return folded
        default: str = super().fold(name, value)  # typeshed leaves EmailPolicy.fold untyped
        return default

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _URI_LIST_HEADERS:
            folded = self._fold_uri_list(name, value)
            if folded is not None:
                return folded.encode("ascii")
        return super().fold_binary(name, value)


# cte_type="7bit": bodies go out as quoted-printable/base64, so no relay needs 8BITMIME.
EMAIL_POLICY: EmailPolicy = _SmtpPolicy(linesep="\r\n", cte_type="7bit")
"""`email.policy.SMTP`, 7-bit clean, plus verbatim folding of List-Unsubscribe headers."""


_NEWLINES = re.compile(r"\r\n|\r|\n")  # email.generator's NLCRE
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))  # email.generator's _width


class _WireGenerator(BytesGenerator):
    """`BytesGenerator` writing the very same bytes, without its two per-line costs on
    large bodies (an inline GIF is ~4,000 base64 lines): a body is written in one piece,
    and a multipart boundary is looked for by substring before the line-anchored regex."""

    def _write_lines(self, lines: str) -> None:
        # Generator._write_lines splits on any line end and writes each line plus the
        # policy's; substituting the line ends in one go gives the same text.
        if not lines:
            return
        assert self.policy is not None  # set for the length of flatten()
        linesep = self.policy.linesep
        if "\r" not in lines:
            self.write(lines.replace("\n", linesep))
        else:
            self.write(_NEWLINES.sub(linesep, lines))

    @classmethod
    def _make_boundary(cls, text: bytes | str | None = None) -> str:
        # The stdlib's draw and format; a line "--boundary" can only be in `text` if the
        # substring is, which is a fast scan where the MULTILINE regex is a slow one.
        token = random.randrange(sys.maxsize)
        boundary = "=" * 15 + f"{token:0{_BOUNDARY_WIDTH}d}" + "=="
        if text is None:
            return boundary
        candidate, counter = boundary, 0
        while _has_boundary_line(text, candidate):
            candidate = f"{boundary}.{counter}"
            counter += 1
        return candidate


def _has_boundary_line(text: bytes | str, boundary: str) -> bool:
    line = f"--{boundary}"
    pattern = "^" + re.escape(line) + "(--)?$"
    if isinstance(text, bytes):
        return line.encode("ascii") in text and bool(
            re.search(pattern.encode("ascii"), text, re.MULTILINE)
        )
    return line in text and bool(re.search(pattern, text, re.MULTILINE))


def message_to_bytes(msg: EmailMessage) -> bytes:
    """Serialize `msg` for the wire: CRLF, folded lines, List-Unsubscribe intact.

    The same bytes as `msg.as_bytes(policy=EMAIL_POLICY)`, written faster."""
    out = BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=EMAIL_POLICY).flatten(msg)
    return out.getvalue()


def headers_from_bytes(data: bytes) -> EmailMessage:
    """The header section of serialized message `data`, parsed with the delivery policy
    (no body: for reading From or Message-ID without parsing an inline GIF)."""
    head, blank, _ = data.partition(b"\r\n\r\n")
    if not blank:  # not written by message_to_bytes: let the parser find the end
        head = data
    msg = BytesHeaderParser(policy=EMAIL_POLICY).parsebytes(head + b"\r\n\r\n")
    assert isinstance(msg, EmailMessage)  # guaranteed by EmailPolicy's message_factory
    return msg


def leaf_payload(part: Message) -> bytes:
    """The decoded body of a leaf (non-multipart) part; b"" if it has none.

    `get_payload(decode=True)` gives bytes for a leaf part (None for a multipart one).
    """
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def message_from_bytes(data: bytes) -> EmailMessage:
    """Parse bytes written by `message_to_bytes` back into an `EmailMessage`."""
    msg = email.message_from_bytes(data, policy=EMAIL_POLICY)
    assert isinstance(msg, EmailMessage)  # guaranteed by EmailPolicy's message_factory
    return msg
