"""Shopify's product CSV export as Products.

The export has one row per variant, keyed by `Handle`, plus rows that only add an image
(a Handle and an Image Src). One product per handle:

- id: the handle. url: `{shop_url}/products/{handle}` (the export names no shop, so
  `shop_url` is required). currency: the export has none (`currency` is required).
- title, brand (`Vendor`), category (`Type`, else the last segment of `Product
  Category`), description (`Body (HTML)` as plain text, at most 500 characters): from the
  handle's first row.
- price: that of the cheapest in-stock variant (every variant out of stock: the cheapest,
  and the product is not in stock). When its `Variant Compare At Price` is above its
  `Variant Price`, the product is on sale: price = the compare-at price (what it was),
  sale_price = the variant price (what it costs now). Otherwise price = `Variant Price`.
- in stock: a variant is out of stock when its `Variant Inventory Qty` is 0 or less and
  its inventory is tracked (`Variant Inventory Tracker` not empty, or no such column);
  selling on past zero (inventory policy "continue") is a backorder, not stock. A product
  that is not for sale (`Status` other than active, or `Published` false) is kept, not in
  stock: its history still counts, but it is never recommended.
- image: the `Image Src` with the lowest `Image Position` (the first one without).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from retail.errors import RetailDataError, RowProblem
from retail.feeds.prices import parse_amount
from retail.feeds.rows import (
    build_product,
    column_key,
    last_segment,
    plain_text,
    read_header,
    require_columns,
)
from retail.loaders import Encoding, Loaded, _valid_rows
from retail.types import Product

REQUIRED = ["Handle", "Title", "Vendor", "Variant Price", "Image Src"]
_SHOP_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


class ShopifyRow(BaseModel):
    """The columns of one export row that a Product is made of, as text."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    handle: str = Field(min_length=1)
    title: str = ""
    body_html: str = ""
    vendor: str = ""
    type: str = ""
    product_category: str = ""
    published: str = ""
    status: str = ""
    variant_price: str = ""
    variant_compare_at_price: str = ""
    variant_inventory_qty: str = ""
    variant_inventory_tracker: str = ""
    image_src: str = ""
    image_position: str = ""


@dataclass(frozen=True)
class _Variant:
    price: Decimal
    compare_at: Decimal | None
    in_stock: bool
    line: int


def check_shop_url(shop_url: str | None, path: Path) -> str:
    """`shop_url` without a trailing slash; RetailDataError naming the option if it is
    missing or not an http(s) address."""
    if not shop_url or not _SHOP_URL.match(shop_url.strip()):
        why = "is missing" if not shop_url else "is not an http(s) address"
        raise RetailDataError(
            [
                RowProblem(
                    path,
                    0,
                    "shop_url",
                    f"shop_url {why}: a Shopify export names no shop, and product pages "
                    "are {shop_url}/products/{handle}",
                )
            ],
            hint="give the shop's address as shop_url, e.g. https://shop.example",
        )
    return shop_url.strip().rstrip("/")


