"""Events files read in bulk: CSV, gzipped CSV and Parquet, a block of rows at a time.

Ten million events are too many to validate one pydantic `Event` at a time (about 7 µs a
row). Here pyarrow parses a block of a few MB into columns, `retail.event_columns` checks
them and reads the timestamps with numpy, and `EventTable.extend_columns` codes the ids in
bulk: memory follows the table and one block, never the file.

The answers are the per-row reader's (`retail.loaders._valid_rows`, which validates each
row as an `Event`): the columns vouch only for the rows they can prove right; every other
row is validated as an `Event` on its own (from arrow's cells when they are the csv
module's, else from its own line), so a bad row's problems, messages and line are the
per-row reader's, and a row in a shape the columns do not know (a Unix timestamp, `+0200`)
loads as it does there.

A CSV file is read row by row, whole, when its blocks cannot be numbered line by line or
may decode differently: bytes that are not UTF-8 (whose verdict is the file's), UTF-16, a
NUL byte, a line of 64 KiB or more, a quoted cell over several lines, a row of too many or
too few cells in a file with quotes, a line starting with a byte-order mark. Slower, never
different. A gzipped file (`.gz`) is then decompressed to a temporary folder first.

Parquet has no lines: a problem's `line` (and `LoadedEvents.lines`) is the row's number
+ 1, the line it would have in a CSV file with a header, and the message ends "(row N)".
Null cells are empty cells, and no row is skipped as blank. Columns of a type that cannot
hold the field (numbers for ids, timestamps without a time zone) stop the load, naming the
column, as a missing column does. Memory follows the file's row groups.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import shutil
import tempfile
import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from pydantic import ValidationError

# A module, not its names: retail.loaders imports this module in turn (for load_events).
from retail import loaders
from retail.errors import RetailDataError, RowProblem
from retail.event_columns import Batch, Ints, Mask, Micros, check_columns, nulls, parse_timestamps
from retail.events import EVENT_TYPES, EventTable, to_micros
from retail.types import Event

#: bytes of CSV parsed at a time (Parquet: this over 64 rows a batch)
BLOCK_BYTES = 16 * 2**20
#: bytes read from the file at a time
READ_BYTES = 2**20
#: bytes each of arrow's threads parses at a time (a block without quotes)
THREAD_BYTES = 2**20
#: a line this long or longer may hold a cell past the csv module's limit: read row by row
LONG_LINE = 64 * 1024
#: what `.parquet` files are; `.gz` ones are gzipped CSV; anything else is CSV
PARQUET_SUFFIXES = (".parquet", ".pq")

_FIELDS = tuple(Event.model_fields)
_REQUIRED = tuple(name for name, f in Event.model_fields.items() if f.is_required())


def read_events(
    path: Path,
    *,
    encoding: loaders.Encoding = "utf-8",
    per_row: bool = False,
    block_size: int = BLOCK_BYTES,
) -> loaders.LoadedEvents:
    """The events of a CSV (`.gz`: gzipped) or Parquet (`.parquet`) file and its bad rows.

    Bad rows are returned as problems, never raised (the caller decides, as `load_events`
    does with `on_bad_rows`); a file that cannot be read at all (missing, a header without a
    required column, not UTF-8, columns of the wrong type) raises RetailDataError as
    `load_rows` does. `per_row`: validate each CSV row as an `Event` in turn (the reference
    reader, about ten times slower). `block_size`: bytes parsed at a time.
    """
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, max(1, block_size // 64))
    gzipped = path.suffix.lower() == ".gz"
    if not per_row:
        try:
            return _read_csv(path, encoding, block_size, gzipped)
        except _PerRow:
            pass
    return _read_gzip_per_row(path, encoding) if gzipped else _read_per_row(path, encoding)


class _PerRow(Exception):
    """The file needs the per-row reader (see the module's docstring)."""


# -- CSV, a block at a time -----------------------------------------------------------------


def _read_csv(
    path: Path, encoding: loaders.Encoding, block_size: int, gzipped: bool
) -> loaders.LoadedEvents:
    if encoding not in loaders.ENCODINGS:
        raise _PerRow  # which says so
    try:
        raw: io.BufferedIOBase = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115
    except OSError:
        raise _PerRow from None  # which says what is wrong with the path
    with raw, _gzip_errors(path):
        head = raw.read(loaders.SNIFF_BYTES)
        # Refuses UTF-32, a zip file, NUL bytes, Windows-1252 as the per-row reader does.
        source = loaders._sniff(path, head, len(head) < loaders.SNIFF_BYTES, encoding)
        if source.codec == "utf-16":
            raise _PerRow
        blocks = _blocks(raw, head, max(block_size, 1))
        first = next(blocks, bytearray())
        if first.startswith(codecs.BOM_UTF8):
            del first[: len(codecs.BOM_UTF8)]
        header_end = _first_line_end(first)
        reader = _BlockReader(path, _header(path, bytes(first[:header_end])))
        del first[:header_end]
        loaded = loaders.LoadedEvents(EventTable(), array("i"))
        line = 2
        # One thread: parsing blocks on a second one measured no faster on two shared cores.
        for block in _with_first(first, blocks):
            lines = _line_count(block)
            _add(loaded, reader.parse(block, line, lines))
            line += lines
    return loaded


def _line_count(block: bytearray) -> int:
    lines = block.count(b"\n")
    if b"\r" in block:
        lines += block.count(b"\r") - block.count(b"\r\n")
    if not block.endswith((b"\n", b"\r")):
        lines += 1
    return lines


@contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    """A damaged gzip file is one problem about the file, wherever the damage shows."""
    try:
        yield
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _not_gzip(path, exc) from None


def _not_gzip(path: Path, exc: BaseException) -> RetailDataError:
    why = str(exc) or type(exc).__name__
    return RetailDataError(
        [RowProblem(path, 0, "file", f"not a readable gzip file ({why})")],
        hint="compress the CSV file again with gzip, or give it uncompressed",
    )


def _with_first(first: bytearray, rest: Iterator[bytearray]) -> Iterator[bytearray]:
    if first:
        yield first
    yield from rest


def _blocks(raw: io.BufferedIOBase, head: bytes, size: int) -> Iterator[bytearray]:
    """The bytes of `raw` (`head`: its first bytes, already read) in blocks of whole lines
    of at most about `size` bytes; only the last block may end without a line end."""
    pending = bytearray(head)
    while True:
        # In pieces: one read of `size` bytes would take `size` bytes for a small file too.
        while len(pending) < size and (more := raw.read(min(READ_BYTES, size - len(pending)))):
            pending += more
        if len(pending) < size:  # the end of the file
            if pending:
                yield pending
            return
        cut = _last_line_end(pending, size)
        if not cut:
            raise _PerRow  # a line longer than a block
        rest = pending[cut:]
        del pending[cut:]
        yield pending
        pending = rest


def _last_line_end(data: bytearray, limit: int) -> int:
    """Where the last line ending in `data[:limit]` ends (0: none), its "\r\n" whole; a
    "\r" whose next byte is not read yet is not taken, since that byte may be its "\n"."""
    at = data.rfind(b"\n", 0, limit)
    if at >= 0:
        return at + 1
    at = data.rfind(b"\r", 0, limit)
    if at + 1 == len(data):
        at = data.rfind(b"\r", 0, at)
    if at < 0:
        return 0
    return at + 2 if data[at + 1] == 10 else at + 1


def _first_line_end(data: bytearray) -> int:
    ends = [at for at in (data.find(b"\n"), data.find(b"\r")) if at >= 0]
    if not ends:
        return len(data)
    at = min(ends)
    return at + 2 if data[at : at + 2] == b"\r\n" else at + 1


@dataclass(frozen=True)
class _Header:
    names: list[str]  # stripped, one per column
    columns: dict[str, int]  # an `Event` field → its column


def _header(path: Path, line: bytes) -> _Header:
    """The header line's columns; a header with problems goes to the per-row reader, which
    reports them as it always has."""
    if len(line) >= LONG_LINE or b"\x00" in line:
        raise _PerRow
    try:
        cells = next(csv.reader([line.decode("utf-8")]), [])
    except UnicodeDecodeError:
        raise _PerRow from None
    if any("\n" in c or "\r" in c for c in cells):
        raise _PerRow  # a quoted name over several lines
    if not any(c.strip() for c in cells) or loaders._header_problems(path, cells, Event):
        raise _PerRow
    names = [c.strip() for c in cells]
    return _Header(names, {name: names.index(name) for name in _FIELDS if name in names})


class _BlockReader:
    """Reads blocks of whole lines of one CSV file into a `LoadedEvents`."""

    def __init__(self, path: Path, header: _Header) -> None:
        self.path, self.header = path, header
        self._columns = [f"c{n}" for n in range(len(header.names))]
        self._convert_options = pcsv.ConvertOptions(
            include_columns=[f"c{n}" for n in header.columns.values()],
            column_types={f"c{n}": pa.string() for n in header.columns.values()},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=False,  # the block was checked whole, unknown columns too
        )

    def parse(self, block: bytearray, line: int, lines: int) -> _Parsed:
        """The events of `block`, whose first line is `line`, of `lines` lines; raises
        _PerRow when they cannot be told apart line by line here."""
        if b"\x00" in block or _has_long_line(block):
            raise _PerRow
        if block.startswith(codecs.BOM_UTF8):
            raise _PerRow  # arrow would drop it from the line's first cell
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                raise _PerRow from None
        invalid = 0

        def count_invalid(row: Any) -> str:
            nonlocal invalid
            invalid += 1
            return "skip"

        # Without a quote no cell can hold a line end: arrow may then split the block at
        # any line end and parse the pieces on its threads (3x faster on 2 cores).
        quoted = b'"' in block
        parse = pcsv.ParseOptions(
            newlines_in_values=quoted, ignore_empty_lines=False, invalid_row_handler=count_invalid
        )
        options = pcsv.ReadOptions(
            column_names=self._columns,
            use_threads=not quoted,
            block_size=len(block) + 1 if quoted else THREAD_BYTES,
        )
        try:
            table = pcsv.read_csv(
                pa.py_buffer(block),
                read_options=options,
                parse_options=parse,
                convert_options=self._convert_options,
            )
        except pa.ArrowInvalid:
            raise _PerRow from None
        if table.num_rows + invalid != lines:
            raise _PerRow  # a quoted cell runs over lines: they cannot be numbered here
        bounds = _Lines(block)
        if invalid:
            if b'"' in block:
                raise _PerRow  # only the csv module counts the cells of such rows as it does
            parsed = bounds.parsed_by_arrow(len(self.header.names))
            if int(parsed.sum()) != table.num_rows:
                raise _PerRow
            row_lines = np.flatnonzero(parsed).astype(np.int32)
            odd_lines = np.flatnonzero(~parsed).astype(np.int32)
        else:
            row_lines = np.arange(table.num_rows, dtype=np.int32)
            odd_lines = np.empty(0, dtype=np.int32)

        def chunk(field: str) -> pa.Array:
            values = table.column(f"c{self.header.columns[field]}")
            return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()

        cells = {field: chunk(field) for field in self.header.columns}
        batch = check_columns(cells["customer_id"], cells.get("product_id"), cells["type"])
        micros, timely = parse_timestamps(cells["timestamp"])
        batch.ok &= timely
        # The rows the columns could not vouch for, and those arrow could not parse, are
        # judged one by one as the per-row reader judges them: from arrow's cells when they
        # are the csv module's (no quotes, every row parsed) and not all blank, else from
        # the row's own line.
        direct = not invalid and not quoted
        rechecked = []
        for at in np.sort(np.concatenate([row_lines[~batch.ok], odd_lines])).tolist():
            verdict: Event | list[RowProblem] | None = None
            if direct:
                known = {field: values[at].as_py() for field, values in cells.items()}
                if any(value.strip() for value in known.values()):
                    verdict = _validate(self.path, line + at, _fields(known))
            if verdict is None:
                row = next(csv.reader([bounds.text(at)]), [])
                verdict = _check_row(self.path, line + at, self.header.names, row)
            rechecked.append((line + at, verdict))
        return _settle(batch, micros, line + row_lines, rechecked)


def _has_long_line(block: bytearray) -> bool:
    """Whether `block` may have a line of LONG_LINE bytes or more: such a line holds a whole
    aligned stretch of half that length with no line end."""
    half = LONG_LINE // 2
    for start in range(0, len(block) - half + 1, half):
        if (
            block.find(b"\n", start, start + half) < 0
            and block.find(b"\r", start, start + half) < 0
        ):
            return True
    return False


class _Lines:
    """Where each line of a block starts and ends (found only for blocks that need it)."""

    def __init__(self, block: bytearray) -> None:
        self.block = block
        self._ends: npt.NDArray[np.int64] | None = None

    @property
    def ends(self) -> npt.NDArray[np.int64]:
        """Per line, the offset after its line end."""
        if self._ends is None:
            data = np.frombuffer(self.block, dtype=np.uint8)
            ends = np.flatnonzero(data == 10) + 1
            if b"\r" in self.block:
                cr = np.flatnonzero(data == 13)
                follows = data[np.minimum(cr + 1, len(data) - 1)]
                alone = cr[(cr + 1 == len(data)) | (follows != 10)]
                ends = np.sort(np.concatenate([ends, alone + 1]))
            if not self.block.endswith((b"\n", b"\r")):
                ends = np.append(ends, len(data))
            self._ends = ends.astype(np.int64)
        return self._ends

    def text(self, at: int) -> str:
        """Line `at` (from 0) of the block, with its line end."""
        start = int(self.ends[at - 1]) if at else 0
        return self.block[start : int(self.ends[at])].decode("utf-8")

    def parsed_by_arrow(self, width: int) -> Mask:
        """Per line of a block without quotes, whether arrow reads it as a row: `width`
        cells, or none (an empty line is a row of empty cells there, a blank row here)."""
        data = np.frombuffer(self.block, dtype=np.uint8)
        ends = self.ends
        commas = np.bincount(
            np.searchsorted(ends, np.flatnonzero(data == 44), side="right"), minlength=len(ends)
        )
        starts = np.concatenate([[0], ends[:-1]])
        first = data[np.minimum(starts, len(data) - 1)]
        empty = (starts == ends) | (first == 10) | (first == 13)
        parsed: Mask = (commas == width - 1) | empty
        return parsed


# -- the rows the columns do not vouch for ----------------------------------------------------


def _check_row(
    path: Path, line: int, names: list[str], cells: list[str]
) -> Event | list[RowProblem] | None:
    """The per-row reader's verdict on one CSV row (see `_valid_rows`): None for a blank
    row (left out without a problem), an `Event`, or its problems."""
    if not any(c.strip() for c in cells):
        return None
    if len(cells) != len(names):
        problem = f"has {len(cells)} cells but the header has {len(names)} columns"
        return [RowProblem(path, line, "row", problem)]
    return _validate(path, line, _fields(dict(zip(names, cells, strict=True))))


def _fields(cells: dict[str, str]) -> dict[str, str]:
    """A row's cells as `Event`'s fields: unknown columns left out, and the blank cells of
    optional fields (they mean "not given")."""
    return {
        k: v
        for k, v in cells.items()
        if k in _FIELDS and not (v.strip() == "" and k not in _REQUIRED)
    }


def _validate(
    path: Path, line: int, data: dict[str, Any], where: str = ""
) -> Event | list[RowProblem]:
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        return [
            RowProblem(
                path,
                line,
                ".".join(str(p) for p in err["loc"]) or "row",
                loaders._explain(err) + where,
            )
            for err in exc.errors(include_input=False, include_url=False)
        ]


@dataclass
class _Parsed:
    """A batch's events as columns ready to add (the ids dictionary-encoded, so the table
    codes each distinct id once), their lines, and the problems of its bad rows."""

    customer: pa.DictionaryArray
    product: pa.DictionaryArray
    types: npt.NDArray[np.int8]
    micros: Micros
    lines: Ints
    problems: list[RowProblem]
    skipped_rows: int


def _settle(
    batch: Batch,
    micros: Micros,
    lines: Ints,
    rechecked: list[tuple[int, Event | list[RowProblem] | None]],
) -> _Parsed:
    """A batch's vouched-for rows and its rechecked ones, in line order."""
    keep = pa.array(batch.ok)
    customer, product = batch.customer.filter(keep), batch.product.filter(keep)
    types, micros, lines = batch.types[batch.ok], micros[batch.ok], lines[batch.ok]
    events: list[tuple[int, Event]] = []
    problems: list[RowProblem] = []
    skipped = 0
    for line, verdict in rechecked:
        if isinstance(verdict, Event):
            events.append((line, verdict))
        elif verdict is not None:
            problems.extend(verdict)
            skipped += 1
    if events:
        customer = pa.concat_arrays(
            [customer.cast(pa.string()), pa.array([e.customer_id for _, e in events], pa.string())]
        )
        product = pa.concat_arrays(
            [product.cast(pa.string()), pa.array([e.product_id for _, e in events], pa.string())]
        )
        types = np.concatenate([types, [EVENT_TYPES.index(e.type) for _, e in events]])
        micros = np.concatenate([micros, [to_micros(e.timestamp) for _, e in events]])
        lines = np.concatenate([lines, np.array([line for line, _ in events], np.int32)])
        order = np.argsort(lines, kind="stable")
        taken = pa.array(order)
        customer, product = customer.take(taken), product.take(taken)
        types, micros, lines = types[order], micros[order], lines[order]
    return _Parsed(
        customer.dictionary_encode(),
        product.dictionary_encode(),
        types.astype(np.int8),
        micros,
        lines.astype(np.intc, copy=False),
        problems,
        skipped,
    )


def _add(loaded: loaders.LoadedEvents, parsed: _Parsed) -> None:
    """Add a parsed batch to `loaded` (in the order of the file: ids are coded as they
    first appear)."""
    loaded.events.extend_columns(parsed.customer, parsed.product, parsed.types, parsed.micros)
    loaded.lines.frombytes(parsed.lines.tobytes())
    loaded.problems.extend(parsed.problems)
    loaded.skipped_rows += parsed.skipped_rows


# -- Parquet ------------------------------------------------------------------------------------

_TEXT = (pa.types.is_string, pa.types.is_large_string)


def _read_parquet(path: Path, batch_rows: int) -> loaders.LoadedEvents:
    if not path.is_file():
        return _read_per_row(path, "utf-8")  # which says what is wrong with the path
    with _parquet_errors(path):
        parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    problems = loaders._header_problems(path, list(schema.names), Event)
    if problems:
        hint = "add the missing column(s) to the file"
        if "twice" in problems[0].problem:
            hint = "keep one column of each name"
        raise RetailDataError(problems, hint=hint)
    problems = [
        RowProblem(path, 1, name, why)
        for name in _FIELDS
        if name in schema.names and (why := _column_type_problem(name, schema.field(name).type))
    ]
    if problems:
        raise RetailDataError(
            problems,
            hint="write ids and types as text, timestamps as timestamps with a time zone "
            "(or as ISO-8601 text with an offset)",
        )
    loaded = loaders.LoadedEvents(EventTable(), array("i"))
    present = [name for name in _FIELDS if name in schema.names]
    first_row = 0
    with _parquet_errors(path):
        for record_batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            _add_parquet_batch(path, record_batch, first_row, loaded)
            first_row += record_batch.num_rows
    return loaded


@contextmanager
def _parquet_errors(path: Path) -> Iterator[None]:
    """A file pyarrow cannot read as Parquet is one problem about the file."""
    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        raise RetailDataError(
            [RowProblem(path, 0, "file", f"not a readable Parquet file ({exc})")],
            hint="write the events as Parquet again, or as CSV",
        ) from None


def _column_type_problem(name: str, kind: pa.DataType) -> str | None:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if any(is_text(kind) for is_text in _TEXT) or pa.types.is_null(kind):
        return None
    if name == "timestamp" and pa.types.is_timestamp(kind):
        if kind.tz is None:
            return "timestamps without a time zone: write them in UTC (or with their offset)"
        return None
    return f"the column holds {kind} values, not text"


def _add_parquet_batch(
    path: Path, record_batch: pa.RecordBatch, first_row: int, loaded: loaders.LoadedEvents
) -> None:
    def column(name: str) -> pa.Array:
        values = record_batch.column(name)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        return values if pa.types.is_timestamp(values.type) else values.cast(pa.string())

    names = record_batch.schema.names
    stamps = column("timestamp")
    product = column("product_id") if "product_id" in names else None
    batch = check_columns(column("customer_id"), product, column("type"))
    if pa.types.is_timestamp(stamps.type):
        instants = stamps.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64())
        micros = np.asarray(instants.fill_null(0), dtype=np.int64)
        batch.ok &= ~nulls(stamps)
    else:
        micros, timely = parse_timestamps(stamps)
        batch.ok &= timely
    rows = np.arange(record_batch.num_rows, dtype=np.int32)
    rechecked: list[tuple[int, Event | list[RowProblem] | None]] = []
    values = {
        name: record_batch.column(name)
        for name in _FIELDS
        if record_batch.schema.get_field_index(name) >= 0
    }
    for at in np.flatnonzero(~batch.ok).tolist():
        row = first_row + at + 1
        data: dict[str, Any] = {}
        for name, cells in values.items():
            value = cells[at].as_py()
            if value is None or (
                isinstance(value, str) and name not in _REQUIRED and not value.strip()
            ):
                value = "" if name in _REQUIRED else None
            if value is not None:
                data[name] = value
        rechecked.append((row + 1, _validate(path, row + 1, data, f" (row {row})")))
    _add(loaded, _settle(batch, micros, first_row + rows + 2, rechecked))


