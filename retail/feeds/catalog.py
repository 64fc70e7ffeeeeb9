"""`load_catalog`: a retailer's catalog in whichever format it comes, as Products."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from retail.errors import RetailDataError, RowProblem
from retail.feeds.detect import CatalogFormat, detect_catalog_format
from retail.feeds.mapping import load_mapped
from retail.feeds.merchant import Variants, load_merchant
from retail.feeds.rows import fail_on_problems
from retail.feeds.shopify import load_shopify
from retail.loaders import Encoding, Loaded, OnBadRows, load_rows
from retail.types import Product


def load_catalog(
    path: Path,
    on_bad_rows: OnBadRows = "fail",
    *,
    format: CatalogFormat | Literal["mapped"] | None = None,
    mapping: Path | None = None,
    variants: Variants = "cheapest",
    shop_url: str | None = None,
    currency: str | None = None,
    encoding: Encoding = "utf-8",
    now: datetime | None = None,
) -> Loaded[Product]:
    """The products of the catalog file at `path`, validated row by row as `load_rows`
    does (the same `on_bad_rows`, `encoding` and problems naming file, line and column).

    `format` None detects it (`detect_catalog_format`); with a `mapping` file the file is
    read as it says ("mapped", `retail.feeds.mapping`). "reelcast" is `load_rows(path,
    Product)`; "merchant_text"/"merchant_xml" are Google Merchant Center feeds
    (`retail.feeds.merchant`, where `variants` applies and `now` decides whether a sale
    price is in effect, default the current time); "shopify" is Shopify's product export,
    which needs `shop_url` and `currency` (`retail.feeds.shopify`).

    Raises RetailDataError listing every problem when `on_bad_rows` is "fail" and a row is
    bad, and in both modes when the file cannot be read as that format at all.
    """
    path = Path(path)
    if format not in (*get_args(CatalogFormat), "mapped", None):
        raise ValueError(f"format must be one of {', '.join(get_args(CatalogFormat))} or mapped")
    if variants not in get_args(Variants):
        raise ValueError(f"variants must be one of {', '.join(get_args(Variants))}")
    if mapping is not None and format not in (None, "mapped"):
        raise _option_error(path, f"a mapping file reads a plain CSV, not the {format} format")
    if format == "mapped" and mapping is None:
        raise _option_error(path, "the mapped format needs a mapping file")
    kind = "mapped" if mapping is not None else format or detect_catalog_format(path)
    if kind == "reelcast":
        return load_rows(path, Product, on_bad_rows, encoding=encoding)
    if kind == "mapped":
        assert mapping is not None
        loaded = load_mapped(path, Path(mapping), encoding=encoding)
    elif kind == "shopify":
        loaded = load_shopify(path, shop_url=shop_url, currency=currency, encoding=encoding)
    else:
        loaded = load_merchant(
            path,
            xml=kind == "merchant_xml",
            encoding=encoding,
            variants=variants,
            now=now or datetime.now(UTC),
        )
    loaded.problems.sort(key=lambda p: p.line)  # stable: a row's problems stay together
    fail_on_problems(loaded.problems, on_bad_rows)
    return loaded


def _option_error(path: Path, problem: str) -> RetailDataError:
    return RetailDataError(
        [RowProblem(path, 0, "format", problem)],
        hint="give either a format or a mapping file",
    )
