"""Events files read a block at a time (CSV, gzipped CSV, Parquet) give what the per-row
reader gives: the same events, ids, lines, problems and errors."""

from __future__ import annotations

import codecs
import gzip
import random
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from retail import event_files
from retail.errors import RetailDataError, RowProblem
from retail.event_files import parse_timestamps, read_events
from retail.events import EventTable, to_micros
from retail.loaders import NOT_UTF8, load_events
from retail.types import Event, EventType

HEADER = "customer_id,product_id,type,timestamp"
START = datetime(2026, 3, 1, tzinfo=UTC)

# Cells of each column: mostly good ones, and every kind of bad or odd one the per-row
# reader has an answer for (a message, a value after pydantic's stripping, a shape the
# columns leave to it).
CELLS = {
    "customer_id": [
        "C1",
        "C2",
        "c3",
        "",
        "  ",
        " C1",
        "C1 ",
        "Ä1",
        "1Ä",
        "C\u00a0",
        "C 4",
        "x\x7f",
        '"C,5"',
    ],
    "product_id": ["P1", "P2", "", "", " ", " P1", "P1 ", "Ö", "p"],
    "type": ["view", "cart", "purchase", "unsubscribe", "View", " view", "", "buy"],
    "timestamp": [
        "2026-05-01T10:00:00+00:00",
        "2026-05-01T10:00:00Z",
        "2026-05-01 10:00:00+02:00",
        "2026-05-01_10:00:00+02:00",
        "2026-05-01t10:00:00z",
        "2026-05-01T10:00:00.5Z",
        "2026-05-01T10:00:00.123456-05:30",
        "2026-05-01T10:00:00.1234567Z",
        "2026-05-01T10:00:00+0200",
        "2026-05-01T10:00:00+02",
        "2026-05-01T10:00:00",
        "2026-05-01",
        "1700000000",
        "2026-02-30T10:00:00Z",
        "2024-02-29T10:00:00Z",
        "2100-02-29T10:00:00Z",
        "2026-05-01T24:00:00Z",
        "2026-05-01T10:00:60Z",
        "0999-05-01T10:00:00Z",
        "1899-12-31T23:59:59+23:59",
        "2026-05-01T10:00:00+24:00",
        "2026-05-01T10:00:00.Z",
        "2026-05-01T10:00:00,5Z",
        " 2026-05-01T10:00:00Z",
        "",
        "soon",
    ],
    "note": ["", "hello", "ü", "a b", '"a, b"', '"say ""hi"""'],
}


def _outcome(path: Path, **options: Any) -> tuple[Any, ...]:
    """What a reader makes of `path`: its events, id codes, lines, problems; or its error."""
    try:
        loaded = read_events(path, **options)
    except RetailDataError as exc:
        return ("refused", exc.problems, str(exc))
    table = loaded.events
    return (
        list(table),
        table.customer_ids.ids,
        table.product_ids.ids,
        loaded.lines.tolist(),
        loaded.problems,
        loaded.skipped_rows,
    )


def _assert_same_as_per_row(path: Path, **options: Any) -> tuple[Any, ...]:
    block_reader = _outcome(path, **options)
    per_row = _outcome(path, per_row=True)
    assert block_reader == per_row
    return block_reader


@st.composite
def events_texts(draw: st.DrawFn) -> str:
    """The text of an events file: columns in any order (product_id optional, an unknown
    column), any line ending, blank lines, rows of too many or too few cells."""
    columns = draw(st.permutations(["customer_id", "product_id", "type", "timestamp"]))
    columns = [c for c in columns if c != "product_id" or draw(st.booleans())]
    if draw(st.booleans()):
        columns.insert(draw(st.integers(0, len(columns))), "note")
    lines = [",".join(columns)]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["row"] * 12 + ["empty", "spaces", "commas", "long", "short"]))
        if kind == "empty":
            lines.append("")
        elif kind == "spaces":
            lines.append("   ")
        elif kind == "commas":
            lines.append("," * (len(columns) - 1))
        else:
            cells = [
                draw(st.sampled_from(CELLS[c][:3]))
                if draw(st.booleans())
                else draw(st.sampled_from(CELLS[c]))
                for c in columns
            ]
            cells = [*cells, "x"] if kind == "long" else cells[:-1] if kind == "short" else cells
            lines.append(",".join(cells))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=events_texts(), block_size=st.sampled_from([48, 300, event_files.BLOCK_BYTES]))
