"""Any other product CSV, read as a small YAML mapping file says.

    # catalog.mapping.yaml
    delimiter: ";"            # optional: "," (the default), ";", "|" or "\\t"
    fields:                   # our field: the file's column
      id: SKU
      title: Name
      brand: Manufacturer
      category: Category
      price: Price
      image: Image URL
      url: Product URL
      sale_price: Sale price  # optional
      currency: Currency      # optional (else price.currency, or the code in the price)
      in_stock: Stock         # optional: without it every product is in stock
      description: Text       # optional
    price:                    # optional
      format: amount          # amount ("19.99", the default) or amount_currency ("19.99 EUR")
      currency: EUR           # the currency of prices written without one
      decimal: ","            # "." (the default) or ","
      thousands: "."          # optional: the thousands separator, if the file has one
    availability:             # optional: the words of the in_stock column (any case)
      in_stock: [yes, available]
      out_of_stock: [no, sold out]     # any other word is a bad row
    category_separator: ">"   # optional: keep a category path's last segment

Every value is read as text (YAML's `yes` stays "yes"). Without `availability`, the in_stock
column takes the words of our own CSV (true/false, yes/no, 1/0). A mistake in the mapping
file is a RetailDataError naming the mapping file and the key; a bad row names the file's
column.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retail.errors import RetailDataError, RowProblem
from retail.feeds.prices import parse_amount
from retail.feeds.rows import build_product, read_header, require_columns
from retail.loaders import Encoding, Loaded, _valid_rows
from retail.types import Product

#: the fields a mapping may name; the first seven must be mapped
FIELDS = (
    "id",
    "title",
    "brand",
    "category",
    "price",
    "image",
    "url",
    "sale_price",
    "currency",
    "in_stock",
    "description",
)
REQUIRED = FIELDS[:7]
_UNMAPPED = "unmapped: "  # a prefix no field name has, for the file's other columns
_CODE_AFTER = re.compile(r"^(?P<amount>[\d.,' ]+?)\s*(?P<code>[A-Za-z]{3})$")
_CODE_BEFORE = re.compile(r"^(?P<code>[A-Za-z]{3})\s*(?P<amount>[\d.,' ]+)$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class PriceFormat(_Strict):
    """How the file writes prices."""

    format: Literal["amount", "amount_currency"] = "amount"
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ".", ",", " ", "'"] = ""

    @model_validator(mode="after")
    def _distinct(self) -> PriceFormat:
        if self.thousands == self.decimal:
            raise ValueError("decimal and thousands must differ")
        return self


class Availability(_Strict):
    """The words of the in_stock column."""

    in_stock: list[str] = Field(min_length=1)
    out_of_stock: list[str] = Field(min_length=1)


class Mapping(_Strict):
    """A mapping file (see the module)."""

    delimiter: Literal[",", ";", "|", "\t"] = ","
    fields: dict[str, str]
    price: PriceFormat = PriceFormat()
    availability: Availability | None = None
    category_separator: str | None = Field(default=None, min_length=1)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field {', '.join(unknown)} (valid: {', '.join(FIELDS)})")
        missing = [f for f in REQUIRED if not fields.get(f, "").strip()]
        if missing:
            raise ValueError(f"{', '.join(missing)} not mapped (required: {', '.join(REQUIRED)})")
        columns: dict[str, str] = {}
        for ours, theirs in fields.items():
            if theirs in columns:
                raise ValueError(
                    f"column {theirs!r} is given for both {columns[theirs]} and {ours}"
                )
            columns[theirs] = ours
        return {k: v.strip() for k, v in fields.items()}

    @model_validator(mode="after")
    def _currency_known(self) -> Mapping:
        if (
            self.price.format == "amount"
            and self.price.currency is None
            and "currency" not in self.fields
        ):
            raise ValueError(
                "price.currency: missing: give the prices' currency (as EUR), map a currency "
                "column in fields, or use price.format amount_currency"
            )
        return self


class MappedRow(BaseModel):
    """One row of the mapped file, in our field names, as text."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    id: str = ""
    title: str = ""
    brand: str = ""
    category: str = ""
    price: str = ""
    image: str = ""
    url: str = ""
    sale_price: str = ""
    currency: str = ""
    in_stock: str = ""
    description: str = ""


