"""Pseudonymous customer ids for logs, artifacts and outside parties."""

from __future__ import annotations

import hashlib
import hmac


def pseudonymize(secret: bytes, customer_id: str) -> str:
    """A stable, non-reversible id for a customer: keyed HMAC, never a bare hash.

    Without the secret nobody can link the pseudonym back to the customer id by
    hashing candidate ids.
    """
    if not secret:
        raise ValueError("the pseudonymization secret is empty")
    digest = hmac.new(secret, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"cu_{digest[:16]}"
