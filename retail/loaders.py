"""CSV loaders that validate every row and say exactly which line and field is wrong.

A loader either stops at the end of the file with every problem listed
(`on_bad_rows="fail"`, the default) or leaves bad rows out and counts them
(`"skip"`). Nothing is dropped silently: skipped rows are returned as problems.

Files are read one record at a time: memory follows what is kept, not the file's size.
Encodings: UTF-8 with or without a byte-order mark, UTF-16 with one, or Windows-1252/Latin-1
when the caller says so. A UTF-8 file that turns out to be Windows-1252 (Excel's plain "CSV")
is refused with one line saying what to do; any other undecodable byte is one bad row naming
its column, and the rows after it still load.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TextIO, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

# A module, not its names: retail.event_files builds on this module's CSV helpers in turn.
from retail import event_files
from retail.errors import RetailDataError, RowProblem
from retail.events import EventTable
from retail.image_check import image_problem
from retail.image_files import ImageFiles, is_remote
from retail.remote_images import FetchPolicy, FetchReport, fetch_images
from retail.types import Customer, Product

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
    #: every event, as columns (a `Sequence[Event]`)
    events: EventTable
    catalog_dir: Path
    problems: list[RowProblem] = field(default_factory=list)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    unknown_reference_events: int = 0
    #: where each product's picture is on this machine (the fetched copies of URLs)
    images: ImageFiles | None = None
    #: how the pictures given by URL were fetched (None: none were)
    fetch_report: FetchReport | None = None

    @property
    def image_files(self) -> ImageFiles:
        """The pictures: fetched URLs, else paths in the catalog's folder."""
        return self.images or ImageFiles(self.catalog_dir)


@dataclass(frozen=True)
class CatalogSource:
    """How to read the catalog file: its format (None: detected), a mapping file for any
    other CSV, and what a Shopify export lacks (the shop's address, the currency)."""

    format: str | None = None
    mapping: Path | None = None
    shop_url: str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class ImageFetch:
    """Where pictures given by URL are fetched to, and how (`retail.remote_images`)."""

    cache_dir: Path
    policy: FetchPolicy
    progress: Callable[[int], None] | None = None


def _required(model: type[BaseModel]) -> list[str]:
    return [name for name, f in model.model_fields.items() if f.is_required()]


# -- encodings ----------------------------------------------------------------------------

#: the encodings a file may be read in besides what its byte-order mark declares
Encoding = Literal["utf-8", "cp1252", "latin-1"]
ENCODINGS: tuple[Encoding, ...] = ("utf-8", "cp1252", "latin-1")
_SHOWN = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "latin-1": "Latin-1"}

#: bytes looked at up front to tell a file's encoding
SNIFF_BYTES = 64 * 1024
#: a physical line longer than this many characters is a bad row and is never held whole
MAX_LINE_CHARS = 4 * 1024 * 1024
# Bytes Windows-1252 text is made of that UTF-8 never has alone: 0x80–0xFD less the five
# Windows-1252 leaves undefined. 0xFE and 0xFF (þ, ÿ) are rare in the text Excel saves, and
# they are the classic stray bytes of a damaged UTF-8 file.
_CP1252_LIKE = frozenset(range(0x80, 0xFE)) - {0x81, 0x8D, 0x8F, 0x90, 0x9D}

#: the one line for a Windows-1252 file read as UTF-8; a command without --encoding says
#: only the first part
SAVE_AS_UTF8 = (
    "not UTF-8 (looks like Windows-1252, as Excel 'CSV' saves it): save it as 'CSV UTF-8'"
)
NOT_UTF8 = SAVE_AS_UTF8 + " or pass --encoding cp1252"
ENCODING_HINT = "in a spreadsheet: Save As → 'CSV UTF-8 (Comma delimited)'"


