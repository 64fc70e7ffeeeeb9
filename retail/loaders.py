"""CSV loaders that validate every row and say exactly which line and field is wrong.

A loader either stops at the end of the file with every problem listed
(`on_bad_rows="fail"`, the default) or leaves bad rows out and counts them
(`"skip"`). Nothing is dropped silently: skipped rows are returned as problems.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from retail.errors import RetailDataError, RowProblem
from retail.image_check import image_problem
from retail.types import Customer, Event, Product

OnBadRows = Literal["fail", "skip"]
T = TypeVar("T", bound=BaseModel)
# The files whose rows carry their own id.
Keyed = TypeVar("Keyed", Product, Customer)


@dataclass
class Loaded(Generic[T]):
    """The rows of one file that passed validation, and what was left out and why.

    `lines[i]` is the physical line on which `items[i]` starts.
    """

    items: list[T]
    lines: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    skipped_rows: int = 0


@dataclass
class RetailData:
    """A retailer's catalog, customers and events, cross-checked."""

    products: list[Product]
    customers: list[Customer]
    events: list[Event]
    catalog_dir: Path
    problems: list[RowProblem] = field(default_factory=list)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    unknown_reference_events: int = 0


def _required(model: type[BaseModel]) -> list[str]:
    return [name for name, f in model.model_fields.items() if f.is_required()]


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, list[RowProblem]]]:
    """Yield (physical start line, row, header problems) for each non-empty record."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise RetailDataError(
            [RowProblem(path, 0, "file", "file not found")], hint="check the path and try again"
        ) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise RetailDataError(
                [RowProblem(path, 1, "header", "the file is empty (a header row is expected)")],
                hint="add the header row and the data rows",
            ) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RetailDataError(
                [RowProblem(path, 1, "file", f"cannot read as UTF-8 CSV ({type(exc).__name__})")],
                hint="save the file as UTF-8 CSV",
            ) from None
        names = [h.strip() for h in header]
        last_line = reader.line_num
        while True:
            start = last_line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                yield start, None, [RowProblem(path, start, "row", f"unreadable ({exc})")]
                return
            last_line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                yield (
                    start,
                    None,
                    [
                        RowProblem(
                            path,
                            start,
                            "row",
                            f"has {len(cells)} cells but the header has {len(names)} columns",
                        )
                    ],
                )
                continue
            yield start, dict(zip(names, cells, strict=True)), []


def _header_problems(path: Path, model: type[BaseModel]) -> list[RowProblem]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except FileNotFoundError:
        return [RowProblem(path, 0, "file", "file not found")]
    except (UnicodeDecodeError, csv.Error):
        return [RowProblem(path, 1, "file", "cannot read as UTF-8 CSV")]
    names = {h.strip() for h in header}
    required = ", ".join(_required(model))
    if len(header) == 1 and any(mark in header[0] for mark in ";\t|"):
        mark = next(m for m in ";\t|" if m in header[0])
        shown = {"\t": "tab"}.get(mark, repr(mark))
        return [
            RowProblem(
                path,
                1,
                "header",
                f"the columns are separated by {shown}, not commas: save the file as "
                f"comma-separated CSV (required columns: {required})",
            )
        ]
    return [
        RowProblem(path, 1, column, f"missing column (required: {required})")
        for column in _required(model)
        if column not in names
    ]


def _explain(error: ErrorDetails) -> str:
    # pydantic's own text, without `input_value`: cells may hold personal data.
    message = error["msg"]
    if error["type"] == "missing":
        return "is required but empty"
    return message[0].lower() + message[1:] if message else error["type"]


def load_rows(path: Path, model: type[T], on_bad_rows: OnBadRows = "fail") -> Loaded[T]:
    """Validate every row of a CSV file against `model`.

    Empty cells of optional fields mean "not given". Columns the model does not
    know are ignored. Raises RetailDataError listing every problem when
    `on_bad_rows` is "fail" and any row is bad, or when the header lacks a
    required column (no row can be right then).
    """
    path = Path(path)
    header = _header_problems(path, model)
    if header:
        hint = "add the missing column(s) to the header row"
        if header[0].field == "file":
            hint = "check the path and the file's encoding (UTF-8 CSV)"
        elif header[0].field == "header":
            hint = "in a spreadsheet: Save As → CSV (comma delimited), UTF-8"
        raise RetailDataError(header, hint=hint)
    known = set(model.model_fields)
    items: list[T] = []
    lines: list[int] = []
    problems: list[RowProblem] = []
    skipped = 0
    for line, row, row_problems in _rows(path):
        if row is None:
            problems.extend(row_problems)
            skipped += 1
            continue
        data = {
            k: v
            for k, v in row.items()
            if k in known and not (v.strip() == "" and _optional(model, k))
        }
        try:
            items.append(model.model_validate(data))
            lines.append(line)
        except ValidationError as exc:
            skipped += 1
            for err in exc.errors(include_input=False, include_url=False):
                name = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(RowProblem(path, line, name, _explain(err)))
    if problems and on_bad_rows == "fail":
        raise RetailDataError(problems)
    return Loaded(items, lines, problems, skipped)


def _optional(model: type[BaseModel], name: str) -> bool:
    return not model.model_fields[name].is_required()


def _drop_unusable_images(catalog: Path, loaded: Loaded[Product]) -> list[RowProblem]:
    """Leave out products whose image is not a usable image file in the catalog's folder
    (missing, unreadable, too large, a decompression bomb); report them.

    Found now, a bad image is one line of the load report; found at render time, it
    would stop the campaign halfway.
    """
    root = catalog.resolve().parent
    problems: list[RowProblem] = []
    items, lines = [], []
    for product, line in zip(loaded.items, loaded.lines, strict=True):
        if "://" in product.image:
            why = "remote images are not supported: download it beside the catalog"
        else:
            path = (root / product.image).resolve()
            if not path.is_relative_to(root):
                why = "the path leaves the catalog's folder"
            elif not path.is_file():
                why = f"file not found ({product.image} in {root})"
            elif (problem := image_problem(path)) is not None:
                why = problem
            else:
                items.append(product)
                lines.append(line)
                continue
        problems.append(RowProblem(catalog, line, "image", why))
    loaded.items, loaded.lines = items, lines
    loaded.skipped_rows += len(problems)
    loaded.problems.extend(problems)
    return problems


def _drop_duplicate_ids(path: Path, loaded: Loaded[Keyed]) -> list[RowProblem]:
    """Keep the first row of each id; report the others with their lines."""
    first: dict[str, int] = {}
    problems: list[RowProblem] = []
    items: list[Keyed] = []
    lines: list[int] = []
    for item, line in zip(loaded.items, loaded.lines, strict=True):
        if item.id in first:
            problems.append(
                RowProblem(path, line, "id", f"duplicate id (first used on line {first[item.id]})")
            )
            continue
        first[item.id] = line
        items.append(item)
        lines.append(line)
    loaded.items, loaded.lines = items, lines
    loaded.skipped_rows += len(problems)
    loaded.problems.extend(problems)
    return problems


def load_retail(
    catalog: Path,
    customers: Path,
    events: Path,
    on_bad_rows: OnBadRows = "fail",
    *,
    check_images: bool = False,
) -> RetailData:
    """Load and cross-check the three retail files.

    With `check_images` (what a campaign needs, training does not), a product whose image
    is not a file in the catalog's folder is a bad row too.

    Duplicate ids follow `on_bad_rows`. Events that name a product or customer
    missing from the other files are reported as problems and left out in both
    modes: history about a deleted product must not stop a campaign, but it is
    never silently ignored.
    """
    loaded_products = load_rows(catalog, Product, on_bad_rows)
    loaded_customers = load_rows(customers, Customer, on_bad_rows)
    loaded_events = load_rows(events, Event, on_bad_rows)

    # One file after the other: with "fail", duplicates in the catalog stop the load
    # before the customers are looked at.
    duplicates = _drop_duplicate_ids(Path(catalog), loaded_products)
    if not (duplicates and on_bad_rows == "fail"):
        duplicates = _drop_duplicate_ids(Path(customers), loaded_customers)
    if duplicates and on_bad_rows == "fail":
        raise RetailDataError(duplicates, hint="give every row its own id")
    missing = _drop_unusable_images(Path(catalog), loaded_products) if check_images else []
    if missing and on_bad_rows == "fail":
        raise RetailDataError(
            missing,
            hint="image paths are relative to the catalog's folder: put the files there, "
            "fix the paths, or leave these products out with --on-bad-rows skip",
        )

    product_ids = {p.id for p in loaded_products.items}
    customer_ids = {c.id for c in loaded_customers.items}
    kept: list[Event] = []
    unknown: list[RowProblem] = []
    for event, line in zip(loaded_events.items, loaded_events.lines, strict=True):
        if event.customer_id not in customer_ids:
            unknown.append(RowProblem(Path(events), line, "customer_id", "unknown customer id"))
        elif event.product_id is not None and event.product_id not in product_ids:
            unknown.append(
                RowProblem(
                    Path(events), line, "product_id", f"unknown product id {event.product_id!r}"
                )
            )
        else:
            kept.append(event)

    return RetailData(
        products=loaded_products.items,
        customers=loaded_customers.items,
        events=kept,
        catalog_dir=Path(catalog).resolve().parent,
        problems=loaded_products.problems
        + loaded_customers.problems
        + loaded_events.problems
        + unknown,
        skipped_rows={
            "catalog": loaded_products.skipped_rows,
            "customers": loaded_customers.skipped_rows,
            "events": loaded_events.skipped_rows,
        },
        unknown_reference_events=len(unknown),
    )