def test_the_block_reader_agrees_with_the_per_row_reader(text: str, block_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        path.write_text(text, encoding="utf-8", newline="")
        _assert_same_as_per_row(path, block_size=block_size)


CELL_BYTES = [
    b'"', b",", b"\r", b"\n", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xe9", b"\x80", b" ",
    b"\xc3\xa9", b"\xe2\x80\xa8", b"C1", b"P1", b"view", b"2026-05-01T10:00:00Z", b"",
]  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(st.sampled_from(CELL_BYTES), min_size=1, max_size=9), max_size=8),
    block_size=st.sampled_from([16, event_files.BLOCK_BYTES]),
)
def test_any_bytes_under_a_header_read_as_the_per_row_reader_reads_them(
    rows: list[list[bytes]], block_size: int
) -> None:
    """Quotes over lines, NUL, stray and UTF-8 bytes, BOMs: whatever the block reader does
    not number line by line, it hands to the per-row reader whole."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        path.write_bytes(HEADER.encode() + b"\n" + b"\n".join(b"".join(r) for r in rows))
        _assert_same_as_per_row(path, block_size=block_size)


def _generated(path: Path, rows: int, *, bad_every: int = 0, seed: int = 5) -> Path:
    """`rows` events in the shapes exporters write, a bad one every `bad_every` rows."""
    rng = random.Random(seed)
    lines = [HEADER]
    for n in range(rows):
        at = START + timedelta(seconds=rng.randrange(90 * 86_400), microseconds=rng.choice([0, 7]))
        stamp = rng.choice(
            [at.isoformat(), at.astimezone(timezone(timedelta(hours=2))).isoformat()]
        )
        stamp = stamp.replace("+00:00", "Z") if rng.random() < 0.3 else stamp
        product = rng.choice(["", f"P{rng.randrange(300)}"])
        kind = rng.choice(["view", "view", "cart", "purchase"])
        if bad_every and n % bad_every == bad_every // 2:
            kind, stamp = rng.choice(
                [("click", at.replace(tzinfo=None).isoformat()), ("buy", stamp)]
            )
        lines.append(f"C{rng.randrange(400)},{product},{kind},{stamp}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _never_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the per-row reader was used")

    monkeypatch.setattr(event_files, "_read_per_row", refuse)


def test_a_file_of_many_blocks_gives_the_table_the_per_row_reader_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _generated(tmp_path / "events.csv", 3_000, bad_every=97)
    per_row = _outcome(path, per_row=True)
    blocks: list[int] = []
    parse = event_files._BlockReader.parse

    def noting(self: Any, block: bytearray, line: int, lines: int) -> Any:
        blocks.append(len(block))
        return parse(self, block, line, lines)

    monkeypatch.setattr(event_files._BlockReader, "parse", noting)
    _never_per_row(monkeypatch)
    assert _outcome(path, block_size=4_000) == per_row
    assert len(blocks) > 20 and max(blocks) <= 4_000  # a block at a time, never the file
    assert _outcome(path) == per_row
    assert len(per_row[4]) == 31 and per_row[5] == 31  # the bad rows, one problem each


def test_bad_rows_name_their_line_field_and_message_as_the_per_row_reader_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        HEADER + "\n"
        "C1,P1,view,2026-05-01T10:00:00Z\n"
        "\n"
        "C2,,buy,2026-05-01T10:00:00+02:00\n"
        ",P1,view,2026-05-01T10:00:00Z\n"
        "C3,P1,view,2026-05-01T10:00:00\n"
        "C4,P1,view\n"
        "C5,P2,cart,1700000000\n",
        encoding="utf-8",
    )
    _never_per_row(monkeypatch)
    loaded = read_events(path)
    words = "'view', 'cart', 'purchase', 'exposure', 'open', 'click' or 'unsubscribe'"
    assert [str(p) for p in loaded.problems] == [
        f"{path}:4: type: input should be {words}",
        f"{path}:5: customer_id: string should have at least 1 character",
        f"{path}:6: timestamp: value error, timestamp needs a UTC offset, "
        "e.g. 2026-05-01T10:00:00+00:00",
        f"{path}:7: row: has 3 cells but the header has 4 columns",
    ]
    assert loaded.skipped_rows == 4
    assert loaded.lines.tolist() == [2, 8]  # a Unix time is a timestamp to `Event`
    assert loaded.events[1] == Event(
        customer_id="C5", product_id="P2", type=EventType.cart, timestamp="1700000000"
    )


def test_a_row_blank_but_for_an_unknown_column_or_starting_with_a_bom_is_judged_as_per_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        HEADER + ",note\n"
        "C1,P1,view,2026-05-01T10:00:00Z,\n"
        ",,,,a note\n"  # not blank: three problems
        ",,,, \n"  # blank: left out, no problem
        "\ufeffC2,P1,view,2026-05-01T10:00:00Z,\n",  # the mark is part of the id
        encoding="utf-8",
    )
    per_row = _outcome(path, per_row=True)
    assert [(p.line, p.field) for p in per_row[4]] == [
        (3, "customer_id"),
        (3, "type"),
        (3, "timestamp"),
    ]
    assert [e.customer_id for e in per_row[0]] == ["C1", "\ufeffC2"]
    assert _outcome(path) == per_row
    assert _outcome(path, block_size=40) == per_row  # the last line is a block of its own


def test_load_events_fails_on_bad_rows_or_leaves_them_out(tmp_path: Path) -> None:
    path = _generated(tmp_path / "events.csv", 200, bad_every=50)
    with pytest.raises(RetailDataError) as stopped:
        load_events(path)
    assert len(stopped.value.problems) == 4
    assert "--on-bad-rows skip" in str(stopped.value)
    loaded = load_events(path, "skip")
    assert len(loaded.events) == 196 and loaded.skipped_rows == 4
    assert list(load_events(path, "skip", per_row=True).events) == list(loaded.events)


def test_a_gzipped_file_reads_as_the_same_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _generated(tmp_path / "events.csv", 500, bad_every=60)
    packed = tmp_path / "events.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = _outcome(plain, per_row=True)
    with monkeypatch.context() as patched:
        _never_per_row(patched)
        got = _outcome(packed, block_size=2_000)
    assert got[:4] == expected[:4]
    assert got[4] == [RowProblem(packed, p.line, p.field, p.problem) for p in expected[4]]
    assert _outcome(packed, per_row=True) == got


def test_a_gzipped_file_the_blocks_cannot_number_is_read_row_by_row(tmp_path: Path) -> None:
    text = HEADER + '\n"C1\nstill C1",P1,view,2026-05-01T10:00:00Z\nC2,P1,view,2026-05-01\n'
    packed = tmp_path / "events.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    loaded = read_events(packed)
    assert [e.customer_id for e in loaded.events] == ["C1\nstill C1"]
    assert [(p.file, p.line, p.field) for p in loaded.problems] == [(packed, 4, "timestamp")]


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(b"x" * 100_000)[:-30]])
def test_a_damaged_gzip_file_is_one_problem_about_the_file(tmp_path: Path, data: bytes) -> None:
    packed = tmp_path / "events.csv.gz"
    packed.write_bytes(data)
    for per_row in (False, True):
        with pytest.raises(RetailDataError) as refused:
            read_events(packed, per_row=per_row)
        assert [(p.line, p.field) for p in refused.value.problems] == [(0, "file")]
        assert "not a readable gzip file" in str(refused.value)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("customer_id,product_id,type", "{path}:1: timestamp: missing column"),
        ("customer_id,type,timestamp,type", "{path}:1: type: the column appears twice"),
        ("customer_id;type;timestamp", "{path}:1: header: the columns are separated by ';'"),
        ("", "{path}:1: header: the file is empty"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_header_problems_are_the_per_row_readers_errors(
    tmp_path: Path, header: str, says: str, suffix: str
) -> None:
    path = tmp_path / f"events{suffix}"
    data = (header + "\nC1,P1,view\n").encode() if header else b""
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    block_reader, per_row = _outcome(path), _outcome(path, per_row=True)
    assert block_reader == per_row and block_reader[0] == "refused"
    assert says.format(path=path) in block_reader[2]


def test_a_file_with_a_byte_order_mark_and_a_quoted_header_is_read_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    rows = '"customer_id","product_id","type","timestamp"\r\nC1,"P,1",view,2026-05-01T10:00:00Z\r\n'
    path.write_bytes(codecs.BOM_UTF8 + rows.encode())
    per_row = _outcome(path, per_row=True)
    with monkeypatch.context() as patched:
        _never_per_row(patched)
        got = _outcome(path)
    assert got == per_row
    assert [e.product_id for e in got[0]] == ["P,1"]
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(rows.encode("utf-16"))  # with its byte-order mark: row by row
    assert _assert_same_as_per_row(utf16)[0] == got[0]


@pytest.mark.parametrize("length", [40_000, 200_000])
def test_an_overlong_line_is_read_as_the_per_row_reader_reads_it(
    tmp_path: Path, length: int
) -> None:
    """Past the csv module's cell limit it is a bad row there; the blocks never judge it."""
    path = _generated(tmp_path / "events.csv", 300, bad_every=70)
    lines = path.read_text().splitlines(keepends=True)
    lines[100] = f"C{'x' * length},P1,view,2026-05-01T10:00:00Z\n"
    path.write_text("".join(lines))
    got = _assert_same_as_per_row(path, block_size=30_000)
    assert len(got[0]) == 296 - (length > 131_072)  # four bad rows; the long one past the limit


