"""Which format a retailer's file is in, from its first bytes and header row."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Literal

from retail.errors import RetailDataError, RowProblem
from retail.loaders import _open

#: the catalog formats `load_catalog` reads without a mapping file
CatalogFormat = Literal["reelcast", "merchant_text", "merchant_xml", "shopify"]
#: the customer-list formats `load_customers` reads
CustomersFormat = Literal["reelcast", "shopify"]

_HEAD_CHARS = 16 * 1024
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")


def _head(path: Path) -> str:
    # Latin-1 for the bytes that are not UTF-8: only the header's names matter here, and
    # the loader itself judges the file's encoding.
    with _open(path, "latin-1") as (_source, text):
        return text.read(_HEAD_CHARS).lstrip("\ufeff \t\r\n")


def _header(head: str) -> list[str]:
    line = head.split("\n", 1)[0]
    cells = next(csv.reader([line], delimiter="\t" if "\t" in line else ","), [])
    return [c.strip().lower() for c in cells]


def detect_catalog_format(path: Path) -> CatalogFormat:
    """The format of the catalog file at `path`:

    - "merchant_xml": XML whose root element is `<rss>` or `<feed>` (Merchant Center);
    - "shopify": a header with `Handle` and `Variant Price` (Shopify's product export);
    - "merchant_text": a header with `image_link` (also `g:image_link`, `image link`) or
      any `g:`-prefixed name (a Merchant Center text feed);
    - "reelcast": anything else, our own CSV.

    Raises RetailDataError for XML of another kind, and as the loaders do for a file that
    is missing or not text.
    """
    path = Path(path)
    head = _head(path)
    if head.startswith("<"):
        root = _ELEMENT.search(_COMMENT.sub("", head))
        if root is None or root[1].rsplit(":", 1)[-1] in ("rss", "feed"):
            return "merchant_xml"  # no root in sight: the XML reader says what is wrong
        raise RetailDataError(
            [
                RowProblem(
                    path,
                    0,
                    "xml",
                    f"an XML file whose root element is <{root[1][:40]}>: not a Merchant "
                    "Center feed (<rss> of RSS 2.0 or <feed> of Atom 1.0)",
                )
            ],
            hint="export the catalog as a Merchant Center feed or as CSV",
        )
    names = _header(head)
    if "handle" in names and "variant price" in names:
        return "shopify"
    normalized = {re.sub(r"[\s-]+", "_", n.removeprefix("g:")) for n in names}
    if "image_link" in normalized or any(n.startswith("g:") for n in names):
        return "merchant_text"
    return "reelcast"


def detect_customers_format(path: Path) -> CustomersFormat:
    """ "shopify" for a header with `Email` and `Accepts Email Marketing` (or the older
    `Accepts Marketing`), Shopify's customer export; else "reelcast", our own CSV."""
    names = _header(_head(Path(path)))
    if "email" in names and ("accepts email marketing" in names or "accepts marketing" in names):
        return "shopify"
    return "reelcast"
