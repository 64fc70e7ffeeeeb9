"""Google Merchant Center product feeds as Products.

Text feeds are tab-separated (comma-separated ones are read too) with a header row of
attribute names, written `image_link`, `g:image_link` or `image link`, in any case. XML
feeds (RSS 2.0 or Atom 1.0) carry the same attributes: see `retail.feeds.merchant_xml`.

How the attributes become a Product:

- `id`, `title`, `brand` as they are; `description` as plain text (tags removed, at most
  500 characters); `link` → url; `image_link` → image (kept as the URL;
  `additional_image_link` is not used).
- `price` "19.99 USD" (or "USD 19.99") → price and currency. "19,99 EUR" is refused: it
  could be 19.99 or 1999. `sale_price` → sale_price, in the price's currency (else a bad
  row); outside its `sale_price_effective_date` (two ISO 8601 times with a slash; a time
  without an offset is UTC) the product is taken at its regular price.
- `availability`: `in_stock` is in stock; `out_of_stock`, `preorder` and `backorder` are
  not: a product the customer cannot have today is not recommended. Spaces or hyphens
  stand for underscores ("in stock", as older feeds write it).
- category: the last segment of `product_type` ("Home > Lighting > Lamps" → "Lamps": the
  retailer's own words, and the most specific, which is what similar-product
  recommendations need), else the last segment of `google_product_category` when it is a
  path; a numeric Google category id names nothing a customer reads: a bad row.
- variants: items sharing `item_group_id` become one product whose id is the group's,
  built from its cheapest in-stock variant (by the price paid: the sale price if any; the
  first in the file among equals); when every variant is out of stock, from the cheapest,
  not in stock. `variants="keep"` keeps each item as a product of its own id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retail.errors import RowProblem
from retail.feeds.merchant_xml import MAX_ITEM_CHARS, iter_items
from retail.feeds.prices import parse_money
from retail.feeds.rows import (
    build_product,
    last_segment,
    plain_text,
    problem_text,
    read_header,
)
from retail.loaders import Encoding, Loaded, _valid_rows
from retail.types import Product

#: how items sharing an `item_group_id` are read: one product (the cheapest in-stock
#: variant) or every variant as a product
Variants = Literal["cheapest", "keep"]

_AVAILABILITY = {"in_stock": True, "out_of_stock": False, "preorder": False, "backorder": False}
_EFFECTIVE_FORMAT = (
    "must be two ISO 8601 times with a slash between them, as "
    "2026-02-24T11:07+01:00/2026-03-01T23:07+01:00"
)


class MerchantItem(BaseModel):
    """The attributes of one feed item that a Product is made of, as text."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    link: str = Field(min_length=1)
    image_link: str = Field(min_length=1)
    price: str = Field(min_length=1)
    availability: str = Field(min_length=1)
    brand: str = Field(min_length=1)
    description: str = ""
    sale_price: str = ""
    sale_price_effective_date: str = ""
    product_type: str = ""
    google_product_category: str = ""
    item_group_id: str = ""


def merchant_column(name: str) -> str:
    """A text feed's header cell as an attribute name: "g:Image Link" → image_link."""
    return re.sub(r"[\s-]+", "_", name.strip().lower().removeprefix("g:"))


def load_merchant(
    path: Path, *, xml: bool, encoding: Encoding, variants: Variants, now: datetime
) -> Loaded[Product]:
    """The products of a Merchant Center feed and its bad rows (without failing on them).

    `encoding` is for text feeds; an XML feed says its own.
    """
    loaded: Loaded[Product] = Loaded([])
    kept: list[tuple[Product, int, str]] = []
    items = _xml_items(path, loaded) if xml else _text_items(path, loaded, encoding)
    for item, line in items:
        built = item_product(item, path, line, now)
        if isinstance(built, list):
            loaded.problems.extend(built)
            loaded.skipped_rows += 1
            continue
        kept.append((built, line, item.item_group_id if variants == "cheapest" else ""))
    for product, line in _join_variants(path, kept, loaded):
        loaded.items.append(product)
        loaded.lines.append(line)
    return loaded


def _text_items(
    path: Path, loaded: Loaded[Product], encoding: Encoding
) -> Iterator[tuple[MerchantItem, int]]:
    _header, delimiter = read_header(path, encoding)
    rows: Loaded[MerchantItem] = Loaded([], problems=loaded.problems)  # one list of problems
    yield from _valid_rows(
        path, MerchantItem, rows, encoding, delimiter=delimiter, columns=merchant_column
    )
    loaded.skipped_rows += rows.skipped_rows