@dataclass(frozen=True)
class _Source:
    """How a file is decoded, as its first bytes and the caller's `encoding` say."""

    codec: str  # Python's codec name
    shown: str  # the encoding's name in messages
    # A byte-order mark or an explicit encoding: an undecodable byte is then a bad row,
    # never a sign that the whole file is in another encoding.
    declared: bool
    # The caller's encoding for the bytes that are not UTF-8 (None: they are bad rows).
    fallback: str | None = None

    def decode(self, cell: str) -> str:
        """`cell` with its undecodable bytes read in the fallback encoding, if any."""
        if self.fallback is None or cell.isascii():
            return cell
        fallback = self.fallback
        return _ESCAPED.sub(
            lambda m: m[0].encode("utf-8", "surrogateescape").decode(fallback, "surrogateescape"),
            cell,
        )


@dataclass
class _Verdict:
    """What the rows of an undeclared UTF-8 file say about its real encoding."""

    multibyte: bool = False  # a valid UTF-8 letter beyond ASCII was seen
    bad_rows: int = 0
    cp1252_like: bool = True  # every undecodable byte is one Windows-1252 text is made of

    def note(self, text: str) -> bytes:
        """The undecodable bytes of `text` (a cell); notes what it says."""
        if text.isascii():
            return b""
        bad = _undecodable(text)
        if len(bad) < sum(1 for c in text if not c.isascii()):
            self.multibyte = True
        if bad and not set(bad) <= _CP1252_LIKE:
            self.cp1252_like = False
        return bad

    @property
    def looks_cp1252(self) -> bool:
        return self.bad_rows > 0 and not self.multibyte and self.cp1252_like


_ESCAPED = re.compile("[\udc80-\udcff]+")


def _undecodable(text: str) -> bytes:
    """The bytes that the `surrogateescape` error handler left undecoded in `text`."""
    return bytes(ord(c) - 0xDC00 for c in text if "\udc80" <= c <= "\udcff")


def _refuse(path: Path, problem: str, hint: str = ENCODING_HINT) -> RetailDataError:
    return RetailDataError([RowProblem(path, 0, "encoding", problem)], hint=hint)


def _sniff(path: Path, sample: bytes, whole: bool, encoding: Encoding) -> _Source:
    """Tell the file's encoding from its first bytes (`whole`: the sample is the file)."""
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16's
        raise _refuse(path, "the file is UTF-32: save it as 'CSV UTF-8'")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _Source("utf-16", "UTF-16", declared=True)
    if sample.startswith(codecs.BOM_UTF8):
        return _Source("utf-8-sig", "UTF-8", declared=True)
    if sample.startswith(b"PK\x03\x04"):
        raise _refuse(
            path, "a zip file (an Excel workbook?), not CSV: save the sheet as 'CSV UTF-8'"
        )
    if sample.count(0) * 4 > len(sample):
        raise _refuse(
            path,
            "full of NUL bytes: UTF-16 without a byte-order mark, or not a text file; "
            "save it as 'CSV UTF-8'",
        )
    verdict = _Verdict()
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(sample, final=whole)
    verdict.bad_rows = len(verdict.note(text))
    if encoding == "utf-8":
        if verdict.looks_cp1252:
            raise _refuse(path, NOT_UTF8)
        return _Source("utf-8", "UTF-8", declared=False)
    # What is valid UTF-8 stays UTF-8: one option serves a catalog exported as UTF-8 and a
    # customer list saved by a spreadsheet, and ASCII is both.
    shown = f"UTF-8 or {_SHOWN[encoding]}"
    return _Source("utf-8", shown, declared=True, fallback=encoding)