def test_a_windows_1252_file_is_still_refused_or_read_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes((HEADER + "\nCafé-1,P1,view,2026-05-01T10:00:00Z\n").encode("cp1252"))
    for mode in ("fail", "skip"):
        with pytest.raises(RetailDataError) as refused:
            load_events(path, mode)
        assert refused.value.problems == [RowProblem(path, 0, "encoding", NOT_UTF8)]
    loaded = load_events(path, encoding="cp1252")
    assert [e.customer_id for e in loaded.events] == ["Café-1"]


def test_a_missing_file_is_the_same_error_in_every_format(tmp_path: Path) -> None:
    for name in ("events.csv", "events.csv.gz", "events.parquet"):
        with pytest.raises(RetailDataError, match="file not found"):
            read_events(tmp_path / name)


# -- Parquet ------------------------------------------------------------------------------------


def _parquet(path: Path, table: pa.Table, **options: Any) -> Path:
    pq.write_table(table, path, **options)
    return path


def test_a_parquet_file_gives_the_events_of_the_same_csv(tmp_path: Path) -> None:
    csv_path = _generated(tmp_path / "events.csv", 800)
    expected = read_events(csv_path, per_row=True)
    text = pcsv.read_csv(csv_path, convert_options=pcsv.ConvertOptions(
        column_types={n: pa.string() for n in HEADER.split(",")}, strings_can_be_null=False
    ))  # fmt: skip
    typed = text.set_column(
        3, "timestamp", pa.array(expected.events.micros, pa.timestamp("us", tz="UTC"))
    )
    for table in (text, typed):
        path = _parquet(tmp_path / "events.parquet", table, row_group_size=300)
        loaded = read_events(path, block_size=64 * 128)  # batches of 128 rows
        assert list(loaded.events) == list(expected.events)
        assert loaded.events.customer_ids.ids == expected.events.customer_ids.ids
        assert loaded.lines.tolist() == expected.lines.tolist() and not loaded.problems