def _xml_items(path: Path, loaded: Loaded[Product]) -> Iterator[tuple[MerchantItem, int]]:
    for xml_item in iter_items(path):
        line = xml_item.line
        if xml_item.oversized:
            loaded.problems.append(
                RowProblem(path, line, "item", f"longer than {MAX_ITEM_CHARS:,} characters")
            )
            loaded.skipped_rows += 1
            continue
        try:
            yield MerchantItem.model_validate(xml_item.values), line
        except ValidationError as exc:
            loaded.skipped_rows += 1
            for err in exc.errors(include_input=False, include_url=False):
                name = ".".join(str(p) for p in err["loc"]) or "item"
                loaded.problems.append(
                    RowProblem(path, line, name, problem_text(err, missing="missing"))
                )


def item_product(
    item: MerchantItem, path: Path, line: int, now: datetime
) -> Product | list[RowProblem]:
    """One feed item as a Product (see the module's mapping), or its problems."""
    problems: list[RowProblem] = []

    def bad(attribute: str, problem: str) -> None:
        problems.append(RowProblem(path, line, attribute, problem))

    price: Decimal | None = None
    currency = ""
    try:
        price, currency = parse_money(item.price)
    except ValueError as exc:
        bad("price", str(exc))
    sale: Decimal | None = None
    if item.sale_price:
        try:
            sale, sale_currency = parse_money(item.sale_price)
        except ValueError as exc:
            bad("sale_price", str(exc))
        else:
            if currency and sale_currency != currency:
                bad("sale_price", f"in {sale_currency}, the price in {currency}: use one currency")
            elif item.sale_price_effective_date:
                try:
                    if not _on_sale(item.sale_price_effective_date, now):
                        sale = None
                except ValueError as exc:
                    bad("sale_price_effective_date", str(exc))
    in_stock = _AVAILABILITY.get(re.sub(r"[\s-]+", "_", item.availability.lower()))
    if in_stock is None:
        bad("availability", "must be in_stock, out_of_stock, preorder or backorder")
    category, category_attribute = _category(item)
    if not category:
        bad(category_attribute, _no_category(item))
    if problems:
        return problems
    data = {
        "id": item.id,
        "title": item.title,
        "brand": item.brand,
        "category": category,
        "price": price,
        "sale_price": sale,
        "currency": currency,
        "image": item.image_link,
        "url": item.link,
        "in_stock": in_stock,
        "description": plain_text(item.description),
    }
    columns = {
        "url": "link",
        "image": "image_link",
        "currency": "price",
        "in_stock": "availability",
        "category": category_attribute,
    }
    return build_product(path, line, data, columns)


def _category(item: MerchantItem) -> tuple[str, str]:
    """(category, the attribute it comes from); the category is empty if none is usable."""
    if item.product_type:
        return last_segment(item.product_type), "product_type"
    google = item.google_product_category
    if google and not google.isdigit():
        return last_segment(google), "google_product_category"
    return "", "product_type"


def _no_category(item: MerchantItem) -> str:
    if item.google_product_category.isdigit():
        return (
            "missing, and google_product_category is a numeric id: give product_type "
            "(as Home > Lighting > Lamps)"
        )
    if item.product_type or item.google_product_category:
        return "its last segment is empty (as in Home >)"
    return "missing: give product_type or google_product_category (as Home > Lighting > Lamps)"


def _on_sale(effective: str, now: datetime) -> bool:
    """Whether `now` falls in `effective`, "start/end" in ISO 8601 (end excluded)."""
    parts = effective.split("/")
    if len(parts) != 2:
        raise ValueError(_EFFECTIVE_FORMAT)
    try:
        start, end = (datetime.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(_EFFECTIVE_FORMAT) from None
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    return start <= now < end


def _paid(product: Product) -> Decimal:
    return product.price if product.sale_price is None else product.sale_price


def _join_variants(
    path: Path, kept: list[tuple[Product, int, str]], loaded: Loaded[Product]
) -> Iterator[tuple[Product, int]]:
    """Each product with its line, variants of one group joined into one (see the module),
    in the order of their first appearance."""
    groups: dict[str, list[tuple[Product, int]]] = {}
    order: list[tuple[Product, int] | str] = []
    for product, line, group in kept:
        if not group:
            order.append((product, line))
            continue
        if group not in groups:
            groups[group] = []
            order.append(group)
        groups[group].append((product, line))
    for entry in order:
        if not isinstance(entry, str):
            yield entry
            continue
        variants = groups[entry]
        pool = [v for v in variants if v[0].in_stock] or variants
        chosen, line = min(pool, key=lambda v: _paid(v[0]))  # the first among equals
        built = build_product(
            path, line, {**chosen.model_dump(), "id": entry}, {"id": "item_group_id"}
        )
        if isinstance(built, list):
            loaded.problems.extend(built)
            loaded.skipped_rows += len(variants)
            continue
        yield built, line