def check_currency(currency: str | None, path: Path) -> str:
    """`currency` as an ISO 4217 code; RetailDataError naming the option otherwise."""
    code = (currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        why = "is missing" if not currency else "is not an ISO 4217 code (as EUR)"
        raise RetailDataError(
            [
                RowProblem(
                    path,
                    0,
                    "currency",
                    f"currency {why}: a Shopify export does not say the shop's currency",
                )
            ],
            hint="give the shop's currency as currency, e.g. EUR",
        )
    return code


def load_shopify(
    path: Path, *, shop_url: str | None, currency: str | None, encoding: Encoding
) -> Loaded[Product]:
    """The products of a Shopify product export and its bad rows (without failing on
    them); raises RetailDataError if `shop_url` or `currency` is missing, or a column."""
    shop = check_shop_url(shop_url, path)
    code = check_currency(currency, path)
    header, _delimiter = read_header(path, encoding)
    require_columns(path, header, REQUIRED, hint="export the products from Shopify again")
    tracked_always = "Variant Inventory Tracker" not in header
    loaded: Loaded[Product] = Loaded([])
    rows: Loaded[ShopifyRow] = Loaded([], problems=loaded.problems)  # one list of problems
    handles: dict[str, list[tuple[ShopifyRow, int]]] = {}
    for row, line in _valid_rows(path, ShopifyRow, rows, encoding, columns=column_key):
        handles.setdefault(row.handle, []).append((row, line))
    loaded.skipped_rows += rows.skipped_rows
    for handle, product_rows in handles.items():
        built = _product(path, handle, product_rows, shop, code, tracked_always, loaded)
        if built is not None:
            loaded.items.append(built)
            loaded.lines.append(product_rows[0][1])
    return loaded


def _product(
    path: Path,
    handle: str,
    rows: list[tuple[ShopifyRow, int]],
    shop: str,
    currency: str,
    tracked_always: bool,
    loaded: Loaded[Product],
) -> Product | None:
    """The handle's product, or None with its problems noted in `loaded`."""
    first, line = rows[0]
    variants: list[_Variant] = []
    bad_rows = 0
    for row, row_line in rows:
        if not row.variant_price:
            continue  # a row that adds an image
        try:
            variants.append(_variant(row, row_line, tracked_always))
        except _BadCell as exc:
            loaded.problems.append(RowProblem(path, row_line, exc.column, exc.problem))
            bad_rows += 1
    if not variants:
        if bad_rows == 0:
            loaded.problems.append(
                RowProblem(path, line, "Variant Price", "missing: no row of this product has one")
            )
        loaded.skipped_rows += len(rows)
        return None
    for_sale = first.status.lower() in ("", "active") and first.published.lower() not in (
        "false",
        "no",
        "0",
    )
    pool = [v for v in variants if v.in_stock] or variants
    chosen = min(pool, key=lambda v: v.price)  # the first among equals
    on_sale = chosen.compare_at is not None and chosen.compare_at > chosen.price
    data = {
        "id": handle,
        "title": first.title,
        "brand": first.vendor,
        "category": first.type or last_segment(first.product_category),
        "price": chosen.compare_at if on_sale else chosen.price,
        "sale_price": chosen.price if on_sale else None,
        "currency": currency,
        "image": _image(rows),
        "url": f"{shop}/products/{quote(handle)}",
        "in_stock": chosen.in_stock and for_sale,
        "description": plain_text(first.body_html),
    }
    columns = {
        "id": "Handle",
        "url": "Handle",
        "title": "Title",
        "brand": "Vendor",
        "category": "Type",
        "price": "Variant Compare At Price" if on_sale else "Variant Price",
        "sale_price": "Variant Price",
        "image": "Image Src",
        "description": "Body (HTML)",
    }
    built = build_product(path, line, data, columns)
    if isinstance(built, list):
        loaded.problems.extend(built)
        loaded.skipped_rows += len(rows) - bad_rows
        return None
    loaded.skipped_rows += bad_rows
    return built


class _BadCell(Exception):
    def __init__(self, column: str, problem: str) -> None:
        super().__init__(problem)
        self.column, self.problem = column, problem


def _variant(row: ShopifyRow, line: int, tracked_always: bool) -> _Variant:
    try:
        price = parse_amount(row.variant_price)
    except ValueError as exc:
        raise _BadCell("Variant Price", str(exc)) from None
    compare_at = None
    if row.variant_compare_at_price:
        try:
            compare_at = parse_amount(row.variant_compare_at_price)
        except ValueError as exc:
            raise _BadCell("Variant Compare At Price", str(exc)) from None
    in_stock = True
    if row.variant_inventory_qty and (tracked_always or row.variant_inventory_tracker):
        try:
            in_stock = int(row.variant_inventory_qty) > 0
        except ValueError:
            raise _BadCell("Variant Inventory Qty", "must be a whole number") from None
    return _Variant(price, compare_at, in_stock, line)


def _image(rows: list[tuple[ShopifyRow, int]]) -> str:
    """The Image Src with the lowest Image Position; "" if no row has one."""
    images = [
        (int(r.image_position) if r.image_position.isdigit() else math.inf, n, r.image_src)
        for n, (r, _line) in enumerate(rows)
        if r.image_src
    ]
    return min(images)[2] if images else ""
