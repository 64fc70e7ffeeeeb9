"""Whether a file can serve as a product image, decided from its header alone.

A hostile or broken image must cost one product, never the campaign: the header says how
many pixels decoding would make, so a decompression bomb (a small file that decodes to
gigabytes) is refused before any pixel is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: larger files are refused before they are opened (a product photo is a few MB)
MAX_IMAGE_BYTES = 40_000_000
#: more pixels than this are refused from the header (8K × 5K is 40 MP)
MAX_IMAGE_PIXELS = 40_000_000


def image_problem(
    path: Path, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> str | None:
    """Why the file at `path` cannot be a product image, or None when it can.

    Reads the file size and the image header only; never decodes the pixels.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return "file not found"
    if size > max_bytes:
        return f"the file is {size / 1e6:.0f} MB; images over {max_bytes / 1e6:.0f} MB are refused"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "the image would decode to too many pixels (a decompression bomb?)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "not a readable image (JPEG, PNG, WebP or GIF)"
    if width * height > max_pixels:
        return (
            f"{width}×{height} pixels is over the {max_pixels / 1e6:.0f}-megapixel limit: "
            "scale it down"
        )
    return None