# -- row by row ---------------------------------------------------------------------------------


def _read_per_row(path: Path, encoding: loaders.Encoding) -> loaders.LoadedEvents:
    """Each row validated as an `Event` in turn (`retail.loaders._valid_rows`)."""
    table, lines = EventTable(), array("i")
    rows: loaders.Loaded[Event] = loaders.Loaded([])
    for event, line in loaders._valid_rows(path, Event, rows, encoding):
        table.append(event)
        lines.append(line)
    return loaders.LoadedEvents(table, lines, rows.problems, rows.skipped_rows)


def _read_gzip_per_row(path: Path, encoding: loaders.Encoding) -> loaders.LoadedEvents:
    """A gzipped file row by row: decompressed to a temporary folder, its problems about
    `path`."""
    with tempfile.TemporaryDirectory(prefix="reelcast-events-") as folder:
        plain = Path(folder) / path.with_suffix("").name
        try:
            with gzip.open(path, "rb") as packed, plain.open("wb") as out:
                shutil.copyfileobj(packed, out, 1 << 20)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise _not_gzip(path, exc) from None
        except OSError:
            return _read_per_row(path, encoding)  # which says what is wrong with the path
        try:
            loaded = _read_per_row(plain, encoding)
        except RetailDataError as exc:
            hint = str(exc).rsplit("\n", 1)[-1]
            raise RetailDataError([replace(p, file=path) for p in exc.problems], hint) from None
    loaded.problems = [replace(p, file=path) for p in loaded.problems]
    return loaded