def read_mapping(path: Path) -> Mapping:
    """The mapping file at `path`, validated; RetailDataError naming the file and key."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = "file not found" if isinstance(exc, FileNotFoundError) else "cannot be read"
        raise RetailDataError(
            [RowProblem(path, 0, "file", f"mapping file: {why}")], hint="check the path"
        ) from None
    try:
        data = yaml.load(text, Loader=yaml.BaseLoader)  # every value as text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise RetailDataError(
            [RowProblem(path, line, "yaml", f"not valid YAML ({getattr(exc, 'problem', exc)})")],
            hint="fix the mapping file (see retail.feeds.mapping for its keys)",
        ) from None
    try:
        return Mapping.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            message = "missing" if err["type"] == "missing" else err["msg"]
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
            # A check of the whole mapping names its key first ("price.currency: …").
            key = ".".join(str(p) for p in err["loc"]) or message.split(":", 1)[0]
            shown = message if message.startswith(f"{key}:") else f"{key}: {message}"
            problems.append(RowProblem(path, 0, key, shown))
        raise RetailDataError(
            problems, hint="fix the mapping file (see retail.feeds.mapping for its keys)"
        ) from None


def load_mapped(path: Path, mapping_path: Path, *, encoding: Encoding) -> Loaded[Product]:
    """The products of the CSV file at `path` read through the mapping file at
    `mapping_path`, and its bad rows (without failing on them)."""
    mapping = read_mapping(mapping_path)
    header, _ = read_header(path, encoding, mapping.delimiter)
    require_columns(
        path,
        header,
        list(mapping.fields.values()),
        hint=f"the mapping file {mapping_path} names these columns: fix it or the file",
    )
    fields = {theirs: ours for ours, theirs in mapping.fields.items()}
    loaded: Loaded[Product] = Loaded([])
    rows: Loaded[MappedRow] = Loaded([], problems=loaded.problems)  # one list of problems
    for row, line in _valid_rows(
        path,
        MappedRow,
        rows,
        encoding,
        delimiter=mapping.delimiter,
        columns=lambda name: fields.get(name, _UNMAPPED + name),
    ):
        built = _product(row, mapping, path, line)
        if isinstance(built, list):
            loaded.problems.extend(built)
            loaded.skipped_rows += 1
            continue
        loaded.items.append(built)
        loaded.lines.append(line)
    loaded.skipped_rows += rows.skipped_rows
    return loaded


def _product(row: MappedRow, mapping: Mapping, path: Path, line: int) -> Product | list[RowProblem]:
    columns = dict(mapping.fields)
    columns.setdefault("currency", columns["price"])
    problems: list[RowProblem] = []
    price, code = _money(row.price, mapping.price, columns["price"], path, line, problems)
    sale: Decimal | None = None
    if row.sale_price:
        sale, sale_code = _money(
            row.sale_price, mapping.price, columns["sale_price"], path, line, problems
        )
        if code and sale_code and sale_code != code:
            problems.append(
                RowProblem(
                    path, line, columns["sale_price"], f"in {sale_code}, the price in {code}"
                )
            )
    currency = row.currency.upper() or code or mapping.price.currency or ""
    in_stock: object = row.in_stock or True
    if mapping.availability is not None and row.in_stock:
        word = row.in_stock.lower()
        if word in {w.lower() for w in mapping.availability.in_stock}:
            in_stock = True
        elif word in {w.lower() for w in mapping.availability.out_of_stock}:
            in_stock = False
        else:
            words = ", ".join(mapping.availability.in_stock + mapping.availability.out_of_stock)
            problems.append(RowProblem(path, line, columns["in_stock"], f"must be one of: {words}"))
    if problems:
        return problems
    category = row.category
    if mapping.category_separator:
        category = category.rsplit(mapping.category_separator, 1)[-1].strip()
    data = row.model_dump() | {
        "category": category,
        "price": price,
        "sale_price": sale,
        "currency": currency,
        "in_stock": in_stock,
    }
    return build_product(path, line, data, columns)


def _money(
    text: str,
    fmt: PriceFormat,
    column: str,
    path: Path,
    line: int,
    problems: list[RowProblem],
) -> tuple[Decimal | None, str]:
    """(amount, currency code or "") of a price cell; a problem noted if it is not one."""
    if not text:
        return None, ""  # Product says the price is required
    amount, code = text, ""
    if fmt.format == "amount_currency":
        match = _CODE_AFTER.match(text) or _CODE_BEFORE.match(text)
        if match is not None:
            amount, code = match["amount"], match["code"].upper()
        else:
            example = "19,99 EUR" if fmt.decimal == "," else "19.99 EUR"
            problems.append(
                RowProblem(path, line, column, f"must be an amount and a currency, as {example}")
            )
            return None, ""
    try:
        return parse_amount(amount, decimal=fmt.decimal, thousands=fmt.thousands), code
    except ValueError as exc:
        problems.append(RowProblem(path, line, column, str(exc)))
        return None, code
