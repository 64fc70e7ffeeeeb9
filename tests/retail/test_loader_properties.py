"""Property: whatever bytes or text a file holds, the loaders raise RetailDataError or load."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from retail.errors import RetailDataError
from retail.loaders import ENCODINGS, load_rows
from retail.types import Customer, Event, Product

HEADERS = {
    Product: "id,title,brand,category,price,currency,image,url,in_stock,description",
    Customer: "id,email,first_name,last_name,locale,timezone,country,marketing_consent,"
    "consent_timestamp,personalization",
    Event: "customer_id,product_id,type,timestamp",
}
MODELS = st.sampled_from([Product, Customer, Event])
# Cells made of what breaks CSV and decoders: quotes, separators, line ends, NUL, BOMs,
# surrogate-looking and non-UTF-8 bytes, plus plausible values.
CELL_BYTES = st.one_of(
    st.binary(max_size=12),
    st.sampled_from(
        [
            b'"',
            b",",
            b"\r",
            b"\n",
            b"\r\n",
            b"\x00",
            b"\xef\xbb\xbf",
            b"\xff\xfe",
            b"\xed\xa0\x80",
            b"\xe9",
            b"\x80",
            b"C1",
            b"P1",
            b"view",
            b"2026-05-01T10:00:00+00:00",
            b"9.99",
            b"EUR",
            b"granted",
            b"a@b.example",
            b"Europe/Berlin",
            b"de_DE",
            b"nan",
            b"-0",
            b"=1+1",
        ]
    ),
)


def _load(data: bytes, model: type[BaseModel], mode: str, encoding: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "file.csv"
        path.write_bytes(data)
        try:
            load_rows(path, model, mode, encoding=encoding)  # type: ignore[arg-type]
        except RetailDataError as exc:
            assert exc.problems and all(p.file == path for p in exc.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=400),
    model=MODELS,
    mode=st.sampled_from(["fail", "skip"]),
    encoding=st.sampled_from(ENCODINGS),
)
def test_arbitrary_bytes_never_raise_anything_but_retail_data_error(
    data: bytes, model: type[BaseModel], mode: str, encoding: str
) -> None:
    _load(data, model, mode, encoding)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=MODELS,
    rows=st.lists(st.lists(CELL_BYTES, max_size=12), max_size=6),
    mode=st.sampled_from(["fail", "skip"]),
    bom=st.sampled_from([b"", b"\xef\xbb\xbf"]),
)
def test_arbitrary_rows_under_a_real_header_never_raise_anything_but_retail_data_error(
    model: type[BaseModel], rows: list[list[bytes]], mode: str, bom: bytes
) -> None:
    body = b"\n".join(b",".join(cells) for cells in rows)
    _load(bom + HEADERS[model].encode() + b"\n" + body, model, mode, "utf-8")


@settings(max_examples=40, deadline=None)
@given(
    cells=st.lists(st.text(max_size=30), min_size=4, max_size=4),
    mode=st.sampled_from(["fail", "skip"]),
)
def test_arbitrary_text_cells_load_or_are_one_bad_row(cells: list[str], mode: str) -> None:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows([HEADERS[Event].split(","), cells])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        path.write_text(out.getvalue(), encoding="utf-8", errors="surrogatepass")
        try:
            loaded = load_rows(path, Event, mode)  # type: ignore[arg-type]
        except RetailDataError:
            assert mode == "fail"
            return
        assert len(loaded.items) + loaded.skipped_rows <= 1
        assert loaded.skipped_rows == (1 if loaded.problems else 0)