@contextmanager
def _open(path: Path, encoding: Encoding) -> Iterator[tuple[_Source, TextIO]]:
    """The file as text, decoded one chunk at a time; undecodable bytes are kept as lone
    surrogates (`surrogateescape`), so one bad byte spoils its cell, not the rest of the file."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise RetailDataError(
            [RowProblem(path, 0, "file", "file not found")], hint="check the path and try again"
        ) from None
    except OSError as exc:
        raise RetailDataError(
            [RowProblem(path, 0, "file", f"cannot be read ({exc.strerror or type(exc).__name__})")],
            hint="check the path and the file's permissions",
        ) from None
    with raw:
        sample = raw.read(SNIFF_BYTES)
        source = _sniff(path, sample, len(sample) < SNIFF_BYTES, encoding)
        raw.seek(0)
        # UTF-16 has no byte-per-byte escape: damage there stops the file (see load_rows).
        errors = "strict" if source.codec == "utf-16" else "surrogateescape"
        text = io.TextIOWrapper(raw, encoding=source.codec, errors=errors, newline="")
        try:
            yield source, text
        finally:
            text.detach()


def _lines(text: TextIO, oversized: list[int]) -> Iterator[str]:
    """The physical lines of `text`; one longer than MAX_LINE_CHARS is read past in pieces,
    noted in `oversized` by its number, and given to the CSV reader as an empty line."""
    number = 0
    while line := text.readline(MAX_LINE_CHARS):
        number += 1
        if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (rest := text.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
                pass
            oversized.append(number)
            line = "\n"
        yield line


# -- header and rows ------------------------------------------------------------------------


def _header_problems(path: Path, header: list[str], model: type[BaseModel]) -> list[RowProblem]:
    names = [h.strip() for h in header]
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
    problems = [
        RowProblem(path, 1, "header", f"column {n} is {_bytes_problem(bad, 'UTF-8')}")
        for n, name in enumerate(names, 1)
        if (bad := _undecodable(name))
    ]
    known = set(model.model_fields)
    seen: dict[str, int] = {}
    for n, name in enumerate(names, 1):
        if name in known and name in seen:
            problems.append(
                RowProblem(path, 1, name, f"the column appears twice (columns {seen[name]}, {n})")
            )
        seen.setdefault(name, n)
    return problems + [
        RowProblem(path, 1, column, f"missing column (required: {required})")
        for column in _required(model)
        if column not in seen
    ]


def _bytes_problem(bad: bytes, encoding: str) -> str:
    shown = " ".join(f"0x{b:02X}" for b in bad[:3]) + (" …" if len(bad) > 3 else "")
    return f"not valid {encoding} text (byte {shown}): save the file as 'CSV UTF-8'"


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a cell is longer than {csv.field_size_limit():,} characters "
            "(or a quote is never closed)"
        )
    return f"unreadable CSV ({exc})"


def _explain(error: ErrorDetails) -> str:
    # pydantic's own text, without `input_value`: cells may hold personal data.
    message = error["msg"]
    if error["type"] == "missing":
        return "is required but empty"
    return message[0].lower() + message[1:] if message else error["type"]


def load_rows(
    path: Path, model: type[T], on_bad_rows: OnBadRows = "fail", *, encoding: Encoding = "utf-8"
) -> Loaded[T]:
    """Validate every row of a CSV file against `model`, reading one record at a time.

    Empty cells of optional fields mean "not given". Columns the model does not
    know are ignored. Raises RetailDataError listing every problem when
    `on_bad_rows` is "fail" and any row is bad, or when the header lacks a
    required column (no row can be right then).

    Encoding: a byte-order mark decides (UTF-8 or UTF-16). Otherwise the file is UTF-8, and
    with `encoding` "cp1252" or "latin-1" (as spreadsheets save plain "CSV") the bytes that
    are not UTF-8 are read in that encoding; UTF-8 text stays UTF-8, so one setting serves
    files of both kinds. With "utf-8", a file whose undecodable bytes all look like
    Windows-1252 text is refused whole, with one problem saying how to save or read it, in
    both modes (a row-by-row verdict would load only its ASCII rows); any other undecodable
    byte makes its row a bad row, naming the column.
    """
    loaded: Loaded[T] = Loaded([])
    for item, line in _valid_rows(Path(path), model, loaded, encoding):
        loaded.items.append(item)
        loaded.lines.append(line)
    if loaded.problems and on_bad_rows == "fail":
        raise RetailDataError(loaded.problems)
    return loaded


def _valid_rows(
    path: Path,
    model: type[T],
    loaded: Loaded[T],
    encoding: Encoding,
    *,
    delimiter: str = ",",
    columns: Callable[[str], str] | None = None,
) -> Iterator[tuple[T, int]]:
    """Each valid row of `path` as `model` with the line it starts on, one at a time; the
    bad rows go to `loaded.problems` and `loaded.skipped_rows` (see `load_rows`).

    `columns` gives the model's field for a header cell, for files with their own column
    names (retail.feeds); the problems of a row then name the file's column.
    """
    known = set(model.model_fields)
    problems = loaded.problems
    with _open(path, encoding) as (source, text):
        verdict = None if source.declared else _Verdict()
        oversized: list[int] = []
        reader = csv.reader(_lines(text, oversized), delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            header = []
        except csv.Error as exc:
            raise RetailDataError(
                [RowProblem(path, 1, "header", _csv_problem(exc))],
                hint="the first line must be the header row",
            ) from None
        except UnicodeDecodeError:
            raise _refuse(
                path, f"the {source.shown} text is damaged: save it as 'CSV UTF-8'"
            ) from None
        if not any(h.strip() for h in header) and not oversized:
            raise RetailDataError(
                [RowProblem(path, 1, "header", "the file is empty (a header row is expected)")],
                hint="add the header row and the data rows",
            )
        header = [source.decode(h) for h in header]
        shown: dict[str, str] = {}  # a field's column in the file, when they differ
        if columns is not None:
            shown = {columns(h.strip()): h.strip() for h in header}
            header = [columns(h.strip()) for h in header]
        undecodable_bytes = _undecodable if verdict is None else verdict.note
        if verdict is not None and any([verdict.note(name) for name in header]):
            verdict.bad_rows += 1  # the header counts as a row for the file's verdict
        header_problems = _header_problems(path, header, model)
        if oversized:
            header_problems.insert(
                0, RowProblem(path, 1, "header", f"longer than {MAX_LINE_CHARS:,} characters")
            )
        if verdict is not None and verdict.looks_cp1252:
            raise _refuse(path, NOT_UTF8)
        if header_problems:
            hint = "add the missing column(s) to the header row"
            if header_problems[0].field == "header":
                hint = "in a spreadsheet: Save As → CSV (comma delimited), UTF-8"
            elif "twice" in header_problems[0].problem:
                hint = "keep one column of each name"
            raise RetailDataError(header_problems, hint=hint)
        names = [h.strip() for h in header]
        last = reader.line_num
        while True:
            start = last + 1
            cells: list[str] | None = None
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                why = _csv_problem(exc)
            except UnicodeDecodeError:
                # UTF-16 (a byte-order mark) damaged: no way to find the next row's start.
                raise _refuse(
                    path,
                    f"the {source.shown} text is damaged near line {start}: save it as 'CSV UTF-8'",
                ) from None
            last = reader.line_num
            for number in oversized:
                problems.append(
                    RowProblem(path, number, "row", f"longer than {MAX_LINE_CHARS:,} characters")
                )
                loaded.skipped_rows += 1
            oversized.clear()
            if cells is None:
                problems.append(RowProblem(path, start, "row", why))
                loaded.skipped_rows += 1
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                runs = f" (it runs to line {last}: a quote not closed?)" if last > start else ""
                problems.append(
                    RowProblem(
                        path,
                        start,
                        "row",
                        f"has {len(cells)} cells but the header has {len(names)} columns{runs}",
                    )
                )
                loaded.skipped_rows += 1
                continue
            if not all(c.isascii() for c in cells):
                cells = [source.decode(c) for c in cells]
                undecodable = [
                    RowProblem(
                        path,
                        start,
                        shown.get(name, name) or "row",
                        _bytes_problem(bad, source.shown),
                    )
                    for name, cell in zip(names, cells, strict=True)
                    if (bad := undecodable_bytes(cell))
                ]
                if undecodable:
                    if verdict is not None:
                        verdict.bad_rows += 1
                    problems.extend(undecodable)
                    loaded.skipped_rows += 1
                    continue
            data = {
                k: v
                for k, v in zip(names, cells, strict=True)
                if k in known and not (v.strip() == "" and _optional(model, k))
            }
            try:
                item = model.model_validate(data)
            except ValidationError as exc:
                loaded.skipped_rows += 1
                for err in exc.errors(include_input=False, include_url=False):
                    name = ".".join(str(p) for p in err["loc"]) or "row"
                    name = shown.get(name, name)
                    problems.append(RowProblem(path, start, name, _explain(err)))
                continue
            yield item, start
    if verdict is not None and verdict.looks_cp1252:
        raise _refuse(path, NOT_UTF8)


def _optional(model: type[BaseModel], name: str) -> bool:
    return not model.model_fields[name].is_required()


def _drop_unusable_images(
    catalog: Path, loaded: Loaded[Product], fetch: ImageFetch | None = None
) -> tuple[list[RowProblem], ImageFiles, FetchReport | None]:
    """Leave out products whose image is not a usable image: a file in the catalog's
    folder (missing, unreadable, too large, a decompression bomb), or a URL that could not
    be fetched (`fetch`; without it, URLs are refused); report them.

    Found now, a bad image is one line of the load report; found at render time, it
    would stop the campaign halfway.
    """
    root = catalog.resolve().parent
    urls = [p.image for p in loaded.items if is_remote(p.image)]
    report = None
    if urls and fetch is not None:
        report = fetch_images(urls, fetch.cache_dir, fetch.policy, progress=fetch.progress)
    images = ImageFiles(root, report.paths if report is not None else {})
    problems: list[RowProblem] = []
    items, lines = [], []
    for product, line in zip(loaded.items, loaded.lines, strict=True):
        why = _image_problem(root, product.image, report)
        if why is None:
            items.append(product)
            lines.append(line)
            continue
        problems.append(RowProblem(catalog, line, "image", why))
    loaded.items, loaded.lines = items, lines
    loaded.skipped_rows += len(problems)
    loaded.problems.extend(problems)
    return problems, images, report


def _image_problem(root: Path, image: str, report: FetchReport | None) -> str | None:
    """Why a catalog's image cell names no usable picture, or None."""
    if is_remote(image):
        if report is None:
            return "a picture URL, and fetching pictures is off here"
        return report.problems.get(image) if image not in report.paths else None
    try:
        path = (root / image).resolve()
        found = path.is_relative_to(root) and path.is_file()
    except (ValueError, OSError):  # a NUL character; a name too long for the file system
        return "not a usable file path (a NUL character, or a name too long)"
    if "://" in image:
        return "only http and https picture URLs can be fetched"
    if not path.is_relative_to(root):
        return "the path leaves the catalog's folder"
    if not found:
        return f"file not found ({_shown_path(image)} in {root})"
    return image_problem(path)


