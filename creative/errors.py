"""The errors creative/ raises on purpose.

`CreativeError` is what a user can cause and fix (a bad template, a missing image, a
missing ffmpeg); anything else escaping this package is our bug. Messages name the file,
field or product and never carry a customer's personal data, only the customer id.
"""

from __future__ import annotations

from retail.errors import ReelcastError


class CreativeError(ReelcastError):
    """A problem with the inputs or the machine that the user can fix."""


class TemplateError(CreativeError):
    """A template folder is invalid; the message names the file and the field."""


class RenderError(CreativeError):
    """Rendering a storyboard failed; the message carries the tail of ffmpeg's log."""