def test_a_parquet_files_bad_rows_say_their_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "customer_id": ["C1", None, "C3", " C4 ", "C5"],
            "product_id": ["P1", None, "", "P2", "  "],
            "type": pa.array(["view", "cart", "nope", "view", "click"]).dictionary_encode(),
            "timestamp": pa.array([1, 2, None, 4, 5], pa.timestamp("ms", tz="Europe/Berlin")),
            "note": [1, 2, 3, 4, 5],
        }
    )
    loaded = read_events(_parquet(tmp_path / "events.parquet", table))
    words = "'view', 'cart', 'purchase', 'exposure', 'open', 'click' or 'unsubscribe'"
    assert [(p.line, p.field, p.problem) for p in loaded.problems] == [
        (3, "customer_id", "string should have at least 1 character (row 2)"),
        (4, "type", f"input should be {words} (row 3)"),
        (4, "timestamp", "input should be a valid datetime or date, input is too short (row 3)"),
    ]
    assert loaded.skipped_rows == 2 and loaded.lines.tolist() == [2, 5, 6]
    assert [(e.customer_id, e.product_id, to_micros(e.timestamp)) for e in loaded.events] == [
        ("C1", "P1", 1_000),
        ("C4", "P2", 4_000),
        ("C5", None, 5_000),
    ]


@pytest.mark.parametrize(
    ("columns", "field", "says"),
    [
        ({"customer_id": [1, 2]}, "customer_id", "the column holds int64 values, not text"),
        ({"type": [1.5, 2.0]}, "type", "the column holds double values, not text"),
        (
            {"timestamp": pa.array([1, 2], pa.timestamp("s"))},
            "timestamp",
            "timestamps without a time zone",
        ),
        ({"timestamp": pa.array([1, 2], pa.date32())}, "timestamp", "date32[day] values"),
    ],
)
def test_a_parquet_column_of_the_wrong_type_is_refused_naming_it(
    tmp_path: Path, columns: dict[str, Any], field: str, says: str
) -> None:
    good = {"customer_id": ["C1", "C2"], "type": ["view", "cart"], "timestamp": ["x", "y"]}
    path = _parquet(tmp_path / "events.parquet", pa.table({**good, **columns}))
    with pytest.raises(RetailDataError) as refused:
        read_events(path)
    assert [(p.line, p.field) for p in refused.value.problems] == [(1, field)]
    assert says in refused.value.problems[0].problem
    assert f"{path}:1: {field}: " in str(refused.value)