def _shown_path(image: str) -> str:
    return image if len(image) <= 200 else f"{image[:100]}… ({len(image)} characters)"


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


@dataclass
class LoadedEvents:
    """The valid rows of an events file as columns, and what was left out and why.

    `lines[i]` is the physical line on which `events[i]` starts.
    """

    events: EventTable
    lines: array[int]
    problems: list[RowProblem] = field(default_factory=list)
    skipped_rows: int = 0


def load_events(
    path: Path,
    on_bad_rows: OnBadRows = "fail",
    *,
    encoding: Encoding = "utf-8",
    per_row: bool = False,
) -> LoadedEvents:
    """The events of a CSV file (gzipped if it ends in `.gz`) or a Parquet file (`.parquet`)
    as an `EventTable`, read a block at a time: every row is judged as `load_rows(path,
    Event, ...)` judges it (the same problems, lines and errors), memory follows the table,
    not the file (see `retail.event_files`). `per_row`: validate each CSV row as an `Event`
    in turn, the reference reader (slower)."""
    loaded = event_files.read_events(Path(path), encoding=encoding, per_row=per_row)
    if loaded.problems and on_bad_rows == "fail":
        raise RetailDataError(loaded.problems)
    return loaded


def load_retail(
    catalog: Path,
    customers: Path,
    events: Path,
    on_bad_rows: OnBadRows = "fail",
    *,
    check_images: bool = False,
    encoding: Encoding = "utf-8",
    catalog_source: CatalogSource | None = None,
    customers_format: str | None = None,
    fetch: ImageFetch | None = None,
) -> RetailData:
    """Load and cross-check the three retail files.

    The catalog may be our CSV, a Google Merchant Center feed, a Shopify export or any
    CSV with a mapping file (`catalog_source`, detected by default: `retail.feeds`); the
    customers our CSV or a Shopify export (`customers_format`, detected by default); the
    events our columns as CSV, gzipped CSV or Parquet (`load_events`).

    With `check_images` (what a campaign needs, training does not), a product whose image
    is not a file in the catalog's folder, or a URL that could not be fetched (`fetch`),
    is a bad row too. `encoding` is for the files without a byte-order mark (see
    `load_rows`).

    Duplicate ids follow `on_bad_rows`. Events that name a product or customer
    missing from the other files are reported as problems and left out in both
    modes: history about a deleted product must not stop a campaign, but it is
    never silently ignored.
    """
    from retail.feeds import load_catalog, load_customers

    source = catalog_source or CatalogSource()
    loaded_products = load_catalog(
        Path(catalog),
        on_bad_rows,
        format=source.format,  # type: ignore[arg-type]
        mapping=source.mapping,
        shop_url=source.shop_url,
        currency=source.currency,
        encoding=encoding,
    )
    loaded_customers = load_customers(
        Path(customers),
        on_bad_rows,
        format=customers_format,  # type: ignore[arg-type]
        encoding=encoding,
    )
    loaded_events = load_events(Path(events), on_bad_rows, encoding=encoding)
    table, lines = loaded_events.events, loaded_events.lines

    # One file after the other: with "fail", duplicates in the catalog stop the load
    # before the customers are looked at.
    duplicates = _drop_duplicate_ids(Path(catalog), loaded_products)
    if not (duplicates and on_bad_rows == "fail"):
        duplicates = _drop_duplicate_ids(Path(customers), loaded_customers)
    if duplicates and on_bad_rows == "fail":
        raise RetailDataError(duplicates, hint="give every row its own id")
    missing: list[RowProblem] = []
    images, fetched = None, None
    if check_images:
        missing, images, fetched = _drop_unusable_images(Path(catalog), loaded_products, fetch)
    if missing and on_bad_rows == "fail":
        raise RetailDataError(
            missing,
            hint="image paths are relative to the catalog's folder: put the files there, "
            "fix the paths or URLs, or leave these products out with --on-bad-rows skip",
        )

    events_path = Path(events)
    known = table.customer_ids.members(c.id for c in loaded_customers.items)[table.customer]
    # An event about no product has code -1: the extra last entry counts it as known.
    in_catalog = table.product_ids.members(p.id for p in loaded_products.items)
    in_catalog[-1] = True
    about_known = in_catalog[table.product]
    unknown: list[RowProblem] = []
    product_ids = table.product_ids.ids
    for at in np.flatnonzero(~(known & about_known)).tolist():
        line = lines[at]
        if not known[at]:
            unknown.append(RowProblem(events_path, line, "customer_id", "unknown customer id"))
        else:
            product_id = product_ids[table.product[at]]
            unknown.append(
                RowProblem(events_path, line, "product_id", f"unknown product id {product_id!r}")
            )
    if unknown:
        table = table.where(known & about_known)  # a copy without spare capacity
    else:
        table.trim()

    return RetailData(
        products=loaded_products.items,
        customers=loaded_customers.items,
        events=table,
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
        images=images,
        fetch_report=fetched,
    )
