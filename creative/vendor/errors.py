"""What the vendor backend raises on purpose.

Messages name the vendor's HTTP status, the render id or the storyboard key (a content
hash), never a customer's personal data. The vendor's own error text is quoted only while
first names may not reach the vendor: it knows nothing personal then, so cannot echo it.
"""

from __future__ import annotations

from creative.errors import CreativeError


class VendorError(CreativeError):
    """The vendor refused or failed a render in a way a retry will not fix."""


class VendorUnavailable(VendorError):
    """The vendor did not answer usefully within the retry budget (down, 5xx, 429, slow).

    Safe to retry later: the key→render-id ledger makes a later attempt adopt a render
    the vendor may already have created instead of paying for a second one.
    """


class RenderFailed(VendorError):
    """The vendor reported the render as failed (as often as the budget allowed)."""


class ResultExpired(VendorError):
    """The result URL had expired and a fresh one from the vendor had expired too."""


class PayloadError(CreativeError):
    """A vendor payload would carry a field or a value that may not leave the house."""
