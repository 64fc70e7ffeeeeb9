"""What every feed format shares: reading a header, naming columns, building a Product.

A feed's problems name the feed's own columns ("Variant Price", "image_link"), never ours,
and never repeat a cell's value (cells may hold personal data); ids may be named.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from retail.errors import RetailDataError, RowProblem
from retail.loaders import MAX_LINE_CHARS, Encoding, _explain, _open
from retail.types import Product

M = TypeVar("M", bound=BaseModel)

#: the longest description taken from a feed, in characters
DESCRIPTION_CHARS = 500


def read_header(
    path: Path, encoding: Encoding, delimiter: str | None = None
) -> tuple[list[str], str]:
    """The header cells of a CSV-ish file, stripped, and its delimiter (if not given: tab
    if the first line has one, else a comma). Raises RetailDataError as the loaders do (no
    file, a zip, a Windows-1252 file read as UTF-8…)."""
    with _open(path, encoding) as (_source, text):
        line = text.readline(MAX_LINE_CHARS)
    delimiter = delimiter or ("\t" if "\t" in line else ",")
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return [c.strip().lstrip("\ufeff") for c in cells], delimiter


def column_key(name: str) -> str:
    """A column's name as a field name: "Variant Compare At Price" → variant_compare_at_price,
    "Body (HTML)" → body_html."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def require_columns(path: Path, header: list[str], required: list[str], hint: str) -> None:
    """Raise RetailDataError naming each of `required` that `header` lacks."""
    present = set(header)
    missing = [c for c in required if c not in present]
    if missing:
        shown = ", ".join(required)
        raise RetailDataError(
            [RowProblem(path, 1, c, f"missing column (required: {shown})") for c in missing],
            hint=hint,
        )


def last_segment(category_path: str) -> str:
    """The most specific part of a category path: "Home > Lighting > Lamps" → "Lamps"."""
    return category_path.rsplit(">", 1)[-1].strip()


def problem_text(error: ErrorDetails, *, missing: str = "is required but empty") -> str:
    """pydantic's message for one error, without the value."""
    return missing if error["type"] == "missing" else _explain(error)


def build(
    model: type[M],
    path: Path,
    line: int,
    data: Mapping[str, object],
    columns: Mapping[str, str],
) -> M | list[RowProblem]:
    """`data` (our field names) as a `model`, or its problems naming the feed's `columns`
    (our field → their column; a field not in it is named as ours).

    An empty text counts as not given: a required field "is required but empty", an
    optional one takes its default.
    """
    given = {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(p) for p in err["loc"]) or "row"
            problems.append(RowProblem(path, line, columns.get(name, name), problem_text(err)))
        return problems


def build_product(
    path: Path, line: int, data: Mapping[str, object], columns: Mapping[str, str]
) -> Product | list[RowProblem]:
    """`build(Product, ...)`."""
    return build(Product, path, line, data, columns)


def fail_on_problems(problems: list[RowProblem], on_bad_rows: str) -> None:
    """Raise RetailDataError listing `problems` if there are any and bad rows fail."""
    if problems and on_bad_rows == "fail":
        raise RetailDataError(problems)


_BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "td", "h1", "h2", "h3", "h4"})


class _Text(HTMLParser):
    """The text of an HTML fragment: no tags, no script or style, blocks as spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def plain_text(html: str, limit: int = DESCRIPTION_CHARS) -> str:
    """`html` as one line of plain text, cut at a word to at most `limit` characters."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = " ".join("".join(parser.parts).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"
