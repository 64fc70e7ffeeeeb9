"""Where each product's picture is on this machine.

A catalog names a picture by a path relative to its own folder, or by an http(s) URL (a
Merchant Center feed's `image_link`). The renderer needs a file: `ImageFiles` answers both,
with the URLs' fetched copies (see `retail.remote_images`) looked up, never fetched here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_REMOTE = re.compile(r"^https?://", re.IGNORECASE)


def is_remote(image: str) -> bool:
    """Whether a catalog's image cell is a URL (else it is a path)."""
    return bool(_REMOTE.match(image))


class ImageNotHere(LookupError):
    """A picture has no file on this machine; the message says which and why."""


@dataclass(frozen=True)
class ImageFiles:
    """The catalog's folder, and the local copy of each fetched picture URL."""

    root: Path
    fetched: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def of(cls, images: Path | ImageFiles) -> ImageFiles:
        """`images` as ImageFiles (a folder alone serves only pictures named by path)."""
        return images if isinstance(images, ImageFiles) else cls(Path(images))

    def path(self, image: str) -> Path:
        """The file of a catalog's image cell; raises ImageNotHere for a URL that was not
        fetched, or a path that leaves the catalog's folder."""
        if is_remote(image):
            found = self.fetched.get(image)
            if found is None:
                raise ImageNotHere(
                    "a picture URL that was not fetched (load the catalog with images)"
                )
            return found
        root = self.root.resolve()
        path = (root / image).resolve()
        if not path.is_relative_to(root):
            raise ImageNotHere("the image path leaves the images folder")
        return path
