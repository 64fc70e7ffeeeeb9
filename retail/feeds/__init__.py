"""Retailers' own catalog feeds and shop exports, read into our Products and Customers.

Catalogs (`load_catalog`, the format detected or given):

- our CSV ("reelcast", `retail.loaders.load_rows`);
- Google Merchant Center feeds, text or XML ("merchant_text", "merchant_xml":
  `retail.feeds.merchant`, `retail.feeds.merchant_xml`);
- Shopify's product export ("shopify": `retail.feeds.shopify`);
- any other CSV through a mapping file ("mapped": `retail.feeds.mapping`).

Customers (`load_customers`): our CSV or Shopify's customer export
(`retail.feeds.customers`).

Every loader keeps the promises of `retail.loaders`: each bad row is a RowProblem naming
the file, the line (for XML, the line the item starts on) and the file's own column, the
value never echoed; `on_bad_rows` "fail" raises RetailDataError listing them all, "skip"
returns them with the rows that loaded.
"""

from retail.feeds.catalog import load_catalog
from retail.feeds.customers import email_id, load_customers
from retail.feeds.detect import (
    CatalogFormat,
    CustomersFormat,
    detect_catalog_format,
    detect_customers_format,
)
from retail.feeds.merchant import Variants

__all__ = [
    "CatalogFormat",
    "CustomersFormat",
    "Variants",
    "detect_catalog_format",
    "detect_customers_format",
    "email_id",
    "load_catalog",
    "load_customers",
]
