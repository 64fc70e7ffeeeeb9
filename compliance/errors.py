"""The one exception type a caller of `compliance` can cause."""

from __future__ import annotations

from retail.errors import ReelcastError


class ComplianceError(ReelcastError):
    """A compliance input (a policy file, a suppression list) cannot be used as it is.

    The message names the file and the field, and never carries a customer's personal data.
    """
