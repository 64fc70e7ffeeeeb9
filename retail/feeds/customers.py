"""`load_customers`: a retailer's customer list, in our CSV or as Shopify's export.

Shopify's customer export (`Customer ID`, `First Name`, `Last Name`, `Email`, `Accepts
Email Marketing`, `Default Address Country Code`, `Phone`, …; older exports have `Accepts
Marketing` and `Country Code`) becomes Customers so:

- id: `Customer ID` (without the leading `'` Shopify writes so that spreadsheets keep its
  digits). An export without that column: "c_" and the first 16 hex digits of the SHA-256
  of the trimmed, lowercased email, stable from one export to the next; the retailer's
  events file must name customers the same way. It is pseudonymous, not secret: anyone
  who has an email can compute it (vendors only ever see keyed pseudonyms,
  `compliance.pseudonym`).
- consent: `Accepts Email Marketing` (else `Accepts Marketing`): "yes" is granted, "no"
  denied, anything else (empty, a state we do not know) unknown, the conservative reading.
  consent_source "shopify export"; no consent timestamp (the export has none).
- country: `Default Address Country Code` (else `Country Code`); empty: the default, US.
- phone: `Phone`, without a leading `'`.
- first name: `First Name`; many exports leave it empty (guest checkouts). Such a
  customer is kept and never personalized: their video and greeting use the fallbacks.
- locale and time zone are not in the export: the defaults, en_US and UTC. (A locale
  guessed from the country would also set the email's language, which the copy may not
  be in; our own CSV can state both.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from retail.errors import RetailDataError, RowProblem
from retail.feeds.detect import CustomersFormat, detect_customers_format
from retail.feeds.rows import build, column_key, fail_on_problems, read_header
from retail.loaders import Encoding, Loaded, OnBadRows, _valid_rows, load_rows
from retail.types import Consent, Customer

_CONSENT = {"yes": Consent.granted, "no": Consent.denied}
_CONSENT_COLUMNS = ("Accepts Email Marketing", "Accepts Marketing")
_COUNTRY_COLUMNS = ("Default Address Country Code", "Country Code")


class ShopifyCustomerRow(BaseModel):
    """The columns of one customer-export row that a Customer is made of, as text."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    customer_id: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    accepts_email_marketing: str = ""
    accepts_marketing: str = ""
    default_address_country_code: str = ""
    country_code: str = ""
    phone: str = ""


def email_id(email: str) -> str:
    """The customer id derived from an email: "c_" + 16 hex digits of its SHA-256."""
    return "c_" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:16]


def load_customers(
    path: Path,
    on_bad_rows: OnBadRows = "fail",
    *,
    format: CustomersFormat | None = None,
    encoding: Encoding = "utf-8",
) -> Loaded[Customer]:
    """The customers of the file at `path`, validated row by row as `load_rows` does.

    `format` None detects it (`detect_customers_format`): "reelcast" is `load_rows(path,
    Customer)`, "shopify" Shopify's customer export (see the module for the mapping).
    Raises RetailDataError listing every problem when `on_bad_rows` is "fail" and a row is
    bad, and in both modes when the file cannot be read at all.
    """
    path = Path(path)
    kind = format or detect_customers_format(path)
    if kind == "reelcast":
        return load_rows(path, Customer, on_bad_rows, encoding=encoding)
    if kind != "shopify":
        raise ValueError("format must be reelcast or shopify")
    loaded = _load_shopify(path, encoding)
    fail_on_problems(loaded.problems, on_bad_rows)
    return loaded


def _load_shopify(path: Path, encoding: Encoding) -> Loaded[Customer]:
    header, _ = read_header(path, encoding)
    consent_column = next((c for c in _CONSENT_COLUMNS if c in header), None)
    required = ["Email"]
    missing = [c for c in required if c not in header]
    if missing or consent_column is None:
        problems = [RowProblem(path, 1, c, "missing column") for c in missing]
        if consent_column is None:
            problems.append(
                RowProblem(path, 1, _CONSENT_COLUMNS[0], "missing column (or Accepts Marketing)")
            )
        raise RetailDataError(problems, hint="export the customers from Shopify again")
    country_column = next((c for c in _COUNTRY_COLUMNS if c in header), _COUNTRY_COLUMNS[0])
    has_id = "Customer ID" in header
    columns = {
        "id": "Customer ID" if has_id else "Email",
        "email": "Email",
        "first_name": "First Name",
        "last_name": "Last Name",
        "phone": "Phone",
        "country": country_column,
        "marketing_consent": consent_column,
    }
    loaded: Loaded[Customer] = Loaded([])
    rows: Loaded[ShopifyCustomerRow] = Loaded([], problems=loaded.problems)
    for row, line in _valid_rows(path, ShopifyCustomerRow, rows, encoding, columns=column_key):
        consent = getattr(row, column_key(consent_column))
        data = {
            "id": row.customer_id.lstrip("'") if has_id else row.email and email_id(row.email),
            "email": row.email,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "phone": row.phone.lstrip("'"),
            "country": getattr(row, column_key(country_column)).upper(),
            "marketing_consent": _CONSENT.get(consent.lower(), Consent.unknown),
            "consent_source": "shopify export",
        }
        built = build(Customer, path, line, data, columns)
        if isinstance(built, list):
            # Without a Customer ID, a missing email is one problem, not two (id and email).
            loaded.problems.extend(dict.fromkeys(built))
            loaded.skipped_rows += 1
            continue
        loaded.items.append(built)
        loaded.lines.append(line)
    loaded.skipped_rows += rows.skipped_rows
    return loaded
