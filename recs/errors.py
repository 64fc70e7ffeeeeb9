"""The one exception type a caller of `recs` can cause."""

from __future__ import annotations

from retail.errors import ReelcastError


class RecsError(ReelcastError):
    """Recommendations cannot be made from these inputs or settings.

    The message names the offending setting or says what to change; it carries product
    ids and customer ids at most, never personal data.
    """