def test_a_parquet_file_without_a_column_or_not_parquet_is_refused(tmp_path: Path) -> None:
    path = _parquet(
        tmp_path / "events.parquet", pa.table({"customer_id": ["C1"], "type": ["view"]})
    )
    with pytest.raises(RetailDataError, match=r"events.parquet:1: timestamp: missing column"):
        read_events(path)
    path.write_text(HEADER + "\n")
    with pytest.raises(RetailDataError, match="not a readable Parquet file"):
        read_events(path)


# -- columns --------------------------------------------------------------------------------------


@st.composite
def timestamp_texts(draw: st.DrawFn) -> str:
    """Texts near the shapes the columns read: each part most often right, sometimes a
    near miss (a wrong separator, a day past the month's end, an hour 24, a zone +02)."""

    def part(right: list[str], near: list[str]) -> str:
        return draw(st.sampled_from(near if draw(st.integers(0, 9)) == 0 else right))

    zone = part(["Z", "z", "+02:00", "-05:30", "+00:00", "+23:59"], ["+24:00", "+05:60", "+02"])
    return "".join(
        [
            part(["2026", "2024", "1900", "9998"], ["1899", "9999", "0999", "026"]),
            part(["-"], ["/", ""]),
            part(["01", "02", "12"], ["13", "00", "2"]),
            "-",
            part(["01", "28", "29", "30", "31"], ["00", "1", "32"]),
            part(["T", "t", " "], ["_", "", "TT"]),
            part(["00", "23", "09"], ["24", "9"]),
            ":",
            part(["00", "59"], ["60", "5"]),
            part([":"], ["", "."]),
            part(["00", "59"], ["60", ""]),
            part(["", ".5", ".123456", ".000001"], [".", ".1234567", ",5", ".5x"]),
            part([zone], ["", "+0200", zone + " ", " " + zone]),
        ]
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(timestamp_texts(), min_size=1, max_size=20))
def test_a_timestamp_the_columns_read_is_the_instant_event_reads(texts: list[str]) -> None:
    micros, read = parse_timestamps(pa.array(texts))
    for text, value, ok in zip(texts, micros.tolist(), read.tolist(), strict=True):
        if not ok:
            continue
        event = Event(customer_id="C1", type=EventType.view, timestamp=text)
        assert to_micros(event.timestamp) == value, text


def test_the_common_timestamp_shapes_are_read_by_the_columns() -> None:
    texts = [
        "2026-05-01T10:00:00Z",
        "2026-05-01T10:00:00+02:00",
        "2026-05-01 10:00:00-05:30",
        "2026-05-01T10:00:00.123456Z",
        "2024-02-29T23:59:59.5+00:00",
    ]
    micros, read = parse_timestamps(pa.array(texts))
    assert read.all()
    assert micros.tolist() == [
        to_micros(Event(customer_id="C", type=EventType.view, timestamp=t).timestamp) for t in texts
    ]
    _, read = parse_timestamps(pa.array(["2026-05-01T10:00:00", "2026-02-30T10:00:00Z", None]))
    assert not read.any()
    with pytest.raises(ValidationError):
        Event(customer_id="C", type=EventType.view, timestamp="2026-02-30T10:00:00Z")


def test_extend_columns_codes_ids_as_extend_does() -> None:
    events = [
        Event(customer_id=c, product_id=p, type=EventType.view, timestamp=START)
        for c, p in [("B", None), ("A", "P2"), ("B", "P1"), ("C", "P2"), ("A", None)]
    ]
    expected = EventTable()
    expected.extend(events)
    customers = pa.array([e.customer_id for e in events])
    products = pa.array([e.product_id for e in events], pa.string())
    types = np.zeros(len(events), dtype=np.int8)
    micros = np.full(len(events), to_micros(START), dtype=np.int64)
    for encode in (False, True):
        table = EventTable()
        table.extend_columns(
            customers.dictionary_encode() if encode else customers,
            products.dictionary_encode() if encode else products,
            types,
            micros,
        )
        assert list(table) == events
        assert table.customer_ids.ids == expected.customer_ids.ids == ["B", "A", "C"]
        assert table.product_ids.ids == expected.product_ids.ids == ["P2", "P1"]
        assert table.product.tolist() == expected.product.tolist() == [-1, 0, 1, 0, -1]
